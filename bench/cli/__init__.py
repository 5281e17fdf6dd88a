"""The `bench` command line. Thin: parse options, call library functions, print."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

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


@app.command("run")
def run_cmd(
    algo: str | None = typer.Option(None, "--algo", help="Algorithm name (see `bench algos`)."),
    dataset: str | None = typer.Option(
        None, "--dataset", help="Dataset card id (see `bench datasets list`)."
    ),
    seed: int = typer.Option(0, help="Seed of the networks, the sampler and the evaluation envs."),
    steps: int | None = typer.Option(None, help="Gradient updates (default: the card's)."),
    eval_every: int | None = typer.Option(
        None, help="Evaluate every N updates (default: the card's)."
    ),
    eval_episodes: int | None = typer.Option(
        None, help="Episodes per evaluation (default: the card's)."
    ),
    batch_size: int | None = typer.Option(None, help="Batch size (default: the card's)."),
    preset: str | None = typer.Option(
        None,
        help="Named config preset; default: the card's if the algorithm has it; 'none' for reference defaults.",
    ),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a config field: --set key=value (repeatable)."
    ),
    device: str = typer.Option("cpu", help="torch device, e.g. cpu or cuda."),
    env: str | None = typer.Option(None, help="Env id, when --dataset is a D4RL HDF5 file."),
    threads: int | None = typer.Option(None, help="torch threads (default: torch's)."),
    results_dir: Path = typer.Option(Path("results"), help="Where results/runs/<run_id>/ go."),
    resume: Path | None = typer.Option(
        None, help="Continue RUN_DIR from its last checkpoint (taken at every evaluation)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Train ALGO offline on DATASET, evaluate it periodically, write results/runs/<run_id>/.

    After a crash or a kill, `bench run --resume RUN_DIR` continues from the last evaluation."""
    from bench.algos.base import parse_overrides
    from bench.runner import RunSpec, run

    if resume is None and (algo is None or dataset is None):
        raise BenchError("--algo and --dataset are required (or --resume RUN_DIR)")
    spec = RunSpec(
        algo=algo or "",
        dataset=dataset or "",
        seed=seed,
        steps=steps,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        batch_size=batch_size,
        preset=preset,
        overrides=parse_overrides(set_),
        device=device,
        env=env,
        threads=threads,
        results_dir=results_dir,
        resume=resume,
    )
    result = run(spec, show_progress=not quiet)
    first = (
        result.eval_rows[0]
        if result.eval_rows
        else {"algo": algo, "dataset": dataset, "seed": seed}
    )
    table = Table(
        title=f"{first['algo']} on {first['dataset']}, seed {first['seed']} "
        "(normalized score: 0-100 scale)"
    )
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
    stdout.print(f"wall time {result.wall_time_s:.1f} s")
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


@datasets_app.command("list")
def datasets_list():
    """List the dataset cards, whether each is built in the Minari root, and the Minari remote
    dataset that is its published counterpart (`--dataset minari:<id>` uses it)."""
    from bench.data.cards import card_ids, load_card
    from bench.data.minari_io import dataset_exists, minari_root

    table = Table(title=f"datasets (Minari root: {minari_root()})")
    for col in ("id", "env", "minari id", "size", "built", "remote"):
        table.add_column(col, no_wrap=True)
    table.add_column("description")
    for cid in card_ids():
        card = load_card(cid)
        built = "yes" if dataset_exists(card.minari_id) else "no"
        table.add_row(cid, card.env.id, card.minari_id, f"{card.size:,}", built,
                      card.remote or "", card.description)  # fmt: skip
    stdout.print(table)


