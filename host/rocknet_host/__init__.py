"""rocknet host package: plans, reference computations, simulator and fleet tools."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``rocknet_host.RockNetClassifier`` without importing scikit-learn for every command."""
    if name == "RockNetClassifier":
        from .estimator import RockNetClassifier

        return RockNetClassifier
    raise AttributeError(f"module 'rocknet_host' has no attribute {name!r}")


__all__ = ["RockNetClassifier", "__version__"]
