"""`bench select`: offline policy selection over a results folder, and what it would cost."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import typer

from bench.cli.app import app, stdout, wide_console
from bench.errors import BenchError

FORMATS = ("md", "csv", "json")
#: FQE's memory per transition of a batch and per candidate trained together: the batch, the
#: activations of Q and Q' and the gradients (MLP 256-256 on vector observations; the Nature CNN
#: on stacked 84x84 frames), with room to spare. Batches whose total does not fit the memory
#: available are refused before anything trains.
FQE_SAMPLE_BYTES = {"vector": 16 << 10, "image": 512 << 10}


def _ci(point: float, lo: float, hi: float) -> str:
    if math.isnan(point):
        return "-"
    if math.isnan(lo):
        return f"{point:.2f}"
    return f"{point:.2f} [{lo:.2f}, {hi:.2f}]"


def _display(metrics):
    import pandas as pd

    rows = []
    for r in metrics.itertuples(index=False):
        rows.append(
            {
                "dataset": r.dataset,
                "algo": r.algo,
                "configuration": "all" if r.key == "*" else r.key,
                "method": r.method,
                "seeds": r.seeds,
                "candidates": r.candidates,
                "regret@1": _ci(r.regret_1, r.regret_1_lo, r.regret_1_hi),
                "regret@3": _ci(r.regret_3, r.regret_3_lo, r.regret_3_hi),
                "rank corr.": _ci(r.rank_corr, r.rank_corr_lo, r.rank_corr_hi),
                "abs. error": _ci(r.abs_error, r.abs_error_lo, r.abs_error_hi),
                "picked score": f"{r.picked_score:.1f}",
            }
        )
    return pd.DataFrame(rows)


@app.command("select")
def select_cmd(
    results: Path = typer.Option(
        Path("results"), "--results", help="Results folder (holds runs/)."
    ),
    method: str = typer.Option(
        "",
        "--method",
        help="Comma-separated (default: all; q0 and td only where the algorithm has a Q "
        "function): fqe (Fitted Q Evaluation), q0 (the algorithm's own Q at initial "
        "states), td (its TD error), likelihood (action agreement), last (the last checkpoint), "
        "random (the expectation over uniform picks).",
    ),
    dataset: str = typer.Option("", "--dataset", help="Comma-separated datasets (default: all)."),
    steps: int = typer.Option(10_000, "--steps", help="FQE updates per candidate."),
    gamma: float = typer.Option(0.99, "--gamma", help="FQE discount (evaluations record 0.99)."),
    batch_size: int = typer.Option(100, "--batch-size", help="FQE transitions per update."),
    lr: float = typer.Option(1e-4, "--lr", help="FQE Adam learning rate."),
    target_update: int = typer.Option(
        100, "--target-update", help="FQE: copy Q into its target network every N updates."
    ),
    seed: int = typer.Option(0, "--seed", help="FQE seed (its networks and batches)."),
    loss: str = typer.Option(
        "mse",
        "--loss",
        help="FQE regression loss: mse (squared error) or huber (as d3rlpy's DiscreteFQE).",
    ),
    vectorize: bool = typer.Option(
        True,
        "--vectorize/--no-vectorize",
        help="FQE: all candidates of a dataset as one stacked training (--no-vectorize: one "
        "candidate at a time, the same estimates).",
    ),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda[:N]."),
    threads: int | None = typer.Option(None, "--threads", help="torch threads."),
    over: str = typer.Option(
        "checkpoints",
        "--over",
        help="checkpoints: pick among each configuration's checkpoints (a leaderboard cell); "
        "configs: among every configuration's checkpoints of an algorithm (hyperparameters "
        "too).",
    ),
    format: str = typer.Option("md", "--format", help="md (terminal), csv or json."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Choose a checkpoint per seed offline, and report what the choice costs.

    Every policy a run kept (policies/, one per evaluation) is a candidate. Each method scores
    the candidates from the dataset alone; per leaderboard cell (dataset x configuration) and
    seed it picks the highest, and the pick's true score comes from the evaluation table. Per
    cell and method, as DOPE (Fu et al. 2021) defines them: regret@1 and regret@3 (normalized
    points below the best candidate), Spearman rank correlation between estimate and true
    score, and the absolute error of value estimates against the evaluations' discounted
    returns; means over seeds with 95% bootstrap CIs. Writes selection.parquet in the results
    folder (rank by it with `bench leaderboard --score selected:METHOD`)."""
    from bench.ope.fqe import LOSSES, FQEConfig
    from bench.ope.select import SelectOptions, parse_methods, run_selection
    from bench.run.config import MAX_BUDGET, MAX_SEED, _count
    from bench.run.loop import check_device

    if format not in FORMATS:
        raise BenchError(f"unknown format '{format}'; choose one of: {', '.join(FORMATS)}")
    from bench.ope.select import METHODS, OVER

    methods = parse_methods(method) if method.strip() else METHODS
    if over not in OVER:
        raise BenchError(f"--over must be one of: {', '.join(OVER)}; got '{over}'")
    _count("steps", steps, most=MAX_BUDGET)
    _count("batch_size", batch_size)
    _count("target_update", target_update)
    if not 0 <= seed <= MAX_SEED:
        raise BenchError(f"--seed must be in 0..{MAX_SEED}, got {seed}")
    if not 0.0 <= gamma < 1.0:
        raise BenchError(f"--gamma must be in [0, 1), got {gamma}")
    if loss not in LOSSES:
        raise BenchError(f"--loss must be one of: {', '.join(LOSSES)}; got '{loss}'")
    if not (lr > 0 and math.isfinite(lr)):
        raise BenchError(f"--lr must be a positive number, got {lr}")
    if threads is not None:
        _count("threads", threads, most=1024)
        import torch

        torch.set_num_threads(threads)
    fqe = FQEConfig(
        gamma=gamma,
        lr=lr,
        batch_size=batch_size,
        target_update_interval=target_update,
        steps=steps,
        seed=seed,
        loss=loss,
    )
    datasets = [d.strip() for d in dataset.split(",") if d.strip()] or None
    dev = str(check_device(device))
    preflight(results, datasets, batch_size if "fqe" in methods else 0, vectorize, dev)
    opts = SelectOptions(
        results,
        methods,
        datasets,
        fqe,
        dev,
        vectorize,
        explicit=bool(method.strip()),
        over=over,
        show_progress=not quiet and format == "md",
    )
    with _one_selection_at_a_time(results):
        table, metrics, seconds = run_selection(opts)
    if format == "csv":
        sys.stdout.write(metrics.to_csv(index=False))
        return
    if format == "json":
        sys.stdout.write(json.dumps(json.loads(metrics.to_json(orient="records")), indent=1))
        sys.stdout.write("\n")
        return
    from bench.cli.analysis import _md_table

    wide_console().print(_md_table("offline selection (normalized points)", _display(metrics)))
    for name, s in seconds.items():
        if s:
            n = len(table[table["dataset"] == name][["run_id", "step"]].drop_duplicates())
            how = "together" if vectorize else "one at a time"
            stdout.print(
                f"FQE on {name}: {n} candidates, {steps:,} updates each, {how}: {s:.1f} s",
                soft_wrap=True,
                markup=False,
            )
    stdout.print(
        f"regret@k: best true score among a seed's candidates minus the best among the k "
        f"picked; rank corr.: Spearman; abs. error: |estimate - discounted return| "
        f"(gamma {gamma}); means over seeds, 95% bootstrap CIs. Wrote "
        f"{Path(results) / 'selection.parquet'}",
        soft_wrap=True,
        markup=False,
    )


