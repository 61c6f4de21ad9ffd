"""Benchmarks for gateway (not tests: nothing here asserts on time). See ``bench.spool_bench``."""
