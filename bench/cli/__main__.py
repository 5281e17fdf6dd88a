"""`python -m bench.cli ARGS`: the bench command (for an environment without its script)."""

from bench.cli import main

main()