def preflight(
    results: Path, datasets: list[str] | None, batch_size: int, vectorize: bool, device: str
) -> None:
    """Refusals that need the runs but nothing trained: a run whose policies/ is not a folder
    (its candidates would be silently missing), and an FQE batch (batch_size > 0) larger than
    a dataset or than the memory its candidates trained together would take."""
    from bench.data.minari_io import dataset_exists, open_dataset, with_margin
    from bench.perf import free_memory_on
    from bench.results.schema import runs_dir
    from bench.results.store import read_runs
    from bench.run.config import RunConfig
    from bench.run.policies import POLICY_DIR, kept_steps

    if not Path(results).is_dir():
        return  # find_candidates says so
    _check_table(Path(results))
    configs, _, _ = read_runs(results)
    found: dict[str, list] = {}  # dataset -> [a config, kept policies]
    for run_id, raw in sorted(configs.items()):
        try:
            c = RunConfig.from_json(raw, f"{run_id}/config.json")
        except BenchError:
            continue  # find_candidates names it
        if datasets and c.dataset not in datasets:
            continue
        folder = runs_dir(results) / run_id / POLICY_DIR
        if folder.is_symlink() and not folder.exists() or folder.exists() and not folder.is_dir():
            raise BenchError(
                f"{folder} is not a folder: the run's kept policies cannot be read (move the run "
                "out of the results folder, or train it again)"
            )
        found.setdefault(c.dataset, [c, 0])[1] += len(kept_steps(folder.parent))
    if batch_size <= 0:
        return
    for name, (c, kept) in found.items():
        if dataset_exists(c.minari_id):
            try:
                n = open_dataset(c.minari_id).total_steps
            except BenchError:
                n = 0  # unreadable: scoring says so
            if 0 < n < batch_size:
                raise BenchError(
                    f"--batch-size {batch_size:,} is larger than dataset {name} ({n:,} transitions)"
                )
        env = c.eval_env or {}
        kind = (
            "image" if env.get("atari") is not None or env.get("frame_stack", 1) > 1 else "vector"
        )
        together = max(kept, 1) if vectorize else 1
        need = with_margin(batch_size * together * FQE_SAMPLE_BYTES[kind])
        free, where = free_memory_on(device)
        if free < need:
            how = f"{together} candidates trained together" if together > 1 else "one candidate"
            raise BenchError(
                f"--batch-size {batch_size:,}: FQE on {name} ({how}) needs ~{need / 2**20:,.0f} "
                f"MiB, {free / 2**20:,.0f} MiB {where}; give a smaller batch"
                + (" or --no-vectorize" if together > 1 else "")
            )


