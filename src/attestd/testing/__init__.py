"""Helpers for tests and benchmarks that drive real components (swtpm)."""