@datasets_app.command("build")
def datasets_build(
    dataset: str = typer.Argument(..., help="Dataset card id."),
    size: int | None = typer.Option(None, help="Transitions to collect (default: the card's)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if it exists."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Collect DATASET with its behavior policy into a Minari dataset (lossless, seeded)."""
    from bench.data.build import build_dataset
    from bench.data.cards import load_card
    from bench.progress import progress_bar

    card = load_card(dataset)
    total = card.size if size is None else size
    with progress_bar(f"building {card.id}", total, not quiet) as (advance, _):
        ds = build_dataset(card, size=size, progress=advance, force=force)
    meta = ds.storage.metadata
    stdout.print(
        f"built {card.minari_id}: {ds.total_episodes} episodes, {ds.total_steps} steps, "
        f"ref_min {meta['ref_min_score']:.2f}, ref_max {meta['ref_max_score']:.2f}"
    )


@datasets_app.command("import")
def datasets_import(
    file: Path = typer.Argument(..., help="D4RL-layout HDF5 file."),
    env: str = typer.Option(..., "--env", help="gymnasium id of the env it was collected on."),
    as_: str = typer.Option(..., "--as", help="Minari id to store it under, e.g. mine/hopper-v0."),
    ref_min: float | None = typer.Option(
        None, help="Reference min return (default: D4RL's for its env)."
    ),
    ref_max: float | None = typer.Option(
        None, help="Reference max return (default: D4RL's for its env)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing dataset."),
):
    """Import a D4RL HDF5 file as a Minari dataset; train on it with --dataset minari:<id>."""
    from bench.data.d4rl_io import import_d4rl

    ds = import_d4rl(file, env, as_, ref_min, ref_max, force)
    stdout.print(f"imported {file} as {as_}: {ds.total_episodes} episodes, {ds.total_steps} steps")


@datasets_app.command("export")
def datasets_export(
    dataset: str = typer.Argument(..., help="Card id or minari:<id>."),
    file: Path = typer.Argument(..., help="Output HDF5 file."),
    format: str = typer.Option("d4rl", "--format", help="Output layout (d4rl)."),
):
    """Write a dataset to an HDF5 file in the D4RL layout (with next_observations)."""
    from bench.data.catalog import resolve_card
    from bench.data.d4rl_io import export_d4rl
    from bench.data.minari_io import open_dataset

    if format != "d4rl":
        raise BenchError(f"unknown format '{format}'; choose one of: d4rl")
    card = resolve_card(dataset)
    export_d4rl(open_dataset(card.minari_id), file)
    stdout.print(f"wrote {file}")


@datasets_app.command("info")
def datasets_info(dataset: str = typer.Argument(..., help="Dataset card id.")):
    """Episodes, transitions, returns, reference scores and sizes of a built dataset."""
    import torch

    from bench.data.cards import load_card
    from bench.data.data import OfflineData
    from bench.data.minari_io import dataset_dir, dataset_exists, open_dataset
    from bench.evaluate import normalized_score

    card = load_card(dataset)
    table = Table(title=f"{card.id}: {card.description}", show_header=False)
    table.add_column("field", no_wrap=True)
    table.add_column("value")
    table.add_row("env", f"{card.env.id} {card.env.kwargs or ''}")
    if card.env.atari is not None:
        table.add_row("preprocessing", f"AtariPreprocessing {card.env.atari}")
    if card.env.frame_stack > 1:
        table.add_row(
            "frame stack", f"{card.env.frame_stack} (stored once per frame, stacked at sample time)"
        )
    table.add_row("minari id", card.minari_id)
    table.add_row("behavior", f"{card.behavior.policy}, epsilon {card.behavior.epsilon}")
    if not dataset_exists(card.minari_id):
        table.add_row("built", f"no (`bench datasets build {card.id}` builds {card.size:,} steps)")
        stdout.print(table)
        return
    ds = open_dataset(card.minari_id)
    meta = ds.storage.metadata
    data = OfflineData.from_minari(ds, frame_stack=card.env.frame_stack)
    rets = data.episode_returns()
    disk = sum(f.stat().st_size for f in dataset_dir(card.minari_id).rglob("*") if f.is_file())
    tensors = [t for t in vars(data).values() if isinstance(t, torch.Tensor)]
    mem = sum(t.numel() * t.element_size() for t in tensors)
    table.add_row("episodes", f"{data.num_episodes:,}")
    table.add_row("transitions", f"{len(data):,}")
    table.add_row(
        "return min / mean / max", f"{rets.min():.1f} / {rets.mean():.1f} / {rets.max():.1f}"
    )
    table.add_row(
        "reference scores",
        f"ref_min {meta['ref_min_score']:.2f}, ref_max {meta['ref_max_score']:.2f} ({card.ref_source})",
    )
    score = normalized_score(rets.mean(), meta["ref_min_score"], meta["ref_max_score"])
    table.add_row("dataset return score", f"{score:.1f} (normalized: 0 = ref_min, 100 = ref_max)")
    if "bench_behavior_return_mean" in meta:
        table.add_row(
            "behavior mean return",
            f"{meta['bench_behavior_return_mean']:.1f} over the "
            f"{meta['bench_behavior_complete_episodes']} complete episodes collected",
        )
    table.add_row("bytes on disk", f"{disk / 2**20:.1f} MiB")
    table.add_row(
        "bytes in memory",
        f"{mem / 2**20:.1f} MiB (observations {data.obs.dtype}, actions, rewards, indices)",
    )
    stdout.print(table)


@behavior_app.command("train")
def behavior_train(
    algo: str = typer.Option(
        ..., "--algo", help="An online-capable algorithm: redq or discrete_sac."
    ),
    env: str = typer.Option(..., "--env", help="gymnasium env id, e.g. Pendulum-v1."),
    steps: int = typer.Option(..., "--steps", help="Environment steps to collect."),
    utd: int = typer.Option(
        1, "--utd", help="Updates per environment step (update-to-data ratio G)."
    ),
    seed: int = typer.Option(0, help="Seed of networks, exploration and env resets."),
    batch_size: int = typer.Option(256, help="Batch size of each update."),
    start_steps: int = typer.Option(
        1000, help="Uniform-random steps before the policy acts and updates begin."
    ),
    eval_every: int = typer.Option(
        1000, help="Evaluate and save a policy checkpoint every N env steps."
    ),
    eval_episodes: int = typer.Option(10, help="Episodes per evaluation."),
    preset: str | None = typer.Option(None, help="Named config preset."),
    set_: list[str] = typer.Option([], "--set", help="Override a config field: --set key=value."),
    out: Path = typer.Option(
        Path("behaviors"), help="Folder for checkpoints, checkpoints.json, replay.npz."
    ),
    threads: int | None = typer.Option(None, help="torch threads (default: torch's)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Train ALGO online on ENV; save evaluated policy checkpoints and the replay buffer."""
    import torch

    from bench.algos.base import parse_overrides
    from bench.online import OnlineSpec, train_online

    if threads:
        torch.set_num_threads(threads)
    spec = OnlineSpec(
        algo=algo, env=env, steps=steps, utd=utd, seed=seed, batch_size=batch_size,
        start_steps=start_steps, eval_every=eval_every, eval_episodes=eval_episodes,
        preset=preset, overrides=parse_overrides(set_), out=out,
    )  # fmt: skip
    records = train_online(spec, show_progress=not quiet).records
    table = Table(title=f"{algo} online on {env}: saved policies in {out}")
    for col in ("step", "return mean", "return std", "file"):
        table.add_column(col, justify="right")
    for r in records:
        table.add_row(
            str(r["step"]), f"{r['return_mean']:.1f}", f"{r['return_std']:.1f}", r["file"]
        )
    stdout.print(table)


def wide_console() -> Console:
    """stdout at no less than 250 columns: wide tables are never squeezed or cut when piped."""
    return Console(width=max(stdout.width, 250))


def _score_spec(score: str, last_k: int):
    from bench.leaderboard import ScoreSpec

    return ScoreSpec(score, last_k)


RESULTS_OPT = typer.Option(Path("results"), "--results", help="Results folder (holds runs/).")
SCORE_OPT = typer.Option(
    "final", "--score", help="final: mean of each run's last k evaluations; best: max (optimistic)."
)
LAST_K_OPT = typer.Option(3, "--last-k", help="Evaluations averaged by the final score.")


@app.command("leaderboard")
def leaderboard_cmd(
    results: Path = RESULTS_OPT,
    format: str = typer.Option("md", "--format", help="md (terminal), csv or html."),
    score: str = SCORE_OPT,
    last_k: int = LAST_K_OPT,
    out: Path | None = typer.Option(None, "--out", help="Write csv/html here instead of stdout."),
):
    """Table of normalized scores per algo x dataset, with 95% confidence intervals.

    One row per algo x dataset: seeds, mean / median / IQM of the normalized score with 95%
    stratified bootstrap CIs, raw return, steps and the command that reproduces it; then one
    row per algorithm across datasets (IQM, optimality gap). Runs still in progress are left
    out and counted."""
    from rich import box

    from bench.leaderboard import (
        display_aggregate,
        display_frame,
        leaderboard,
        protocol_line,
        to_html,
    )  # fmt: skip

    if format not in ("md", "csv", "html"):
        raise BenchError(f"unknown format '{format}'; choose one of: md, csv, html")
    spec = _score_spec(score, last_k)
    table, agg, in_progress = leaderboard(results, spec)
    protocol = protocol_line(table, spec)
    if format == "md":
        if table.empty:
            raise BenchError(
                f"no complete runs under {results}/runs ({len(in_progress)} in progress)"
            )
        per_dataset = display_frame(table)
        wide = wide_console()
        for title, frame in (("per dataset", per_dataset.drop(columns="command")),
                             ("aggregate across datasets", display_aggregate(agg))):  # fmt: skip
            t = Table(title=title, box=box.MARKDOWN, title_justify="left")
            for col in frame.columns:
                t.add_column(col, no_wrap=True)
            for row in frame.itertuples(index=False):
                t.add_row(*map(str, row))
            wide.print(t)
        stdout.print(protocol, soft_wrap=True)
        stdout.print("reproduce:")
        for row in per_dataset.itertuples(index=False):
            stdout.print(
                f"  {row.algo} x {row.dataset}: {row.command}", soft_wrap=True, markup=False
            )
        if len(in_progress):
            stdout.print(f"{len(in_progress)} run(s) in progress, not counted: "
                         + ", ".join(in_progress.run_id), soft_wrap=True)  # fmt: skip
        return
    if format == "csv":
        text = table.assign(score=spec.kind, last_k=spec.last_k).to_csv(index=False)
    else:
        text = to_html(table, agg, protocol, len(in_progress))
    if out is None:
        sys.stdout.write(text)
    else:
        from bench.results import atomic_write_bytes

        atomic_write_bytes(out, text.encode())
        stdout.print(f"wrote {out}")


@app.command("plot")
def plot_cmd(
    results: Path = RESULTS_OPT,
    kind: str = typer.Option(
        "all",
        "--kind",
        help="curves (learning curves), bars (IQM / optimality gap with CIs), "
        "profile (performance profiles), or all.",
    ),
    out: Path = typer.Option(
        Path("results/plots"), "--out", help="Folder for the PNG and SVG files."
    ),
    score: str = SCORE_OPT,
    last_k: int = LAST_K_OPT,
):
    """Seaborn figures from the results tables, as PNG and SVG at paper size."""
    from bench.plots import KINDS, plot

    spec = _score_spec(score, last_k)
    kinds = KINDS if kind == "all" else (kind,)
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
    score: str = SCORE_OPT,
    last_k: int = LAST_K_OPT,
):
    """Compare the current results with a baseline table; exit 1 on a regression.

    Fails when, for an algo x dataset of the baseline, the current IQM falls below
    the baseline's 95% CI lower bound minus the tolerance, or has no complete runs."""
    import math

    from bench.check import check, read_baseline, write_baseline
    from bench.leaderboard import fmt_ci

    if update:
        base = write_baseline(results, baseline, _score_spec(score, last_k))
        stdout.print(f"wrote {baseline}: {len(base)} algo x dataset rows")
        return
    rows = check(results, read_baseline(baseline), tolerance)
    t = Table(title=f"bench check against {baseline} (tolerance {tolerance:g})")
    for col in ("algo", "dataset", "baseline IQM [95% CI]", "threshold", "current IQM [95% CI]",
                "seeds", "result"):  # fmt: skip
        t.add_column(col, no_wrap=True)
    for r in rows.itertuples(index=False):
        missing = math.isnan(r.iqm_now)
        t.add_row(
            r.algo, r.dataset, fmt_ci(r.iqm_base, r.iqm_lo_base, r.iqm_hi_base),
            f"{r.threshold:.1f}",
            "no complete runs" if missing else fmt_ci(r.iqm_now, r.iqm_lo_now, r.iqm_hi_now),
            "" if missing else str(int(r.seeds_now)),
            "[green]pass[/]" if r.passed else "[red]FAIL[/]",
        )  # fmt: skip
    wide_console().print(t)
    failed = int((~rows.passed).sum())
    if failed:
        stdout.print(f"{failed} of {len(rows)} regressed")
        raise typer.Exit(1)
    stdout.print(f"all {len(rows)} passed")


class _GridView:
    """A rich table of the grid: one row per algo x dataset, one column per seed."""

    SYMBOL = {"new": "[dim]pending[/]", "resume": "[yellow]to resume[/]", "skip": "[blue]done[/]",
              "running": "[cyan]running[/]", "queued": "[cyan]queued[/]"}  # fmt: skip

    def __init__(self, jobs, seeds):
        self.seeds = seeds
        self.state = {j.cell: self.SYMBOL[j.action] for j in jobs}
        self.rows = list(dict.fromkeys((j.cell.algo, j.cell.dataset) for j in jobs))
        self.scores = {}
        for j in jobs:
            if j.action == "skip":
                self.state[j.cell] = "[blue]done (kept)[/]"

    def update(self, cell, state, result=None):
        if state in ("running", "queued"):
            self.state[cell] = self.SYMBOL[state]
        elif state == "done":
            self.state[cell] = f"[green]{result['score']:.1f}[/]"
        else:
            self.state[cell] = "[red]failed[/]"

    def __rich__(self):
        t = Table(title="sweep: final normalized score per run", title_justify="left")
        t.add_column("algo x dataset", no_wrap=True)
        for s in self.seeds:
            t.add_column(f"seed {s}", no_wrap=True, justify="right")
        from bench.sweep import Cell

        for algo, dataset in self.rows:
            t.add_row(
                f"{algo} x {dataset}", *(self.state[Cell(algo, dataset, s)] for s in self.seeds)
            )
        return t


@app.command("sweep")
def sweep_cmd(
    algo: str = typer.Option(..., "--algo", help="Comma-separated algorithm names."),
    dataset: str = typer.Option(..., "--dataset", help="Comma-separated dataset ids."),
    seeds: str = typer.Option("0-4", "--seeds", help="Seeds: a range 0-4, a list 0,2,5, or both."),
    steps: int | None = typer.Option(None, help="Gradient updates per run (default: each card's)."),
    eval_every: int | None = typer.Option(None, help="Evaluate every N updates."),
    eval_episodes: int | None = typer.Option(None, help="Episodes per evaluation."),
    batch_size: int | None = typer.Option(None, help="Batch size."),
    preset: str | None = typer.Option(
        None, help="Named config preset ('none': reference defaults)."
    ),
    set_: list[str] = typer.Option([], "--set", help="Override a config field: --set key=value."),
    env: str | None = typer.Option(
        None, "--env", help="Env id for D4RL HDF5 files given as datasets."
    ),
    results_dir: Path = typer.Option(Path("results"), help="Shared results folder (runs/ inside)."),
    workers: int = typer.Option(0, help="Runs at once (default: one per 2 cores, at least 1)."),
    executor: str = typer.Option("local", help="local (a process pool) or ray."),
    address: str | None = typer.Option(
        None, help="Ray cluster address (e.g. ray://head:10001); default: start Ray locally."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live grid display."),
):
    """Run a grid of algos x datasets x seeds (local process pool or Ray).

    Complete runs already in the results folder are skipped and incomplete ones resume from their last checkpoint, so re-running a stopped sweep
    finishes it. Threads per run are set so that workers x threads <= cores."""
    import os

    from rich.live import Live

    from bench.algos import get_algorithm
    from bench.algos.base import parse_overrides
    from bench.sweep import (
        RUN_OPTIONS,
        SweepSpec,
        execute,
        parse_list,
        parse_seeds,
        plan,
        prepare_datasets,
    )  # fmt: skip

    algos = parse_list(algo, "algo")
    for a in algos:
        get_algorithm(a)  # unknown names fail before anything runs
    cores = os.cpu_count() or 1
    if workers < 0:
        raise BenchError(f"--workers must be >= 1, got {workers}")
    n_workers = workers or max(1, cores // 2)
    given = dict(steps=steps, eval_every=eval_every, eval_episodes=eval_episodes,
                 batch_size=batch_size, preset=preset, env=env)  # fmt: skip
    spec = SweepSpec(
        algos=algos, datasets=parse_list(dataset, "dataset"), seeds=parse_seeds(seeds),
        options={k: v for k, v in given.items() if v is not None and k in RUN_OPTIONS},
        overrides=parse_overrides(set_), results_dir=results_dir, workers=n_workers,
        threads=max(1, cores // n_workers),
    )  # fmt: skip
    prepare_datasets(spec.datasets, env, show_progress=not quiet)
    jobs = plan(spec)
    counts = {a: sum(j.action == a for j in jobs) for a in ("new", "resume", "skip")}
    stdout.print(
        f"sweep: {len(jobs)} runs ({counts['new']} new, {counts['resume']} to resume, "
        f"{counts['skip']} complete); {spec.workers} worker(s) x {spec.threads} thread(s), "
        f"executor {executor}"
    )
    view = _GridView(jobs, spec.seeds)
    if quiet:
        results = execute(jobs, spec, executor, address)
    else:
        console = stdout if stdout.is_terminal else wide_console()
        with Live(view, console=console, refresh_per_second=2):
            results = execute(jobs, spec, executor, address, view.update)
        stdout.print()
    failed = [r for r in results if not r["ok"]]
    for r in failed:
        c = r["cell"]
        stdout.print(f"failed: {c['algo']} x {c['dataset']} seed {c['seed']}: {r['error']}",
                     markup=False, soft_wrap=True)  # fmt: skip
    stdout.print(f"results in {results_dir}/runs; `bench leaderboard --results {results_dir}`")
    if failed:
        raise typer.Exit(1)


@app.command("perf")
def perf_cmd(
    algos: str = typer.Option("all", help="Comma-separated algorithm names, or 'all'."),
    threads: str = typer.Option("1,2", help="Comma-separated torch thread counts."),
    repeats: int = typer.Option(3, help="Timed windows per case; the median is reported."),
    min_time: float = typer.Option(1.0, help="Seconds per timed window."),
    acting: bool = typer.Option(
        True, "--acting/--no-acting", help="Also measure acting throughput."
    ),
    memory_sizes: str = typer.Option(
        "100000,1000000",
        "--memory-sizes",
        help="Atari dataset sizes (transitions) whose loading memory is measured; '' skips. "
        "Each writes a synthetic lossless dataset to a temp folder (7 GB for 1M).",
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the results as JSON."),
):
    """Throughput benchmark: training, acting, and Atari loading memory.

    Updates/s (incl. sampling) at batch 32 and 256 (Atari CNN: 32), FLOPs per update, GFLOP/s
    against the matmul roofline of the same shapes, acting throughput on 10 envs, and the memory
    of loading Atari datasets (frames stored once, stacks gathered at sample time)."""
    import json

    from bench.algos import REGISTRY
    from bench.errors import UnknownNameError
    from bench.perf import default_cases, measure_acting, measure_atari_memory, measure_case

    names = sorted(REGISTRY) if algos == "all" else [a.strip() for a in algos.split(",")]
    for name in names:
        if name not in REGISTRY:
            raise UnknownNameError("algorithm", name, list(REGISTRY))
    try:
        thread_counts = [int(t) for t in threads.split(",")]
    except ValueError:
        raise BenchError(f"bad --threads '{threads}': expected e.g. 1,2") from None
    try:
        sizes = [int(n) for n in memory_sizes.split(",") if n.strip()]
    except ValueError:
        raise BenchError(f"bad --memory-sizes '{memory_sizes}': expected e.g. 100000") from None
    cases = [c for c in default_cases() if c.algo in names]
    rows = []
    table = Table(
        title="training updates/s incl. sampling (median of repeats); MFLOP per update; GF/s "
        "achieved; roof: GF/s of the same matmuls alone; %roof = achieved / roof",
        title_justify="left",
    )
    for col in ("case", "B", "thr", "upd/s", "MFLOP", "GF/s", "roof", "%roof"):
        table.add_column(col, justify="right", no_wrap=True)
    for case in cases:
        for t in thread_counts:
            r = measure_case(case, t, repeats, min_time)
            rows.append(r)
            label = r["algo"] if r["shape"] == "vector" else f"{r['algo']} ({r['shape']})"
            table.add_row(
                label, str(r["batch_size"]), str(t), f"{r['updates_per_s']:.1f}",
                f"{r['mflop_per_update']:.1f}", f"{r['achieved_gflops']:.1f}",
                f"{r['roofline_gflops']:.1f}", f"{100 * r['roofline_fraction']:.0f}%",
            )  # fmt: skip
    stdout.print(table)
    acting_rows = []
    if acting:
        act_table = Table(title="acting throughput (evaluation policy, 10 vector envs)")
        for col in ("algo", "env", "threads", "env steps/s", "batched vs per-obs loop"):
            act_table.add_column(col, justify="right", no_wrap=True)
        for t in thread_counts:
            for r in measure_acting(t, repeats):
                if r["algo"] in names:
                    acting_rows.append(r)
                    speedup = r.get("batched_vs_loop_speedup")
                    act_table.add_row(
                        r["algo"], r["env"], str(t), f"{r['env_steps_per_s']:.0f}",
                        f"{speedup:.1f}x" if speedup else "",
                    )  # fmt: skip
        stdout.print(act_table)
    memory_rows = []
    if sizes:
        mem_table = Table(
            title="loading Atari transitions (84x84 frames once, 4-stacks at sample time)"
        )
        for col in ("transitions", "frame bytes", "peak RSS added", "RSS / frames", "load s"):
            mem_table.add_column(col, justify="right", no_wrap=True)
        for n in sizes:
            r = measure_atari_memory(n)
            memory_rows.append(r)
            mem_table.add_row(
                f"{n:,}", f"{r['frame_bytes'] / 2**20:,.0f} MiB",
                f"{r['rss_delta'] / 2**20:,.0f} MiB", f"{r['rss_over_frames']:.3f}",
                f"{r['load_s']:.1f}",
            )  # fmt: skip
        stdout.print(mem_table)
    if json_path is not None:
        result = {"training": rows, "acting": acting_rows, "atari_memory": memory_rows}
        json_path.write_text(json.dumps(result, indent=2))


def main() -> None:
    try:
        app()
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