def _check_table(results: Path) -> None:
    """selection.parquet can be written when the scoring is done, and one already there can be
    read (its rows of other datasets are kept): refused now, not after minutes of FQE."""
    import os

    from bench.ope.select import SELECTION_TABLE, read_selection

    path = results / SELECTION_TABLE
    if path.is_dir() or path.is_symlink() and not path.exists():
        raise BenchError(f"cannot write {path}: it is a folder or a broken link")
    if not os.access(results, os.W_OK):
        raise BenchError(f"cannot write {path}: folder {results} is not writable")
    if path.exists():
        read_selection(path)


class _one_selection_at_a_time:
    """Holds an exclusive flock on the results folder while selecting: a second `bench select`
    on the same folder would merge its rows into a table the first is about to replace (one of
    them lost); it is refused in one line instead. The kernel drops the lock with the process."""

    def __init__(self, results: Path):
        self.results = Path(results)
        self.fd: int | None = None

    def __enter__(self):
        import fcntl
        import os

        try:
            self.fd = os.open(self.results, os.O_RDONLY)
        except OSError:
            return self  # no such folder: find_candidates says so
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise BenchError(
                f"another `bench select` is scoring {self.results} now; run this one when it "
                "is done"
            ) from None
        return self

    def __exit__(self, *exc):
        import os

        if self.fd is not None:
            os.close(self.fd)
        return False
