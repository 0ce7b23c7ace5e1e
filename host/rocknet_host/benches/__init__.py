"""Benchmarks behind `rocknet bench KIND`, one module per kind."""
