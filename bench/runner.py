"""One run: dataset -> OfflineData -> updates -> periodic evaluation -> results/runs/<run_id>/.

The training loop never touches an environment; evaluation builds its own from the card.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import platform
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path

import gymnasium as gym
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


def _check_action_kind(cls: type[Algorithm], card: Card) -> None:
    probe = make_env(card.env)
    discrete = isinstance(probe.action_space, gym.spaces.Discrete)
    probe.close()
    kind = "discrete" if discrete else "continuous"
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


def run(spec: RunSpec, show_progress: bool = True, on_eval=None) -> RunResult:
    """Train and evaluate one (algo, dataset, seed). Validates everything before writing."""
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

    _check_action_kind(cls, card)  # before any dataset is built
    dataset = ensure_dataset(card, show_progress)
    meta = dataset.storage.metadata
    ref_min, ref_max = meta.get("ref_min_score"), meta.get("ref_max_score")
    if ref_min is None or ref_max is None or ref_max == ref_min:
        raise DatasetError(f"dataset {card.minari_id} has no usable ref_min_score/ref_max_score")
    data = OfflineData.from_minari(dataset, device)
    probe = make_env(card.env)  # the evaluation env: the data must fit its spaces
    validate(data, probe.observation_space, probe.action_space, card.minari_id)
    probe.close()
    info = EnvInfo(obs_shape=data.obs_shape, action_space=probe.action_space)

    seed_everything(spec.seed)
    algo = cls(config, info, device, spec.seed)
    gamma, n, normalize = algo.nstep()
    data.compute_nstep(gamma, n, normalize)
    sampler = Sampler(data, batch_size, spec.seed)

    run_id = make_run_id(spec)
    run_dir = runs_dir(spec.results_dir) / run_id
    try:
        run_dir.mkdir(parents=True)
    except OSError as e:
        raise BenchError(f"cannot create run directory {run_dir}: {e.strerror}") from None
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
        },
    )

    eval_rows: list[dict] = []
    train_rows: list[dict] = []
    sums: dict[str, float] = {}
    window = min(LOG_WINDOW, eval_every)
    t0 = time.perf_counter()
    t_window = t0
    with progress_bar(f"{spec.algo} on {spec.dataset}", steps, show_progress) as (
        advance,
        describe,
    ):
        for step in range(1, steps + 1):
            stats = algo.update(sampler.sample())
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
            if step % window == 0 or step == steps:
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
                describe(f"{spec.algo} on {spec.dataset} [score {row['normalized_score']:.1f}]")
                if on_eval is not None:
                    on_eval(row)
                t_window = time.perf_counter()  # evaluation time is not update time
    _save_checkpoint(run_dir / "checkpoint.pt", algo, sampler)
    return RunResult(run_dir, eval_rows, time.perf_counter() - t0)


def _save_checkpoint(path: Path, algo: Algorithm, sampler: Sampler) -> None:
    import io

    buf = io.BytesIO()
    torch.save({"algo": algo.state_dict(), "sampler_generator": sampler.generator.get_state()}, buf)
    atomic_write_bytes(path, buf.getvalue())
