"""One run: dataset -> OfflineData -> updates -> periodic evaluation -> results/runs/<run_id>/.

The training loop never touches an environment; evaluation builds its own from the card.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import platform
import random
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from bench.algos import get_algorithm
from bench.algos.base import Algorithm, EnvInfo, resolve_config
from bench.data.build import ensure_dataset
from bench.data.cards import Card
from bench.data.catalog import resolve_card
from bench.data.data import OfflineData, Sampler
from bench.data.minari_io import metadata_hash
from bench.data.validate import validate
from bench.envs import make_env
from bench.errors import BenchError, DatasetError
from bench.evaluate import algorithm_returns, normalized_score
from bench.progress import progress_bar
from bench.results import (
    EVAL_SCHEMA,
    TRAIN_SCHEMA,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_table,
    runs_dir,
)
from bench.seeding import seed_everything

#: Evaluation env seeds: EVAL_SEED_BASE + 1000 * run seed + env index (disjoint from build seeds).
EVAL_SEED_BASE = 1_000_000
#: Training stats are averaged over windows of this many updates (at most) before logging.
LOG_WINDOW = 100
PACKAGES = (
    "bench",
    "torch",
    "numpy",
    "gymnasium",
    "minari",
    "ale-py",
    "mujoco",
    "pandas",
    "pyarrow",
)


@dataclass
class RunSpec:
    """Everything a run needs; None means "the dataset card's default"."""

    algo: str
    dataset: str
    seed: int = 0
    steps: int | None = None
    eval_every: int | None = None
    eval_episodes: int | None = None
    batch_size: int | None = None
    preset: str | None = None  # None: the card's preset if the algorithm has it; "none": no preset
    overrides: dict[str, str] = field(default_factory=dict)
    device: str = "cpu"
    env: str | None = None  # the env of a D4RL HDF5 file given as the dataset
    threads: int | None = None
    results_dir: Path = Path("results")
    resume: Path | None = None  # continue this run directory from its last checkpoint


@dataclass
class RunResult:
    run_dir: Path
    eval_rows: list[dict]
    wall_time_s: float


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def _git_sha() -> str | None:
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def _positive(name: str, value: int) -> int:
    if value <= 0:
        raise BenchError(f"--{name.replace('_', '-')} must be positive, got {value}")
    return value


def _check_action_kind(cls: type[Algorithm], card: Card, action_space: gym.Space) -> None:
    kind = "discrete" if isinstance(action_space, gym.spaces.Discrete) else "continuous"
    if kind not in cls.action_kinds:
        raise BenchError(
            f"algorithm '{cls.name}' does not handle {kind} actions (dataset '{card.id}' has them)"
        )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def resolve_preset(cls: type[Algorithm], card: Card, preset: str | None) -> str | None:
    if preset is None:  # the card's preset applies to the algorithms that define it
        return card.train.preset if card.train.preset in cls.presets else None
    return None if preset.lower() == "none" else preset


def make_run_id(spec: RunSpec) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    dataset = re.sub(r"[^A-Za-z0-9_.-]+", "-", spec.dataset)  # minari:a/b-v0 -> minari-a-b-v0
    return f"{spec.algo}__{dataset}__s{spec.seed}__{stamp}-{uuid.uuid4().hex[:6]}"


def _resume_spec(run_dir: Path, spec: RunSpec) -> tuple[RunSpec, dict, dict | None]:
    """The original run's spec (from its config.json) and its last checkpoint, if any."""
    run_dir = Path(run_dir)
    try:
        cfg = json.loads((run_dir / "config.json").read_text())
        original = RunSpec(
            algo=cfg["algo"], dataset=cfg["dataset"], seed=cfg["seed"], steps=cfg["steps"],
            eval_every=cfg["eval_every"], eval_episodes=cfg["eval_episodes"],
            batch_size=cfg["batch_size"], preset=cfg["preset"] or "none",
            overrides=cfg["overrides"], device=spec.device, env=cfg.get("env"),
            threads=spec.threads, results_dir=run_dir.parent.parent, resume=run_dir,
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        raise BenchError(
            f"--resume {run_dir}: not a bench run directory (no valid config.json)"
        ) from None
    state = None
    if (run_dir / "checkpoint.pt").is_file():
        try:
            state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
        except Exception as e:  # noqa: BLE001 - an unreadable checkpoint is one line
            raise BenchError(f"--resume {run_dir}: checkpoint.pt cannot be read ({e})") from None
    return original, cfg, state


def run(spec: RunSpec, show_progress: bool = True, on_eval=None) -> RunResult:
    """Train and evaluate one (algo, dataset, seed). Validates everything before writing.

    With spec.resume, continues that run directory from its last checkpoint (taken at every
    evaluation): the tables keep exactly one row per evaluation, and the scores equal those of
    an uninterrupted run with the same seed (CPU).
    """
    resumed_cfg, state = None, None
    if spec.resume is not None:
        spec, resumed_cfg, state = _resume_spec(spec.resume, spec)
    cls = get_algorithm(spec.algo)
    card = resolve_card(spec.dataset, spec.env)
    preset = resolve_preset(cls, card, spec.preset)
    config = resolve_config(cls, preset, spec.overrides)
    steps = _positive("steps", _or(spec.steps, card.train.steps))
    eval_every = _positive("eval_every", _or(spec.eval_every, card.train.eval_every))
    episodes = _positive("eval_episodes", _or(spec.eval_episodes, card.train.eval_episodes))
    batch_size = _positive("batch_size", _or(spec.batch_size, card.train.batch_size))
    try:
        device = torch.device(spec.device)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as e:
        raise BenchError(f"device '{spec.device}' is not available: {e}") from None
    if spec.threads:
        torch.set_num_threads(_positive("threads", spec.threads))

    probe = make_env(card.env)  # the evaluation env: the algorithm and the data must fit it
    probe.close()
    _check_action_kind(cls, card, probe.action_space)  # before any dataset is built
    dataset = ensure_dataset(card, show_progress)
    meta = dataset.storage.metadata
    ref_min, ref_max = meta.get("ref_min_score"), meta.get("ref_max_score")
    if ref_min is None or ref_max is None or ref_max == ref_min:
        raise DatasetError(f"dataset {card.minari_id} has no usable ref_min_score/ref_max_score")
    data = OfflineData.from_minari(dataset, device, card.env.frame_stack)
    validate(data, probe.observation_space, probe.action_space, card.minari_id)
    info = EnvInfo(obs_shape=data.obs_shape, action_space=probe.action_space)

    seed_everything(spec.seed)
    algo = cls(config, info, device, spec.seed)
    gamma, n, normalize = algo.nstep()
    data.compute_nstep(gamma, n, normalize)
    sampler = Sampler(data, batch_size, spec.seed)

    if resumed_cfg is not None:
        if resumed_cfg["dataset_metadata_hash"] != metadata_hash(dataset):
            raise DatasetError(
                f"--resume {spec.resume}: dataset {card.minari_id} changed since the run started"
            )
        run_id, run_dir = resumed_cfg["run_id"], Path(spec.resume)
    else:
        run_id, run_dir = _new_run_dir(spec)
        try:
            _write_config(run_dir, run_id, spec, card, dataset, steps, eval_every, episodes,
                          batch_size, preset, config, device, ref_min, ref_max,
                          _behavior_return(dataset, data))  # fmt: skip
        except BenchError:
            shutil.rmtree(run_dir, ignore_errors=True)  # no run directory without its config
            raise
    return _train(run_dir, run_id, spec, card, algo, sampler, steps, eval_every, episodes,
                  ref_min, ref_max, state, show_progress, on_eval)  # fmt: skip


def _new_run_dir(spec: RunSpec) -> tuple[str, Path]:
    run_id = make_run_id(spec)
    run_dir = runs_dir(spec.results_dir) / run_id
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


def _write_config(run_dir, run_id, spec, card, dataset, steps, eval_every, episodes,
                  batch_size, preset, config, device, ref_min, ref_max,
                  behavior_return) -> None:  # fmt: skip
    atomic_write_json(
        run_dir / "config.json",
        {
            "run_id": run_id,
            "algo": spec.algo,
            "dataset": spec.dataset,
            "minari_id": card.minari_id,
            "dataset_metadata_hash": metadata_hash(dataset),
            "seed": spec.seed,
            "steps": steps,
            "eval_every": eval_every,
            "eval_episodes": episodes,
            "batch_size": batch_size,
            "preset": preset,
            "overrides": spec.overrides,
            "config": dataclasses.asdict(config),
            "device": str(device),
            "threads": torch.get_num_threads(),
            "ref_min": ref_min,
            "ref_max": ref_max,
            "ref_source": card.ref_source,
            "versions": _versions(),
            "git_sha": _git_sha(),
            "started_utc": dt.datetime.now(dt.UTC).isoformat(),
            "env": spec.env,
            # the dataset's own quality, for plots (a dashed line) and leaderboards
            "behavior_return_mean": behavior_return,
            "behavior_score": float(normalized_score(behavior_return, ref_min, ref_max)),
        },
    )


def _train(run_dir, run_id, spec, card, algo, sampler, steps, eval_every, episodes,
           ref_min, ref_max, state, show_progress, on_eval) -> RunResult:  # fmt: skip
    """The update loop from step 0, or from a checkpoint's step. Checkpoints at every eval."""
    eval_rows: list[dict] = []
    train_rows: list[dict] = []
    start, elapsed = 0, 0.0
    if state is not None:
        algo.load_state_dict(state["algo"])
        sampler.generator.set_state(state["sampler_generator"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        start, elapsed = int(state["step"]), float(state["elapsed_s"])
        eval_rows, train_rows = list(state["eval_rows"]), list(state["train_rows"])
    sums: dict[str, float] = {}
    window = min(LOG_WINDOW, eval_every)
    t0 = time.perf_counter() - elapsed
    t_window = time.perf_counter()
    with progress_bar(f"{spec.algo} on {spec.dataset}", steps, show_progress) as (
        advance,
        describe,
    ):
        advance(start)
        for step in range(start + 1, steps + 1):
            stats = algo.update(sampler.sample())
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
            # a window also closes at every evaluation, so a resumed run logs the same windows
            if step % window == 0 or step % eval_every == 0 or step == steps:
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
            if step % eval_every == 0 or step == steps:
                returns = algorithm_returns(
                    algo, card.env, episodes, EVAL_SEED_BASE + 1000 * spec.seed
                )
                row = {
                    "run_id": run_id,
                    "algo": spec.algo,
                    "dataset": spec.dataset,
                    "seed": spec.seed,
                    "step": step,
                    "wall_time_s": time.perf_counter() - t0,
                    "return_mean": float(returns.mean()),
                    "return_std": float(returns.std()),
                    "episodes": len(returns),
                    "ref_min": float(ref_min),
                    "ref_max": float(ref_max),
                    "ref_source": card.ref_source,
                    "normalized_score": float(normalized_score(returns.mean(), ref_min, ref_max)),
                }
                eval_rows.append(row)
                atomic_write_table(run_dir / "eval.parquet", eval_rows, EVAL_SCHEMA)
                atomic_write_table(run_dir / "train.parquet", train_rows, TRAIN_SCHEMA)
                _save_checkpoint(run_dir / "checkpoint.pt", algo, sampler, step,
                                 time.perf_counter() - t0, eval_rows, train_rows)  # fmt: skip
                describe(f"{spec.algo} on {spec.dataset} [score {row['normalized_score']:.1f}]")
                if on_eval is not None:
                    on_eval(row)
                t_window = time.perf_counter()  # evaluation time is not update time
    return RunResult(run_dir, eval_rows, time.perf_counter() - t0)


def _save_checkpoint(path, algo, sampler, step, elapsed, eval_rows, train_rows) -> None:
    """Everything a resume needs, written atomically: networks, optimizers, counters, every RNG
    (torch, numpy, python, the sampler's and the algorithm's) and the rows written so far."""
    buf = io.BytesIO()
    torch.save(
        {
            "algo": algo.state_dict(),
            "sampler_generator": sampler.generator.get_state(),
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
            },
            "step": step,
            "elapsed_s": elapsed,
            "eval_rows": eval_rows,
            "train_rows": train_rows,
        },
        buf,
    )
    atomic_write_bytes(path, buf.getvalue())
