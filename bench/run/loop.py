"""One job: options -> RunConfig -> OfflineData -> updates of S seeds at once -> periodic
evaluation of all of them -> results/runs/<run_id>/, one directory per seed.

The units: bench.run.prepare (options to a RunConfig, the data, the algorithm), this module (run
directories, the update loop, resuming), bench.run.evaluation (evaluations, each with its
tables and checkpoints), bench.run.checkpoint (checkpoint files and run locks). The training
loop never touches an environment; evaluation builds its own from the card.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import re
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.data.data import OfflineData
from bench.errors import BenchError, DatasetError
from bench.evaluate import normalized_score
from bench.progress import progress_bar
from bench.results import store
from bench.results.schema import (
    EVAL_SCHEMA,
    TRAIN_SCHEMA,
    atomic_write_json,
    atomic_write_table,
    runs_dir,
)
from bench.run.checkpoint import (
    load_checkpoint,
    remove_stale_temp_files,
    restore,
    run_lock,
    stack_checkpoints,
)
from bench.run.config import RunConfig, RunOptions
from bench.run.evaluation import evaluate_and_checkpoint, final_evaluation
from bench.run.precision import with_precision
from bench.run.prepare import (  # noqa: F401 - check_device, load_data, prepare: callers' names
    Prepared,
    check_device,
    load_data,
    prepare,
    settings_note,
    setup_job,
)
from bench.run.provenance import provenance


@dataclass
class RunResult:
    run_dir: Path
    config: RunConfig
    eval_rows: list[dict]
    wall_time_s: float
    final_row: dict | None = None  # the final evaluation (final.parquet), when it has one


def run(
    opts: RunOptions | None = None,
    show_progress: bool = True,
    on_eval=None,
    resume: Path | None = None,
    results_dir: Path = Path("results"),
) -> RunResult:
    """Train and evaluate one run (one seed): run_job with one seed."""
    if resume is not None:
        return run_job(opts, [], show_progress, on_eval, resume=[Path(resume)])[0]
    assert opts is not None
    return run_job(opts, [opts.seed], show_progress, on_eval, results_dir=results_dir)[0]


def run_job(
    opts: RunOptions | None,
    seeds: list[int],
    show_progress: bool = True,
    on_eval=None,
    resume: list[Path] | None = None,
    results_dir: Path = Path("results"),
    tags: dict | None = None,
    prepared: Prepared | None = None,
) -> list[RunResult]:
    """Train and evaluate S seeds of one configuration together, in this process: networks
    with a leading seed dimension, one batch [S, B] per update, one act() per evaluation step
    for all seeds' envs. Each seed writes its own run directory (config, tables, checkpoint),
    exactly as a one-seed run does. Validates everything before writing.

    With resume (run directories of one configuration), continues them from their last
    checkpoint (taken at every evaluation; runs checkpointed at one step continue together):
    the tables keep exactly one row per evaluation, and the scores equal those of an
    uninterrupted job. The
    options then come from their config.json (only device, threads and compile may differ).
    tags (e.g. the suite that started the runs) are written into each new run's config.json.
    prepared: these options already prepared (a cluster job checks the dataset and key first)."""
    if resume:
        return _resume(resume, opts, show_progress, on_eval)
    assert opts is not None and seeds
    device = check_device(opts.device)
    prep = prepared or prepare(opts, show_progress)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    algo, sampler, data = setup_job(prep, device, seeds)  # the data validated: nothing written yet
    configs = [dataclasses.replace(prep.config, seed=s) for s in seeds]
    dirs: list[Path] = []
    try:
        for config in configs:
            dirs.append(_new_run_dir(config, results_dir)[1])
        with contextlib.ExitStack() as locks:
            for run_dir in dirs:
                locks.enter_context(run_lock(run_dir))
            for run_dir, config in zip(dirs, configs, strict=True):
                _write_config(run_dir, run_dir.name, prep, config, data, tags or {})
            if show_progress:  # once nothing can fail before training: errors stay one line
                print(settings_note(prep), file=sys.stderr)
            return _train(dirs, configs, prep, algo, sampler, None, show_progress, on_eval)
    except BaseException:
        for run_dir in dirs:  # a job stopped before its first checkpoint leaves nothing behind
            if not (run_dir / "checkpoint.pt").exists():
                shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _resume(
    run_dirs: list[Path], opts: RunOptions | None, show_progress: bool, on_eval
) -> list[RunResult]:
    run_dirs = [Path(d) for d in run_dirs]
    where = run_dirs[0] if len(run_dirs) == 1 else f"{run_dirs[0]} (and {len(run_dirs) - 1} more)"
    cfgs = [read_config(d) for d in run_dirs]
    saved = [
        RunConfig.from_json(c, f"--resume {d}: config.json")  # edits are refused
        for c, d in zip(cfgs, run_dirs, strict=True)
    ]
    if len({c.key() for c in saved}) > 1:
        raise BenchError(f"--resume {where}: the runs are of different configurations")
    for cfg, run_dir in zip(cfgs, run_dirs, strict=True):
        if cfg["run_id"] != run_dir.name:
            raise BenchError(
                f"--resume {run_dir}: config.json names another run ({cfg['run_id']}); restore it"
            )
    first = saved[0]
    device = opts.device if opts is not None else first.device
    threads = opts.threads if opts is not None else None
    compile_ = opts.compile if opts is not None else first.compile
    prep = prepare(
        dataclasses.replace(first.options(), device=device, threads=threads, compile=compile_),
        show_progress,
    )
    if prep.config.dataset_hash != first.dataset_hash:
        raise DatasetError(
            f"--resume {where}: dataset {prep.config.minari_id} changed since the run started"
        )
    if prep.config.key() != first.key():
        raise BenchError(
            f"--resume {where}: this bench resolves the run's options to another configuration "
            f"(key {prep.config.key()}, the run has {first.key()}); start a new run"
        )
    dev = check_device(device)
    if threads:
        torch.set_num_threads(threads)
    configs = [dataclasses.replace(prep.config, seed=c.seed) for c in saved]
    with contextlib.ExitStack() as locks:
        for run_dir in run_dirs:
            locks.enter_context(run_lock(run_dir))
            remove_stale_temp_files(run_dir)
        states = [
            load_checkpoint(d, c.fingerprint(), c.steps)
            for d, c in zip(run_dirs, saved, strict=True)
        ]
        # runs checkpointed at one step continue as one job (a kill can fall between seeds'
        # checkpoint writes: then each step's runs are a job of their own, one after another)
        groups: dict[int, list[int]] = {}
        for i, st in enumerate(states):
            groups.setdefault(0 if st is None else int(st["step"]), []).append(i)
        results: dict[int, RunResult] = {}
        data = None  # loaded once, shared by the groups
        for members in groups.values():
            algo, sampler, data = setup_job(prep, dev, [saved[i].seed for i in members], data)
            first_state = states[members[0]]
            state = (
                None
                if first_state is None
                else stack_checkpoints([s for i in members if (s := states[i]) is not None])
            )
            done = _train(
                [run_dirs[i] for i in members],
                [configs[i] for i in members],
                prep,
                algo,
                sampler,
                state,
                show_progress,
                on_eval,
            )
            results.update(zip(members, done, strict=True))
        return [results[i] for i in range(len(run_dirs))]


def read_config(run_dir: Path) -> dict:
    try:
        cfg = store.read_config(Path(run_dir) / "config.json")
    except BenchError:
        cfg = None
    if cfg is None or not isinstance(cfg.get("run_id"), str):
        raise BenchError(
            f"--resume {run_dir}: not a bench run directory (no valid config.json)"
        ) from None
    return cfg


def make_run_id(config: RunConfig) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    dataset = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.dataset)[
        -60:
    ]  # minari:a/b-v0 -> minari-a-b-v0
    return f"{config.algo}__{dataset}__s{config.seed}__{stamp}-{uuid.uuid4().hex[:6]}"


def _new_run_dir(config: RunConfig, results_dir: Path) -> tuple[str, Path]:
    run_id = make_run_id(config)
    run_dir = runs_dir(results_dir) / run_id
    try:
        run_dir.mkdir(parents=True)
    except OSError as e:
        raise BenchError(f"cannot create run directory {run_dir}: {e.strerror}") from None
    return run_id, run_dir


def _behavior_return(dataset, data: OfflineData) -> float:
    """Mean return of the behavior: over the complete episodes collected when the dataset was
    built by bench, else over the dataset's episodes."""
    meta = dataset.storage.metadata
    if "bench_behavior_return_mean" in meta:
        return float(meta["bench_behavior_return_mean"])
    return float(data.episode_returns().mean())


