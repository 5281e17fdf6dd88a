"""One run: options -> RunConfig -> OfflineData -> updates -> periodic evaluation ->
results/runs/<run_id>/.

The training loop never touches an environment; evaluation builds its own from the card.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import torch

from bench.algos import get_algorithm
from bench.algos.base import Algorithm, resolve_config
from bench.collect.build import ensure_dataset
from bench.data.cards import Card
from bench.data.catalog import resolve_card
from bench.data.data import OfflineData, Sampler
from bench.data.minari_io import metadata_hash
from bench.data.validate import validate
from bench.envs import make_env
from bench.errors import BenchError, DatasetError
from bench.evaluate import algorithm_returns, normalized_score
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
    save_checkpoint,
)
from bench.run.config import RunConfig, RunOptions, check_algorithm, resolve
from bench.run.provenance import provenance
from bench.seeding import seed_everything
from bench.types import EnvInfo

#: Training stats are averaged over windows of this many updates (at most) before logging.
LOG_WINDOW = 100


@dataclass
class RunResult:
    run_dir: Path
    config: RunConfig
    eval_rows: list[dict]
    wall_time_s: float


@dataclass
class Prepared:
    """A resolved run and what training it needs: the algorithm class, card, dataset."""

    config: RunConfig
    cls: type[Algorithm]
    card: Card
    dataset: object  # minari.MinariDataset
    ref_min: float
    ref_max: float
    observation_space: gym.Space  # the evaluation env's spaces, from the one probe in prepare()
    action_space: gym.Space


def _check_action_kind(cls: type[Algorithm], card: Card, action_space: gym.Space) -> None:
    kind = "discrete" if isinstance(action_space, gym.spaces.Discrete) else "continuous"
    if kind not in cls.action_kinds:
        raise BenchError(
            f"algorithm '{cls.name}' does not handle {kind} actions (dataset '{card.id}' has them)"
        )


#: Device types a run can use: the CPU, and CUDA GPUs where torch has them.
DEVICE_TYPES = ("cpu", "cuda")


def check_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
        if dev.type not in DEVICE_TYPES:
            raise ValueError(f"bench runs on {' or '.join(DEVICE_TYPES)}")
        torch.empty(0, device=dev)
    except Exception as e:  # noqa: BLE001 - torch raises several kinds for a bad device
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise BenchError(f"device '{device}' is not available: {first}") from None
    return dev


def prepare(opts: RunOptions, show_progress: bool = True) -> Prepared:
    """Resolve the options into a RunConfig: the algorithm and its config, the card, the dataset
    (built when missing) and its hash. Everything a user can get wrong fails here, in one line,
    before anything is written."""
    cls = get_algorithm(opts.algo)
    card = resolve_card(opts.dataset, opts.env)
    probe = make_env(card.env)  # the evaluation env: the algorithm and the data must fit it
    probe.close()
    _check_action_kind(cls, card, probe.action_space)  # before any dataset is built
    check_algorithm(opts)  # a bad preset or --set before any dataset is built
    dataset = ensure_dataset(card, show_progress)
    meta = dataset.storage.metadata
    ref_min, ref_max = meta.get("ref_min_score"), meta.get("ref_max_score")
    if ref_min is None or ref_max is None or ref_max == ref_min:
        raise DatasetError(f"dataset {card.minari_id} has no usable ref_min_score/ref_max_score")
    config = resolve(opts, card, metadata_hash(dataset))
    if 0 < dataset.total_steps < config.batch_size:  # an empty one: validation says so
        raise BenchError(
            f"--batch-size {config.batch_size:,} is larger than the dataset "
            f"({dataset.total_steps:,} transitions)"
        )
    return Prepared(config, cls, card, dataset, float(ref_min), float(ref_max),
                    probe.observation_space, probe.action_space)  # fmt: skip


def run(opts: RunOptions | None = None, show_progress: bool = True, on_eval=None,
        resume: Path | None = None, results_dir: Path = Path("results")) -> RunResult:  # fmt: skip
    """Train and evaluate one run. Validates everything before writing.

    With resume, continues that run directory from its last checkpoint (taken at every
    evaluation): the tables keep exactly one row per evaluation, and the scores equal those of
    an uninterrupted run with the same seed (CPU). The options then come from its config.json
    (only device and threads may differ)."""
    if resume is not None:
        return _resume(Path(resume), opts, show_progress, on_eval)
    assert opts is not None
    device = check_device(opts.device)
    prep = prepare(opts, show_progress)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    algo, sampler, data = _setup(prep, device)  # the data validated: nothing written before
    run_id, run_dir = _new_run_dir(prep.config, results_dir)
    try:
        with run_lock(run_dir):
            _write_config(run_dir, run_id, prep, data)
            return _train(run_dir, run_id, prep, algo, sampler, None, show_progress, on_eval)
    except BaseException:
        if not (run_dir / "config.json").exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # no run directory without its config
        raise


def _resume(run_dir: Path, opts: RunOptions | None, show_progress: bool, on_eval) -> RunResult:
    cfg = read_config(run_dir)
    saved = RunConfig.from_json(cfg, f"--resume {run_dir}: config.json")  # edits are refused
    device = opts.device if opts is not None else saved.device
    threads = opts.threads if opts is not None else None
    prep = prepare(dataclasses.replace(saved.options(), device=device, threads=threads),
                   show_progress)  # fmt: skip
    if prep.config.dataset_hash != saved.dataset_hash:
        raise DatasetError(
            f"--resume {run_dir}: dataset {prep.config.minari_id} changed since the run started"
        )
    if prep.config.key() != saved.key():
        raise BenchError(
            f"--resume {run_dir}: this bench resolves the run's options to another configuration "
            f"(key {prep.config.key()}, the run has {saved.key()}); start a new run"
        )
    dev = check_device(device)
    if threads:
        torch.set_num_threads(threads)
    if cfg["run_id"] != run_dir.name:
        raise BenchError(
            f"--resume {run_dir}: config.json names another run ({cfg['run_id']}); restore it"
        )
    with run_lock(run_dir):
        remove_stale_temp_files(run_dir)
        state = load_checkpoint(run_dir, saved.fingerprint(), saved.steps)
        algo, sampler, _ = _setup(prep, dev)
        return _train(run_dir, cfg["run_id"], prep, algo, sampler, state, show_progress, on_eval)


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


def _setup(prep: Prepared, device: torch.device):
    c = prep.config
    data = OfflineData.from_minari(prep.dataset, device, prep.card.env.frame_stack)
    validate(data, prep.observation_space, prep.action_space, prep.card.minari_id)
    info = EnvInfo(obs_shape=data.obs_shape, action_space=prep.action_space)
    seed_everything(c.seed)
    config = resolve_config(prep.cls, c.preset, c.overrides)
    algo = prep.cls(config, info, device, c.seed)
    gamma, n, normalize = algo.nstep()
    data.compute_nstep(gamma, n, normalize)
    return algo, Sampler(data, c.batch_size, c.seed), data


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


def _write_config(run_dir: Path, run_id: str, prep: Prepared, data: OfflineData) -> None:
    behavior = _behavior_return(prep.dataset, data)
    atomic_write_json(
        run_dir / "config.json",
        prep.config.to_json()
        | {
            "run_id": run_id,
            "ref_min": prep.ref_min,
            "ref_max": prep.ref_max,
            "ref_source": prep.card.ref_source,
            # the dataset's own quality, for plots (a dashed line) and leaderboards
            "behavior_return_mean": behavior,
            "behavior_score": float(normalized_score(behavior, prep.ref_min, prep.ref_max)),
            "provenance": provenance(torch.get_num_threads()),
        },
    )


def _train(
    run_dir, run_id, prep: Prepared, algo, sampler, state, show_progress, on_eval
) -> RunResult:
    """The update loop from step 0, or from a checkpoint's step. Checkpoints at every eval."""
    c, key = prep.config, prep.config.key()
    eval_rows: list[dict] = []
    train_rows: list[dict] = []
    start, elapsed = 0, 0.0
    if state is not None:
        restore(state, algo, sampler)
        start, elapsed = int(state["step"]), float(state["elapsed_s"])
        eval_rows, train_rows = list(state["eval_rows"]), list(state["train_rows"])
        # the checkpoint's rows are the truth: tables lost or damaged since are written again
        atomic_write_table(run_dir / "eval.parquet", eval_rows, EVAL_SCHEMA)
        atomic_write_table(run_dir / "train.parquet", train_rows, TRAIN_SCHEMA)
    sums: dict[str, float] = {}
    window = min(LOG_WINDOW, c.eval_every)
    t0 = time.perf_counter() - elapsed
    t_window = time.perf_counter()
    title = f"{c.algo} on {c.dataset}"
    with progress_bar(title, c.steps, show_progress) as (advance, describe):
        advance(start)
        for step in range(start + 1, c.steps + 1):
            stats = algo.update(sampler.sample())
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
            evaluate = step % c.eval_every == 0 or step == c.steps
            # a window also closes at every evaluation, so a resumed run logs the same windows
            if step % window == 0 or evaluate:
                count = step - (train_rows[-1]["step"] if train_rows else 0)
                now = time.perf_counter()
                means = {k: v / count for k, v in sums.items()}
                means["updates_per_s"] = count / max(now - t_window, 1e-9)
                t_window = now
                train_rows += [
                    {"run_id": run_id, "step": step, "metric": k, "value": v}
                    for k, v in means.items()
                ]
                sums = {}
                advance(count)
            if evaluate:
                returns = algorithm_returns(
                    algo, prep.card.env, c.eval_episodes, c.eval_seed_base + 1000 * c.seed
                )
                row = {
                    "run_id": run_id,
                    "key": key,
                    "algo": c.algo,
                    "dataset": c.dataset,
                    "seed": c.seed,
                    "step": step,
                    "wall_time_s": time.perf_counter() - t0,
                    "return_mean": float(returns.mean()),
                    "return_std": float(returns.std()),
                    "episodes": len(returns),
                    "ref_min": prep.ref_min,
                    "ref_max": prep.ref_max,
                    "ref_source": prep.card.ref_source,
                    "normalized_score": float(
                        normalized_score(returns.mean(), prep.ref_min, prep.ref_max)
                    ),
                }
                eval_rows.append(row)
                atomic_write_table(run_dir / "eval.parquet", eval_rows, EVAL_SCHEMA)
                atomic_write_table(run_dir / "train.parquet", train_rows, TRAIN_SCHEMA)
                save_checkpoint(run_dir / "checkpoint.pt", run_id, c.fingerprint(), algo, sampler,
                                step, time.perf_counter() - t0, eval_rows, train_rows)  # fmt: skip
                describe(f"{title} [score {row['normalized_score']:.1f}]")
                if on_eval is not None:
                    on_eval(row)
                t_window = time.perf_counter()  # evaluation time is not update time
    return RunResult(run_dir, c, eval_rows, time.perf_counter() - t0)
