"""Throughput benchmarks (`python -m benchmarks`); kept out of the test paths."""