def _write_config(
    run_dir: Path, run_id: str, prep: Prepared, config: RunConfig, data: OfflineData, tags: dict
) -> None:
    behavior = _behavior_return(prep.dataset, data)
    atomic_write_json(
        run_dir / "config.json",
        config.to_json()
        | {
            "run_id": run_id,
            "ref_min": prep.ref_min,
            "ref_max": prep.ref_max,
            "ref_source": prep.card.ref_source,
            "dataset_steps": int(prep.dataset.total_steps),  # the build's size, for labels
            # the dataset's own quality, for plots (a dashed line) and leaderboards
            "behavior_return_mean": behavior,
            "behavior_score": float(normalized_score(behavior, prep.ref_min, prep.ref_max)),
            "provenance": provenance(torch.get_num_threads(), config.device),
        }
        | tags,
    )


def _update_fn(algo, compile_: bool, precision: str):
    """algo.update in the run's precision (bench.run.precision), or its torch.compile'd form
    (--compile; CUDA graphs on a GPU)."""
    update = with_precision(algo.update, precision, algo.device)
    if not compile_:
        return update
    mode = "reduce-overhead" if algo.device.type == "cuda" else None
    try:
        return torch.compile(update, mode=mode)
    except Exception as e:  # noqa: BLE001 - the compiler's own errors are many kinds
        raise BenchError(f"--compile: torch.compile failed ({type(e).__name__}: {e})") from None


