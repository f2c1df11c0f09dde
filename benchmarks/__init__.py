"""Measured (not timed-in-tests) performance of tunnel-client: see benchmarks/README.md."""
