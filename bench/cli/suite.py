"""`bench suite`: named, versioned grids (bench/suites/*.toml) run as one sweep."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from bench.cli.app import app, stdout
from bench.cli.sweep import ADDRESS_HELP, RETRIES_HELP, SHARED_HELP

suite_app = typer.Typer(
    help="Named benchmark suites: list, show and run them.", no_args_is_help=True
)
app.add_typer(suite_app, name="suite")


@suite_app.command("list")
def list_cmd():
    """The shipped suites, with their size."""
    from bench.suite import load_suite, suite_names

    table = Table(title="suites (bench/suites/*.toml)", title_justify="left")
    for col in ("name", "version", "runs", "seeds", "description"):
        table.add_column(col, overflow="fold")
    for name in suite_names():
        s = load_suite(name)
        table.add_row(s.name, str(s.version), str(s.cells()), str(len(s.seeds)), s.description)
    stdout.print(table)


@suite_app.command("show")
def show_cmd(name: str = typer.Argument(..., help="A suite name or a suite file (.toml).")):
    """A suite's grid: datasets x algorithms, budgets and protocol."""
    from bench.suite import load_suite

    s = load_suite(name)
    table = Table(title=f"suite {s.name} v{s.version}: {s.description}", title_justify="left")
    for col in (
        "datasets",
        "algos",
        "steps",
        "eval every",
        "eval episodes",
        "final episodes",
        "batch",
        "precision",
        "preset",
        "set",
    ):
        table.add_column(col, overflow="fold")
    for g in s.grids:
        o = g.options
        table.add_row(
            ", ".join(g.datasets),
            ", ".join(g.algos),
            f"{o.steps:,}",
            f"{o.eval_every:,}",
            str(o.eval_episodes),
            str(o.final_episodes),
            str(o.batch_size),
            o.precision,
            o.preset or "card's",
            " ".join(f"{k}={v}" for k, v in o.overrides.items()) or "-",
        )
    stdout.print(table)
    stdout.print(
        f"seeds {', '.join(map(str, s.seeds))}; {s.cells()} runs; file {s.path} "
        f"(sha256 {s.sha256[:12]})",
        markup=False,
        soft_wrap=True,
    )


