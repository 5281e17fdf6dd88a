"""CLI options generated from the run identity's declaration (bench.run.config.RunOptions):
`bench run` and `bench sweep` take the same per-run options, spelled and documented once."""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import MISSING

import typer

from bench.run.config import RunOptions, cli_fields, flag_of

_HINTS = typing.get_type_hints(RunOptions)


def _option(f, sweep: bool) -> tuple[typer.models.OptionInfo, object]:
    help = f.metadata["sweep_help" if sweep else "help"]
    if f.name == "overrides":  # --set key=value, repeatable
        return typer.Option([], flag_of(f), help=help), list[str]
    default = f.default if f.default is not MISSING else None
    return typer.Option(default, flag_of(f), help=help), _HINTS[f.name]


def with_run_options(*, sweep: bool = False):
    """Add every per-run option of RunOptions to a command; the command receives them as one
    dict `run_options` (field name -> value as given; `overrides` still as key=value strings)."""

    def decorate(fn):
        sig = inspect.signature(fn)
        own = [p for p in sig.parameters.values() if p.name != "run_options"]
        fields = cli_fields(sweep=sweep)
        added = []
        annotations = dict(typing.get_type_hints(fn))
        annotations.pop("run_options", None)
        for f in fields:
            default, annotation = _option(f, sweep)
            added.append(
                inspect.Parameter(
                    f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
                )
            )
            annotations[f.name] = annotation

        @functools.wraps(fn)
        def wrapper(**kwargs):
            given = {f.name: kwargs.pop(f.name) for f in fields}
            return fn(**kwargs, run_options=given)

        # typer reads the signature: the command's own options first, then the generated ones
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        wrapper.__signature__ = sig.replace(parameters=own + added)  # type: ignore[attr-defined]
        wrapper.__annotations__ = annotations
        return wrapper

    return decorate
