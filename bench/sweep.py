"""Grids of runs (algos x datasets x seeds): a local process pool, or Ray for clusters.

Cells of one configuration (algorithm, dataset, options) are grouped into jobs that train their
seeds together in one process (bench.run.loop.run_job; at most seeds_per_job seeds each, or one
seed per job without vectorize), and the pool or Ray dispatches jobs. Every seed still writes its
own run directory into the shared results folder, so workers never write the same file. Before
dispatching, every cell is resolved to its RunConfig (a bad option
fails here, before anything runs) and the results folder is scanned: a run with the cell's key
and seed that is complete is kept, one still being written by a live process is left alone, an
incomplete one (killed, or stopped with the sweep) is resumed from its last checkpoint, and the
rest start fresh. Datasets are built once, in this process, before any run starts. Workers end
when the sweep's process ends, even by kill -9. On Ray, bench.cluster dispatches the same jobs,
sends each its dataset and brings its run directories home.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError
from bench.results.schema import runs_dir
from bench.results.store import is_complete, read_runs
from bench.run.checkpoint import is_locked
from bench.run.config import MAX_SEED, RunConfig, RunOptions

#: More seeds than this in one sweep is a typo (`0-1000000000000`), not a benchmark.
MAX_SEEDS = 10_000


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0..4]; '0,2,7' -> [0, 2, 7]; '3' -> [3]; mixed: '0-2,9'."""
    parts = [p.strip() for p in text.split(",")]
    ranges = []
    for part in parts:
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part) or re.fullmatch(r"(\d+)()", part)
        if not m:
            raise BenchError(f"bad --seeds '{text}': use e.g. 0-4 or 0,2,5")
        lo, hi = int(m[1]), int(m[2] or m[1])
        if hi < lo:
            raise BenchError(f"bad --seeds range '{part}': {hi} < {lo}")
        if hi > MAX_SEED:
            raise BenchError(f"bad --seeds '{part}': seeds go up to {MAX_SEED}")
        ranges.append((lo, hi))
    if sum(hi - lo + 1 for lo, hi in ranges) > MAX_SEEDS:  # counted before any list is built
        raise BenchError(f"--seeds '{text}' asks for more than {MAX_SEEDS:,} seeds")
    return sorted({s for lo, hi in ranges for s in range(lo, hi + 1)})


