"""User-facing errors: the CLI prints their message as one line and exits with their code."""


def one_line(text: object) -> str:
    """A message as one line: h5py's, torch's and the OS's messages can hold newlines."""
    return " ".join(str(text).split())


class BenchError(Exception):
    """An error the user can cause and fix (bad name, bad file, missing dataset offline).

    exit_code follows the CLI convention: 2 for bad input, 1 for a failed check.
    """

    exit_code = 2


class UnknownNameError(BenchError):
    """An algorithm, dataset, preset or config key that does not exist."""

    def __init__(self, kind: str, name: str, choices: list[str] | tuple[str, ...]):
        self.kind, self.name, self.choices = kind, name, list(choices)
        super().__init__(f"unknown {kind} '{name}'; choose one of: {', '.join(sorted(choices))}")


class DatasetError(BenchError):
    """A dataset that cannot be built, found, loaded or validated."""
