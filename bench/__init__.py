"""Benchmarks of baocao on the real stack: ``make bench`` (see bench/README.md)."""
