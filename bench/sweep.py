"""Grids of runs (algos x datasets x seeds): a local process pool, or Ray for clusters.

Every run writes its own run directory into the shared results folder, so workers never
write the same file. Before dispatching, the results folder is scanned: a cell whose run is
complete is skipped, an incomplete one (killed, or stopped with the sweep) is resumed from its
last checkpoint, and the rest start fresh. Datasets are built once, in this process, before
any run starts.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError
from bench.results import is_complete, read_configs, read_eval, runs_dir

#: options of `bench run` that a sweep passes to every run (None: the card's default)
RUN_OPTIONS = ("steps", "eval_every", "eval_episodes", "batch_size", "preset", "env")


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0..4]; '0,2,7' -> [0, 2, 7]; '3' -> [3]; mixed: '0-2,9'."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if m:
            lo, hi = int(m[1]), int(m[2])
            if hi < lo:
                raise BenchError(f"bad --seeds range '{part}': {hi} < {lo}")
            seeds += range(lo, hi + 1)
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise BenchError(f"bad --seeds '{text}': use e.g. 0-4 or 0,2,5")
    return sorted(set(seeds))


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
    options: dict = field(default_factory=dict)  # RUN_OPTIONS given on the command line
    overrides: dict[str, str] = field(default_factory=dict)
    results_dir: Path = Path("results")
    workers: int = 1
    threads: int = 1  # torch threads per run


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
    action: str  # "skip" (complete), "resume" (incomplete), "new"
    run_dir: Path | None = None


def _matches(cfg: dict, cell: Cell, spec: SweepSpec) -> bool:
    if (cfg.get("algo"), cfg.get("dataset"), cfg.get("seed")) != (
        cell.algo, cell.dataset, cell.seed,
    ):  # fmt: skip
        return False
    for key, value in spec.options.items():
        stored = cfg.get(key)
        if key == "preset" and value == "none":
            value = None
        if stored != value:
            return False
    return (cfg.get("overrides") or {}) == spec.overrides


def plan(spec: SweepSpec) -> list[Planned]:
    """Each grid cell with what to do about it, from the run directories already there."""
    configs = read_configs(spec.results_dir)
    evals = read_eval(spec.results_dir)
    last_step = evals.groupby("run_id").step.max().to_dict()
    out = []
    for algo in spec.algos:
        for dataset in spec.datasets:
            for seed in spec.seeds:
                cell = Cell(algo, dataset, seed)
                # this cell's runs: a complete one is kept, else the most advanced resumes
                mine = [r for r, c in configs.items() if _matches(c, cell, spec)]
                done = [r for r in mine if is_complete(configs[r], int(last_step.get(r, 0)))]
                if done:
                    out.append(Planned(cell, "skip", runs_dir(spec.results_dir) / done[0]))
                elif mine:
                    run_id = max(mine, key=lambda r: last_step.get(r, 0))
                    out.append(Planned(cell, "resume", runs_dir(spec.results_dir) / run_id))
                else:
                    out.append(Planned(cell, "new"))
    return out


def run_cell(job: Planned, spec: SweepSpec) -> dict:
    """Run (or resume) one cell; in a worker process or a Ray task. Never raises: a failed
    run is reported in the returned dict and the grid goes on."""
    os.environ["OMP_NUM_THREADS"] = str(spec.threads)
    import torch

    from bench.runner import RunSpec, run

    torch.set_num_threads(spec.threads)
    run_spec = RunSpec(
        algo=job.cell.algo, dataset=job.cell.dataset, seed=job.cell.seed,
        overrides=dict(spec.overrides), threads=spec.threads,
        results_dir=Path(spec.results_dir).resolve(),
        resume=job.run_dir if job.action == "resume" else None,
        **{k: v for k, v in spec.options.items()},
    )  # fmt: skip
    t0 = time.perf_counter()
    try:
        result = run(run_spec, show_progress=False)
    except BenchError as e:
        return {"cell": dataclasses.asdict(job.cell), "ok": False, "error": str(e)}
    except Exception as e:  # noqa: BLE001 - one failed run must not stop the grid
        return {"cell": dataclasses.asdict(job.cell), "ok": False,
                "error": f"{type(e).__name__}: {e}"}  # fmt: skip
    last = result.eval_rows[-1]
    return {
        "cell": dataclasses.asdict(job.cell), "ok": True, "run_dir": str(result.run_dir),
        "score": float(last["normalized_score"]), "wall_s": time.perf_counter() - t0,
    }  # fmt: skip


def prepare_datasets(datasets: list[str], env: str | None, show_progress: bool) -> None:
    """Resolve every dataset id and build missing datasets here, once, before the runs."""
    from bench.data.build import ensure_dataset
    from bench.data.catalog import resolve_card

    for d in datasets:
        ensure_dataset(resolve_card(d, env), show_progress)


def execute(
    jobs: list[Planned],
    spec: SweepSpec,
    executor: str = "local",
    address: str | None = None,
    on_update: Callable[[Cell, str, dict | None], None] | None = None,
) -> list[dict]:
    """Run the non-skipped jobs; on_update(cell, state, result) sees 'running' and the end."""
    todo = [j for j in jobs if j.action != "skip"]
    if executor == "local":
        return _execute_local(todo, spec, on_update)
    if executor == "ray":
        return _execute_ray(todo, spec, address, on_update)
    raise BenchError(f"unknown executor '{executor}'; choose local or ray")


def _notify(on_update, cell, state, result=None):
    if on_update is not None:
        on_update(cell, state, result)


def _execute_local(todo, spec, on_update) -> list[dict]:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    results = []
    if not todo:
        return results
    # spawn: each worker starts clean (no torch thread pools inherited from this process)
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=spec.workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_cell, job, spec): job for job in todo}
        running: set = set()
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for f in pending:
                if f not in running and f.running():
                    running.add(f)
                    _notify(on_update, futures[f].cell, "running")
            for f in done:
                r = f.result()
                results.append(r)
                _notify(on_update, futures[f].cell, "done" if r["ok"] else "failed", r)
    return results


def _execute_ray(todo, spec, address, on_update) -> list[dict]:
    try:
        import ray
    except ImportError:
        raise BenchError(
            "the ray executor needs Ray: pip install 'bench[ray]' (or pip install ray)"
        ) from None
    results = []
    if not todo:
        return results
    started_here = not ray.is_initialized()
    if started_here:
        kwargs = {"address": address} if address else {"num_cpus": spec.workers * spec.threads}
        try:
            ray.init(**kwargs, include_dashboard=False, log_to_driver=False)
        except Exception as e:  # noqa: BLE001 - connection failures come in several kinds
            raise BenchError(f"cannot start or reach Ray ({address or 'local'}): {e}") from None
    try:
        remote = ray.remote(num_cpus=spec.threads)(run_cell)
        refs = {remote.remote(job, spec): job for job in todo}
        for job in todo:  # Ray schedules them; we only learn when each ends
            _notify(on_update, job.cell, "queued")
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                r = ray.get(ref)
                results.append(r)
                _notify(on_update, refs[ref].cell, "done" if r["ok"] else "failed", r)
    finally:
        if started_here:
            ray.shutdown()
    return results