@suite_app.command("run")
def run_cmd(
    name: str = typer.Argument(..., help="A suite name (`bench suite list`) or a suite file."),
    results_dir: Path | None = typer.Option(
        None, help="Results folder (default: results/suites/<name>)."
    ),
    workers: int = typer.Option(0, help="Jobs at once (default: one per 2 cores, at least 1)."),
    seeds_per_job: int = typer.Option(
        32, "--seeds-per-job", help="Seeds of one configuration trained together, at most."
    ),
    device: str = typer.Option("auto", help="torch device: auto, cpu, cuda[:N]."),
    precision: str | None = typer.Option(
        None,
        help="Update precision of every run, fp32 or bf16 (refused without native bf16); "
        "default: each grid's (fp32 unless it sets one). Part of the run key, so a bf16 run "
        "is compared with bf16 runs only.",
    ),
    executor: str = typer.Option("local", help="local (a process pool) or ray."),
    address: str | None = typer.Option(None, help=ADDRESS_HELP),
    shared_results: bool = typer.Option(False, "--shared-results", help=SHARED_HELP),
    retries: int | None = typer.Option(None, help=RETRIES_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live grid display."),
):
    """Run a suite: its grids as one sweep (seeds of a configuration trained together).

    The suite file fixes datasets, algorithms, seeds and every budget; each run records the
    suite's name, version and file hash in its config.json, and the file is copied into the
    results folder. Like `bench sweep`, complete runs are kept and stopped ones resumed, so
    running a suite again finishes it. Then: `bench leaderboard --results DIR`."""
    import dataclasses

    from bench.cli.sweep import check_pool, ray_options, run_grids
    from bench.run.config import check_algorithm
    from bench.run.loop import check_device
    from bench.run.precision import check_precision
    from bench.suite import check_suite_copy, load_suite, store_suite_file
    from bench.sweep import SweepSpec

    n_workers, threads = check_pool(executor, workers, seeds_per_job)
    on_ray = ray_options(executor, address, shared_results, retries)
    dev = check_device(device)
    if precision is not None:
        check_precision(precision, dev)
    suite = load_suite(name).with_precision(precision)
    results_dir = results_dir or Path("results") / "suites" / suite.name
    check_suite_copy(suite, results_dir)
    specs = []
    for g in suite.grids:
        options = dataclasses.replace(g.options, device=device)
        check_precision(options.precision, dev)
        for a in g.algos:
            check_algorithm(dataclasses.replace(options, algo=a))
        specs.append(
            SweepSpec(
                algos=g.algos,
                datasets=g.datasets,
                seeds=suite.seeds,
                options=options,
                results_dir=results_dir,
                workers=n_workers,
                threads=threads,
                seeds_per_job=seeds_per_job,
                tags={"suite": suite.tag()},
            )
        )
    stdout.print(
        f"suite {suite.name} v{suite.version}: {suite.cells()} runs into {results_dir}",
        markup=False,
        soft_wrap=True,
    )
    try:
        run_grids(specs, executor, on_ray, quiet)
    finally:
        if (Path(results_dir) / "runs").is_dir():
            store_suite_file(suite, results_dir)


@suite_app.command("report")
def report_cmd(
    name: str = typer.Argument(..., help="A suite name or a suite file."),
    results_dir: Path | None = typer.Option(
        None, help="Results folder (default: results/suites/<name>)."
    ),
    readme: Path | None = typer.Option(
        None,
        "--readme",
        help="Write the table into this file, between the lines "
        "'<!-- bench suite report NAME: start -->' and '<!-- bench suite report NAME: end -->'.",
    ),
    precision: str | None = typer.Option(
        None,
        help="The precision the suite was run with (`suite run --precision`), fp32 or bf16; "
        "default: each grid's.",
    ),
):
    """The suite's table from its parquet files: IQM [95% CI] per dataset and configuration,
    P(> bc) on the same dataset, the behavior's score, wall time and hardware, and the protocol
    (score: the final evaluation)."""
    from bench.analysis.report import write_into
    from bench.suite import load_suite

    suite = load_suite(name).with_precision(precision)  # an unknown value: one line
    results_dir = results_dir or Path("results") / "suites" / suite.name
    text, others = suite_report(suite, results_dir)
    left_out = (
        (
            f"; {others} other run(s) under {results_dir}/runs are not this suite's "
            "(another configuration or seed) and were left out"
        )
        if others
        else ""
    )
    if readme is None:
        print(text, end="")
        if left_out:
            print(f"suite {suite.name}{left_out}", file=sys.stderr)
        return
    write_into(readme, suite.name, text)
    stdout.print(
        f"wrote the {suite.name} table into {readme}{left_out}", markup=False, soft_wrap=True
    )


def suite_report(suite, results_dir: Path) -> tuple[str, int]:
    """The suite's table from its own runs only (its grids' configurations and seeds), and how
    many other runs the folder holds."""
    import os
    import tempfile

    from bench.analysis.report import report_markdown
    from bench.errors import BenchError
    from bench.results.schema import runs_dir
    from bench.suite import own_runs

    own, others = own_runs(suite, results_dir)
    if not own:
        besides = f" ({len(others)} run(s) of other configurations or seeds)" if others else ""
        raise BenchError(
            f"no runs of suite {suite.name} v{suite.version} under {runs_dir(results_dir)}"
            f"{besides}; run it with `bench suite run {suite.path}`"
        )
    with tempfile.TemporaryDirectory(prefix="bench-suite-report-") as tmp:
        view = runs_dir(Path(tmp))  # the suite's runs alone, as links to their folders
        view.mkdir()
        for run_id in own:
            os.symlink(runs_dir(results_dir).absolute() / run_id, view / run_id)
        try:
            return report_markdown(Path(tmp)), len(others)
        except BenchError as e:
            raise BenchError(str(e).replace(str(view), str(runs_dir(results_dir)))) from None
