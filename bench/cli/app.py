"""The typer app, its command groups and the console entry point: every BenchError becomes one
`bench: error:` line with exit 2 (BENCH_DEBUG=1 prints the traceback behind it); Ctrl-C is one
"interrupted" line."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from bench.errors import BenchError

app = typer.Typer(
    help="Offline RL benchmarking: dataset -> offline training -> evaluation -> tidy results.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
datasets_app = typer.Typer(help="List, inspect and build datasets.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
behavior_app = typer.Typer(
    help="Train behavior policies online (to build datasets).", no_args_is_help=True
)
app.add_typer(behavior_app, name="behavior")
stdout = Console()


def wide_console() -> Console:
    """stdout at no less than 250 columns: wide tables are never squeezed or cut when piped."""
    return Console(width=max(stdout.width, 250))


def main(argv: list[str] | None = None) -> None:
    """The console script. Option-parsing errors (a bad number, an unknown option, a missing
    required one) and BenchErrors are one `bench: error:` line with exit 2; Ctrl-C is one
    "interrupted" line with exit 130 (a run resumes with `bench run --resume`)."""
    try:
        code = app(args=argv, standalone_mode=False)
    except BenchError as e:
        _debug_traceback(e)
        _fail(str(e), e.exit_code)
    except typer.Exit as e:
        if e.exit_code == 130:
            print("bench: interrupted", file=sys.stderr)
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as e:  # click's usage errors, as typer ships them
        if type(e).__name__ == "NoArgsIsHelpError":  # `bench datasets`: the group's help
            print(e.format_message())
            sys.exit(0)
        _debug_traceback(e)
        message = " ".join(e.format_message().split())
        ctx = getattr(e, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        _fail(message + hint, 2)
    if code == 130:  # typer turns Ctrl-C into an exit code of 130 on its own
        print("bench: interrupted", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)


#: Set (to anything but 0) to see the traceback behind a `bench: error:` line, for a bug report.
DEBUG_ENV = "BENCH_DEBUG"


def _debug_traceback(e: BaseException) -> None:
    """With BENCH_DEBUG=1, the full traceback on stderr before the error line, including the
    exceptions that `raise ... from None` keeps out of a user's way."""
    import os
    import traceback

    if os.environ.get(DEBUG_ENV, "0") in ("", "0"):
        return
    exc: BaseException | None = e
    while exc is not None:
        exc.__suppress_context__ = False
        exc = exc.__cause__ or exc.__context__
    traceback.print_exception(e, file=sys.stderr)


def _fail(message: str, code: int) -> None:
    print(f"bench: error: {message}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
