"""rocknet host package: plans, reference computations, simulator and fleet tools."""

__version__ = "0.1.0"
