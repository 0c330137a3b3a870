"""Benchmarks: each measures a candidate against its raw baseline in the same run (``make bench``)."""