def parse_list(text: str, what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise BenchError(f"--{what} is empty")
    return list(dict.fromkeys(items))


@dataclass(frozen=True)
class SweepSpec:
    algos: list[str]
    datasets: list[str]
    seeds: list[int]
    options: RunOptions = field(default_factory=RunOptions)  # per-run options (algo etc. unset)
    results_dir: Path = Path("results")
    workers: int = 1
    threads: int = 1  # torch threads per job
    seeds_per_job: int = 32  # seeds trained together in one process, at most
    vectorize: bool = True  # False: one seed per job (and per process)
    tags: dict = field(default_factory=dict)  # written into each new run's config.json (suite)

    def cell_options(self, cell: Cell) -> RunOptions:
        return dataclasses.replace(
            self.options, algo=cell.algo, dataset=cell.dataset, seed=cell.seed, threads=self.threads
        )


@dataclass(frozen=True)
class Cell:
    algo: str
    dataset: str
    seed: int

    def label(self) -> str:
        return f"{self.algo} x {self.dataset} seed {self.seed}"


@dataclass
class Planned:
    cell: Cell
    action: str  # "skip" (complete), "running" (a live process writes it), "resume", "new"
    key: str
    run_dir: Path | None = None
    step: int = 0  # the last evaluated (checkpointed) step of a run to resume

    @property
    def existing_dir(self) -> Path:
        """The run directory of a run that exists (to resume, complete or running)."""
        assert self.run_dir is not None, f"a {self.action} run has no directory"
        return self.run_dir


#: More seeds than this in one job is refused (networks and optimizer state grow with it).
MAX_SEEDS_PER_JOB = 1024


def group_jobs(planned: list[Planned], spec: SweepSpec) -> list[list[Planned]]:
    """The cells to run, as jobs: cells of one configuration, all new or all resumed from the
    same step, at most spec.seeds_per_job per job (one without spec.vectorize)."""
    size = spec.seeds_per_job if spec.vectorize else 1
    groups: dict[tuple, list[Planned]] = {}
    for p in planned:
        if p.action in ("new", "resume"):
            groups.setdefault((p.key, p.cell.algo, p.cell.dataset, p.action, p.step), []).append(p)
    return [cells[i : i + size] for cells in groups.values() for i in range(0, len(cells), size)]


def resolve_keys(spec: SweepSpec, show_progress: bool = False) -> dict[tuple[str, str], RunConfig]:
    """(algo, dataset) -> the RunConfig of seed 0: every cell resolved before anything runs."""
    from bench.run.loop import prepare

    out = {}
    for algo in spec.algos:
        for dataset in spec.datasets:
            cell = Cell(algo, dataset, spec.seeds[0])
            out[(algo, dataset)] = prepare(spec.cell_options(cell), show_progress).config
    return out


def plan(spec: SweepSpec, configs: dict[tuple[str, str], RunConfig] | None = None) -> list[Planned]:
    """Each grid cell with what to do about it, from the run directories already there."""
    configs = configs or resolve_keys(spec)
    raw, evals, finals = read_runs(spec.results_dir)
    last_step = evals.groupby("run_id").step.max().to_dict()
    with_final = set(finals.run_id)
    by_cell: dict[tuple[str, int | None], list[str]] = {}
    for run_id, cfg in raw.items():
        try:
            key = RunConfig.from_json(cfg, run_id).key()
        except BenchError:
            continue  # not a run of this bench: never matched, never resumed
        by_cell.setdefault((key, cfg.get("seed")), []).append(run_id)
    out = []
    for (algo, dataset), config in configs.items():
        key = config.key()
        for seed in spec.seeds:
            cell = Cell(algo, dataset, seed)
            mine = sorted(by_cell.get((key, seed), []))
            done = [
                r for r in mine if is_complete(raw[r], int(last_step.get(r, 0)), r in with_final)
            ]
            live = [r for r in mine if is_locked(runs_dir(spec.results_dir) / r)]
            if done:
                out.append(Planned(cell, "skip", key, runs_dir(spec.results_dir) / done[0]))
            elif live:
                out.append(Planned(cell, "running", key, runs_dir(spec.results_dir) / live[0]))
            elif mine:
                run_id = max(mine, key=lambda r: last_step.get(r, 0))
                out.append(
                    Planned(
                        cell,
                        "resume",
                        key,
                        runs_dir(spec.results_dir) / run_id,
                        int(last_step.get(run_id, 0)),
                    )
                )
            else:
                out.append(Planned(cell, "new", key))
    return out


def check_writable(results_dir: Path) -> None:
    """The results folder takes a file now, before any run is dispatched: a folder under a
    regular file, read-only or full is one line here rather than a failed cell per run."""
    import tempfile

    folder = runs_dir(results_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-") as f:
            f.write(b"0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise BenchError(f"cannot write results to {folder}: {e.strerror or e}") from None


def _watch_parent() -> None:
    """In a worker: end this process when the sweep's process is gone (kill -9 included), so
    no orphan goes on writing a run that a later sweep would resume."""
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def run_cells(job: list[Planned], spec: SweepSpec, prepared=None) -> list[dict]:
    """Run (or resume) one job, its seeds together; in a worker process or a Ray task. Never
    raises: a failure is reported for each of its cells and the grid goes on. prepared: the new
    cells' options already prepared (bench.run.loop.prepare)."""
    os.environ["OMP_NUM_THREADS"] = str(spec.threads)
    import torch

    from bench.run.loop import run_job

    torch.set_num_threads(spec.threads)
    opts = spec.cell_options(job[0].cell)
    t0 = time.perf_counter()
    cells = [dataclasses.asdict(p.cell) for p in job]
    try:
        if job[0].action == "resume":
            results = run_job(opts, [], show_progress=False, resume=[p.existing_dir for p in job])
        else:
            results = run_job(
                opts,
                [p.cell.seed for p in job],
                show_progress=False,
                results_dir=Path(spec.results_dir).resolve(),
                tags=spec.tags,
                prepared=prepared,
            )
    except BenchError as e:
        return [{"cell": c, "ok": False, "error": str(e)} for c in cells]
    except Exception as e:  # noqa: BLE001 - one failed job must not stop the grid
        return [{"cell": c, "ok": False, "error": f"{type(e).__name__}: {e}"} for c in cells]
    wall = time.perf_counter() - t0
    return [
        {
            "cell": c,
            "ok": True,
            "run_dir": str(r.run_dir),
            "score": float((r.final_row or r.eval_rows[-1])["normalized_score"]),
            "wall_s": wall,
        }
        for c, r in zip(cells, results, strict=True)
    ]


def prepare_datasets(datasets: list[str], env: str | None, show_progress: bool) -> None:
    """Resolve every dataset id and build missing datasets here, once, before the runs."""
    from bench.collect.build import ensure_dataset
    from bench.data.catalog import resolve_card

    for d in datasets:
        ensure_dataset(resolve_card(d, env), show_progress)


def execute(
    jobs: list[Planned],
    spec: SweepSpec,
    on_update: Callable[[Cell, str, dict | None], None] | None = None,
) -> list[dict]:
    """Run the non-skipped cells, grouped into jobs, on the local pool; on_update(cell, state,
    result) sees 'running' and the end of each cell (bench.cluster.execute_grids: on Ray)."""
    return execute_grids([(jobs, spec)], on_update)


def execute_grids(
    grids: list[tuple[list[Planned], SweepSpec]],
    on_update: Callable[[Cell, str, dict | None], None] | None = None,
) -> list[dict]:
    """Several grids (each with its own options) dispatched to one local pool: execute for
    each."""
    todo = [(job, spec) for jobs, spec in grids for job in group_jobs(jobs, spec)]
    if not grids:
        return []
    return _execute_local(todo, grids[0][1].workers, on_update)


def _notify(on_update, cell, state, result=None):
    if on_update is not None:
        on_update(cell, state, result)


def _execute_local(todo, workers: int, on_update) -> list[dict]:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    results: list[dict] = []
    if not todo:
        return results
    # spawn: each worker starts clean (no torch thread pools inherited from this process)
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_watch_parent
    ) as pool:
        futures = {pool.submit(run_cells, job, spec): job for job, spec in todo}
        running: set = set()
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for f in pending:
                if f not in running and f.running():
                    running.add(f)
                    for p in futures[f]:
                        _notify(on_update, p.cell, "running")
            for f in done:
                for p, r in zip(futures[f], f.result(), strict=True):
                    results.append(r)
                    _notify(on_update, p.cell, "done" if r["ok"] else "failed", r)
    return results
