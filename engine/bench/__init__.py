"""Benchmarks behind ``wsv bench``: each returns a list of flat, self-explaining records."""
