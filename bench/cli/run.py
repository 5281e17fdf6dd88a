"""`bench run` and `bench algos`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bench.cli.app import app, stdout
from bench.cli.options import with_run_options
from bench.errors import BenchError
from bench.run.config import RunOptions


def _help(name: str) -> str:
    return RunOptions.__dataclass_fields__[name].metadata["help"]


@app.command("run")
@with_run_options()
def run_cmd(
    algo: str | None = typer.Option(None, "--algo", help=_help("algo")),
    dataset: str | None = typer.Option(None, "--dataset", help=_help("dataset")),
    seed: int = typer.Option(0, "--seed", help=_help("seed")),
    results_dir: Path = typer.Option(Path("results"), help="Where results/runs/<run_id>/ go."),
    resume: Path | None = typer.Option(
        None,
        help="Continue RUN_DIR from its last checkpoint (taken at every evaluation); "
        "its other options come from its config.json (only --device and --threads may differ).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    run_options: dict | None = None,
):
    """Train ALGO offline on DATASET, evaluate it periodically, write results/runs/<run_id>/.

    After a crash or a kill, `bench run --resume RUN_DIR` continues from the last evaluation."""
    from bench.algos.base import parse_overrides
    from bench.run.loop import run

    given = dict(run_options or {})
    given["overrides"] = parse_overrides(given["overrides"])
    if resume is not None:
        result = run(RunOptions(device=given["device"], threads=given["threads"]),
                     show_progress=not quiet, resume=resume)  # fmt: skip
    else:
        if algo is None or dataset is None:
            raise BenchError("--algo and --dataset are required (or --resume RUN_DIR)")
        opts = RunOptions(algo=algo, dataset=dataset, seed=seed, **given)
        result = run(opts, show_progress=not quiet, results_dir=results_dir)
    c = result.config
    table = Table(title=f"{c.algo} on {c.dataset}, seed {c.seed} (normalized score: 0-100 scale)")
    for col in ("step", "return mean", "return std", "episodes", "normalized score"):
        table.add_column(col, justify="right")
    for r in result.eval_rows:
        table.add_row(
            str(r["step"]),
            f"{r['return_mean']:.1f}",
            f"{r['return_std']:.1f}",
            str(r["episodes"]),
            f"{r['normalized_score']:.1f}",
        )
    stdout.print(table)
    stdout.print(f"key {c.key()}; wall time {result.wall_time_s:.1f} s", markup=False)
    print(result.run_dir)


@app.command("algos")
def algos_cmd():
    """List the registered algorithms with their config defaults and presets."""
    from bench.algos import REGISTRY
    from bench.algos.base import config_fields

    for name, cls in sorted(REGISTRY.items()):
        table = Table(
            title=f"{name}  ({', '.join(cls.action_kinds)} actions)", title_justify="left"
        )
        table.add_column("key", no_wrap=True)
        table.add_column("default", justify="right", no_wrap=True)
        for preset in cls.presets:
            table.add_column(f"preset {preset}", justify="right")
        table.add_column("meaning")
        defaults = cls.Config()
        docs = _field_docs(cls.Config)
        for key in config_fields(cls.Config):
            cells = [str(cls.presets[p].get(key, "")) for p in cls.presets]
            table.add_row(key, str(getattr(defaults, key)), *cells, docs.get(key, ""))
        stdout.print(table)


def _field_docs(config_cls) -> dict[str, str]:
    """The one-line docstring under each dataclass field, read from the source."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(config_cls)))
    body = tree.body[0].body
    docs = {}
    for a, b in zip(body, body[1:], strict=False):
        if (
            isinstance(a, ast.AnnAssign)
            and isinstance(b, ast.Expr)
            and isinstance(b.value, ast.Constant)
        ):
            docs[a.target.id] = str(b.value.value).strip()
    return docs
