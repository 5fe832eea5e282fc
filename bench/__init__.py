"""Benchmarks: each measures its baseline in the same run and writes bench/results/<name>.json."""
