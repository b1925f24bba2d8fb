"""The benchmark's one exception: anything that stops a run, said in a line for the CLI."""

from __future__ import annotations


class BenchmarkError(Exception):
    """A run cannot go on: bad arguments, a missing tool, or a server that did not start."""
