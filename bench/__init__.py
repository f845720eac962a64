"""Benchmarks: commands that build data at scale and print figures (never run by the test suite
beyond a smoke run)."""
