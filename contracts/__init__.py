"""Shared message contracts and reference-data schema: data only, no behaviour, no I/O."""