def _first_update(update, batch, compiled: bool) -> dict:
    if not compiled:
        return update(batch)
    try:
        return update(batch)
    except Exception as e:  # noqa: BLE001 - the compiler fails in many kinds
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise BenchError(
            f"--compile: torch.compile failed ({type(e).__name__}: {first}); run without --compile"
        ) from None


def _train(
    dirs: list[Path],
    configs: list[RunConfig],
    prep: Prepared,
    algo,
    sampler,
    state,
    show_progress,
    on_eval,
) -> list[RunResult]:
    """The update loop of a job from step 0, or from a checkpoint's step. Checkpoints at every
    eval, one per seed. Stats stay on the device; they are read once per log window."""
    c, S = prep.config, len(configs)
    run_ids = [d.name for d in dirs]
    eval_rows: list[list[dict]] = [[] for _ in range(S)]
    train_rows: list[list[dict]] = [[] for _ in range(S)]
    start, elapsed = 0, 0.0
    if state is not None:
        restore(state, algo, sampler)
        start, elapsed = int(state["step"]), float(state["elapsed_s"])
        eval_rows = [list(rows) for rows in state["eval_rows"]]
        train_rows = [list(rows) for rows in state["train_rows"]]
        for s, run_dir in enumerate(dirs):
            # the checkpoint's rows are the truth: tables lost or damaged since are written again
            atomic_write_table(run_dir / "eval.parquet", eval_rows[s], EVAL_SCHEMA)
            atomic_write_table(run_dir / "train.parquet", train_rows[s], TRAIN_SCHEMA)
    update = _update_fn(algo, c.compile, c.precision)
    names: list[str] | None = None
    sums: torch.Tensor | None = None  # [stats, S] on the device
    window = min(c.log_every, c.eval_every)
    last_logged = train_rows[0][-1]["step"] if train_rows[0] else 0
    t0 = time.perf_counter() - elapsed
    t_window = time.perf_counter()
    title = f"{c.algo} on {c.dataset}" + (f" ({S} seeds)" if S > 1 else "")
    with progress_bar(title, c.steps, show_progress) as (advance, describe):
        advance(start)
        for step in range(start + 1, c.steps + 1):
            if step == start + 1:  # with --compile, the first call compiles
                t_update = time.perf_counter()
                stats = _first_update(update, sampler.sample(), c.compile)
                first_call_s = time.perf_counter() - t_update
            else:
                stats = update(sampler.sample())
            stacked = torch.stack([stats[k].float() for k in (names or stats)])
            names = names or list(stats)
            sums = stacked if sums is None else sums + stacked
            evaluate = step % c.eval_every == 0 or step == c.steps
            # a window also closes at every evaluation, so a resumed run logs the same windows
            if step % window == 0 or evaluate:
                count = step - last_logged
                now = time.perf_counter()
                means = (sums / count).T.tolist()  # the one read from the device per window
                speed = count / max(now - t_window, 1e-9)
                for s in range(S):
                    row = dict(zip(names, means[s], strict=True)) | {"updates_per_s": speed}
                    if c.compile and last_logged == start and start == 0:
                        row["compile_first_call_s"] = first_call_s
                    train_rows[s] += [
                        {"run_id": run_ids[s], "step": step, "metric": k, "value": v}
                        for k, v in row.items()
                    ]
                sums, last_logged, t_window = None, step, now
                advance(count)
            if evaluate:
                rows = evaluate_and_checkpoint(
                    dirs, configs, prep, algo, sampler, step, t0, eval_rows, train_rows, on_eval
                )
                mean = sum(r["normalized_score"] for r in rows) / S
                describe(f"{title} [score {mean:.1f}" + (" mean]" if S > 1 else "]"))
                t_window = time.perf_counter()  # evaluation time is not update time
        finals: list[dict | None] = [None] * S
        if c.final_episodes:
            describe(f"{title} [final evaluation: {c.final_episodes} episodes]")
            finals = list(final_evaluation(dirs, configs, prep, algo, t0))
    wall = time.perf_counter() - t0
    return [RunResult(dirs[s], configs[s], eval_rows[s], wall, finals[s]) for s in range(S)]
