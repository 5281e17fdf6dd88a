"""`bench leaderboard`, `bench plot` and `bench check`: read the results, render."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from bench.cli.app import app, stdout, wide_console
from bench.errors import BenchError


def _score_spec(score: str, last_k: int):
    from bench.analysis.scores import ScoreSpec

    return ScoreSpec(score, last_k)


RESULTS_OPT = typer.Option(Path("results"), "--results", help="Results folder (holds runs/).")
SCORE_OPT = typer.Option(
    "final",
    "--score",
    help="final: each run's final evaluation of its last policy (runs without one: the mean of "
    "their last k evaluations); last: the mean of the learning curve's last k evaluations; "
    "best: the max over the learning curve (optimistic: selected on the test episodes); "
    "selected:METHOD (fqe, q0, td, likelihood, last, random): the true score of the checkpoint "
    "that method picks per seed offline (run `bench select` first).",
)
LAST_K_OPT = typer.Option(
    3,
    "--last-k",
    help="Evaluations averaged by the last score (and by final, for runs without one).",
)


def _md_table(title: str, frame) -> Table:
    from rich import box

    t = Table(title=title, box=box.MARKDOWN, title_justify="left")
    for col in frame.columns:
        t.add_column(col, no_wrap=True)
    for row in frame.itertuples(index=False):
        t.add_row(*map(str, row))
    return t


@app.command("leaderboard")
def leaderboard_cmd(
    results: Path = RESULTS_OPT,
    format: str = typer.Option("md", "--format", help="md (terminal), csv or html."),
    score: str = SCORE_OPT,
    last_k: int = LAST_K_OPT,
    out: Path | None = typer.Option(None, "--out", help="Write csv/html here instead of stdout."),
):
    """Table of normalized scores per configuration x dataset, with 95% confidence intervals.

    One row per configuration (run key) and dataset: seeds, mean / median / IQM of the
    normalized score with 95% stratified bootstrap CIs, raw return, steps and the command that
    reproduces it. Configurations of one algorithm are labelled by what differs (`bc
    (steps=1000)`) and never pooled. Then aggregates across datasets, each over the datasets
    its algorithms all have (what is left out is listed), with IQM, mean, median, optimality
    gap and the probability of improvement P(X > Y) for each pair. Runs in progress and
    duplicate runs of one configuration and seed are listed, not counted."""
    from bench.analysis.leaderboard import (
        block_title,
        csv_frame,
        display_block,
        display_frame,
        display_improvement,
        leaderboard,
        protocol_frame,
        protocol_line,
        suites_line,
        time_frame,
        to_html,
    )

    if format not in ("md", "csv", "html"):
        raise BenchError(f"unknown format '{format}'; choose one of: md, csv, html")
    if format == "md" and out is not None:
        raise BenchError("--out writes csv or html; md prints to the terminal (use --format)")
    spec = _score_spec(score, last_k)
    board = leaderboard(results, spec)
    res = board.results
    protocol = protocol_line(board, spec)
    if board.rows.empty:
        raise BenchError(
            f"no complete runs under {results}/runs ({len(res.in_progress)} in progress)"
        )
    if format == "md":
        per_dataset = display_frame(board.rows)
        wide = wide_console()
        wide.print(_md_table("per dataset", per_dataset.drop(columns="command")))
        for b in board.blocks:
            wide.print(_md_table(block_title(b), display_block(b)))
            if len(b.improvement):
                wide.print(_md_table("probability of improvement", display_improvement(b)))
            if b.left_out:
                stdout.print(
                    "left out of this comparison: " + ", ".join(b.left_out),
                    soft_wrap=True,
                    markup=False,
                )
        stdout.print(protocol, soft_wrap=True, markup=False)
        wide.print(_md_table("protocol per dataset", protocol_frame(board)))
        times = time_frame(board)
        if len(times):
            wide.print(
                _md_table(
                    "where the time went (median over runs; an update of the job "
                    "that trained the seeds together)",
                    times,
                )
            )
        suites = suites_line(board)
        if suites:
            stdout.print(suites, soft_wrap=True, markup=False)
        stdout.print("reproduce:")
        for row in per_dataset.itertuples(index=False):
            stdout.print(
                f"  {row.algo} x {row.dataset}: {row.command}", soft_wrap=True, markup=False
            )
        if len(res.in_progress):
            states = [
                f"{r.run_id} ({'running' if r.running else f'stopped at step {r.step}'})"
                for r in res.in_progress.itertuples()
            ]
            stdout.print(
                f"{len(states)} run(s) in progress, not counted: " + ", ".join(states),
                soft_wrap=True,
                markup=False,
            )
        for r in res.duplicates.itertuples():
            stdout.print(
                f"duplicate, not counted: {r.run_id} (same configuration and seed "
                f"{r.seed} as {r.duplicate_of}, which is kept)",
                soft_wrap=True,
                markup=False,
            )
        return
    if format == "csv":
        text = csv_frame(board, spec).to_csv(index=False)
    else:
        text = to_html(board, protocol)
    if out is None:
        sys.stdout.write(text)
    else:
        from bench.results.schema import atomic_write_bytes

        atomic_write_bytes(out, text.encode())
        stdout.print(f"wrote {out}")


@app.command("plot")
def plot_cmd(
    results: Path = RESULTS_OPT,
    kind: str = typer.Option(
        "all",
        "--kind",
        help="curves (learning curves), bars (IQM / optimality gap with CIs), "
        "profile (performance profiles), selection (offline estimates against true scores, "
        "after `bench select`), or all (selection where the results have it).",
    ),
    out: Path = typer.Option(
        Path("results/plots"), "--out", help="Folder for the PNG and SVG files."
    ),
    score: str = SCORE_OPT,
    last_k: int = LAST_K_OPT,
):
    """Seaborn figures from the results tables, as PNG and SVG at paper size."""
    from bench.analysis.plots import KINDS, plot

    spec = _score_spec(score, last_k)
    from bench.ope.select import SELECTION_TABLE

    selected = (Path(results) / SELECTION_TABLE).is_file()
    kinds = (*KINDS, *(("selection",) if selected else ())) if kind == "all" else (kind,)
    for k in kinds:
        for path in plot(results, k, out, spec):
            stdout.print(f"wrote {path}")


@app.command("check")
def check_cmd(
    baseline: Path = typer.Option(..., "--baseline", help="Baseline parquet table."),
    results: Path = RESULTS_OPT,
    tolerance: float = typer.Option(
        5.0, "--tolerance", help="Normalized-score points allowed below the baseline's CI."
    ),
    update: bool = typer.Option(
        False, "--update", help="Write the current results as the new baseline instead."
    ),
    score: str | None = typer.Option(
        None,
        "--score",
        help="With --update: the score the baseline is made with (as for `bench leaderboard`; "
        "default final). A check compares by the baseline's own score; another one is refused.",
    ),
    last_k: int | None = typer.Option(
        None, "--last-k", help="With --update: evaluations averaged by the last score (default 3)."
    ),
):
    """Compare the current results with a baseline table; exit 1 on a regression.

    Fails when, for a configuration x dataset of the baseline (matched by run key), the current
    IQM falls below the baseline's 95% CI lower bound (its IQM, for a one-seed baseline) minus
    the tolerance, or has no complete runs (then it says why: not run, not complete, or what
    the nearest runs of that algorithm and dataset differ in)."""
    import math

    from bench.analysis.check import check, read_baseline, write_baseline
    from bench.analysis.leaderboard import fmt_ci

    asked = None
    if score is not None or last_k is not None:
        asked = _score_spec("final" if score is None else score, 3 if last_k is None else last_k)
    if update:
        base = write_baseline(results, baseline, asked or _score_spec("final", 3))
        stdout.print(f"wrote {baseline}: {len(base)} configuration x dataset rows")
        return
    base = read_baseline(baseline)
    if asked is not None and (score is None or last_k is None):  # the other one: the baseline's
        kind, k = str(base.score.iloc[0]), int(base.last_k.iloc[0])
        asked = _score_spec(kind if score is None else score, k if last_k is None else last_k)
    rows = check(results, base, tolerance, asked)
    t = Table(title=f"bench check against {baseline} (tolerance {tolerance:g})")
    for col in (
        "algo",
        "dataset",
        "key",
        "baseline IQM [95% CI]",
        "threshold",
        "current IQM [95% CI]",
        "seeds",
        "result",
    ):
        t.add_column(col, no_wrap=True)
    for r in rows.itertuples(index=False):
        missing = math.isnan(r.iqm_now)
        t.add_row(
            r.label,
            r.dataset,
            r.key,
            fmt_ci(r.iqm_base, r.iqm_lo_base, r.iqm_hi_base),
            f"{r.threshold:.1f}",
            "no complete runs" if missing else fmt_ci(r.iqm_now, r.iqm_lo_now, r.iqm_hi_now),
            "" if missing else str(int(r.seeds_now)),
            "[green]pass[/]" if r.passed else "[red]FAIL[/]",
        )
    wide_console().print(t)
    for r in rows[rows.why != ""].itertuples(index=False):
        stdout.print(
            f"{r.label} x {r.dataset} (key {r.key}): {r.why}", soft_wrap=True, markup=False
        )
    failed = int((~rows.passed).sum())
    if failed:
        stdout.print(f"{failed} of {len(rows)} regressed")
        raise typer.Exit(1)
    stdout.print(f"all {len(rows)} passed")
