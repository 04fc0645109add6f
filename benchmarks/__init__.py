"""Benchmarks of onetake beside its baselines, run as ``python -m benchmarks NAME`` (see README.md)."""
