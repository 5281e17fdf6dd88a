"""The `bench` command line. Thin: each module parses one command group's options, calls the
library, and renders; `main` turns user errors into one line."""

# registration order is the order of `bench --help`
from bench.cli import run, sweep, suite, analysis, select, perf, datasets, behavior  # noqa: F401, I001
from bench.cli.app import app, main

__all__ = ["app", "main"]
