"""Benchmarks, each measured beside its ceiling in the same run; ``python -m bench.report`` runs them all."""
