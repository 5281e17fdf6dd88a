"""Build a dataset from its card: roll the behavior out through minari.DataCollector.

The dataset is written into a staging folder inside the Minari root and renamed into place
only when complete, so an interrupted build never leaves a dataset that loads as if whole.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bench.data.behaviors import Behavior
from bench.data.cards import Card, PolicySpec
from bench.data.minari_io import dataset_dir, dataset_exists, minari_root, open_dataset
from bench.envs import make_env
from bench.errors import DatasetError
from bench.evaluate import rollout_returns

#: Minari's get_average_reference_score seeds its reference env with 123.
REF_SEED = 123
STAGING = ".bench-staging"


def measure_policy(card: Card, spec: PolicySpec, episodes: int, seed: int = REF_SEED) -> np.ndarray:
    """Returns of a behavior policy over `episodes` episodes of the card's env."""
    probe = make_env(card.env)
    space = probe.action_space
    probe.close()
    n_envs = min(episodes, 10)
    behavior = Behavior(spec, space, n_envs, seed)
    return rollout_returns(
        card.env, behavior, episodes, seed,
        on_episode_end=behavior.new_episode, attach=lambda envs: setattr(behavior, "envs", envs),
    )  # fmt: skip


def measure_refs(card: Card) -> tuple[float, float]:
    """Minari's convention: ref_min = uniform random, ref_max = expert, mean over N episodes."""
    if not card.measured_refs:
        return float(card.ref_min), float(card.ref_max)
    random = PolicySpec(policy="random", epsilon=1.0)
    ref_min = float(np.mean(measure_policy(card, random, card.ref_episodes)))
    ref_max = float(np.mean(measure_policy(card, card.expert, card.ref_episodes)))
    return ref_min, ref_max


@contextmanager
def staged_dataset(minari_id: str, force: bool = False):
    """Write a Minari dataset inside a staging root (the body runs with MINARI_DATASETS_PATH set
    to it), then rename it into the real root: an interrupted write never leaves a dataset that
    loads as if whole. With force, an existing dataset is replaced only once the new one is."""
    if dataset_exists(minari_id) and not force:
        raise DatasetError(f"dataset {minari_id} already exists (use --force to replace it)")
    root = minari_root()
    _remove_stale_staging(root / STAGING)
    staging = root / STAGING / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        with _minari_root_at(staging):
            yield staging
        final = dataset_dir(minari_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        _ensure_namespace(minari_id)
        if final.exists():
            os.replace(final, staging / "old")
        os.replace(staging / minari_id, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        try:
            (root / STAGING).rmdir()
        except OSError:
            pass


def _remove_stale_staging(staging_root: Path) -> None:
    """Delete staging folders left by killed builds (their process no longer exists)."""
    if not staging_root.is_dir():
        return
    for d in staging_root.iterdir():
        pid = d.name.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _minari_root_at(path: Path):
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if old is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


@contextmanager
def _torch_threads(n: int):
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _episode_seed(card: Card, episode: int) -> int:
    return card.seed * 1_000_003 + episode


def build_dataset(card: Card, size: int | None = None, progress=None, force: bool = False):
    """Collect `size` transitions (default: the card's) and write the Minari dataset.

    progress: optional callable(advance: int) called as steps are collected.
    Returns the opened MinariDataset.
    """
    from minari import DataCollector

    size = card.size if size is None else size
    if size <= 0:
        raise DatasetError(f"dataset '{card.id}': size must be positive, got {size}")
    # learned behaviors act on one observation per step: more torch threads only add overhead,
    # and oversubscribe the cores when other processes run (5x slower builds, measured)
    with _torch_threads(1), staged_dataset(card.minari_id, force):  # writes into a staging root
        base_env = make_env(card.env, stacked=False)  # frames are stored once, unstacked
        # the plain env's spec: Minari cannot recreate the collector wrapper itself
        eval_spec = base_env.spec
        env = DataCollector(base_env, record_infos=False, jpeg_encoding=False)
        collect = _collect_replay if card.behavior.policy == "replay" else _collect_behavior
        returns = collect(env, card, size, progress)
        # A last unfinished episode is stored as truncated by Minari (bootstrapped, not final).
        ref_min, ref_max = measure_refs(card)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*author_email.*")
            dataset = env.create_dataset(
                dataset_id=card.minari_id,
                eval_env=eval_spec,
                algorithm_name=f"bench behavior {card.behavior.policy} eps={card.behavior.epsilon}",
                author="bench",
                code_permalink="bench datasets build " + card.id,
                ref_min_score=ref_min,
                ref_max_score=ref_max,
                num_episodes_average_score=card.ref_episodes,
                description=card.description,
            )
        dataset.storage.update_metadata(
            {
                "bench_card_id": card.id,
                "bench_ref_source": card.ref_source,
                "bench_behavior_return_mean": float(np.mean(returns)) if returns else float("nan"),
                "bench_behavior_complete_episodes": len(returns),
            }
        )
        env.close()
    return open_dataset(card.minari_id)


def _collect_behavior(env, card: Card, size: int, progress) -> list[float]:
    """Roll the card's behavior out for exactly `size` steps; returns complete episodes' returns."""
    behavior = Behavior(card.behavior, env.action_space, 1, card.seed, envs=[env])
    episode = 0
    obs, _ = env.reset(seed=_episode_seed(card, episode))
    returns, ret = [], 0.0
    tick = _ticker(size, progress)
    for t in range(size):
        obs, rew, term, trunc, _ = env.step(behavior(obs[None])[0])
        ret += float(rew)
        if term or trunc:
            returns.append(ret)
            ret, episode = 0.0, episode + 1
            behavior.new_episode(0)
            if t + 1 < size:
                obs, _ = env.reset(seed=_episode_seed(card, episode))
        tick(t + 1)
    return returns


def _collect_replay(env, card: Card, size: int, progress) -> list[float]:
    """Replay recorded episodes (reset seed + actions, from `bench behavior train`'s
    replay.npz) through the env: rebuilds an online agent's replay buffer exactly."""
    from bench.data.cards import cards_dir

    path = cards_dir() / card.behavior.params["file"]
    try:
        with np.load(path) as f:
            seeds, lengths, actions = f["seeds"], f["lengths"], f["actions"]
    except (OSError, KeyError, ValueError) as e:
        raise DatasetError(f"dataset '{card.id}': cannot read replay file {path}: {e}") from None
    if lengths.sum() < size:
        raise DatasetError(f"dataset '{card.id}': replay file has {lengths.sum()} steps < {size}")
    discrete = hasattr(env.action_space, "n")
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    returns, t = [], 0
    tick = _ticker(size, progress)
    for seed, start, length in zip(seeds, starts, lengths, strict=True):
        env.reset(seed=int(seed))
        ret = 0.0
        for a in actions[start : start + length]:
            _, rew, term, trunc, _ = env.step(int(a) if discrete else a)
            ret, t = ret + float(rew), t + 1
            tick(t)
            if t == size:
                return returns + ([ret] if term or trunc else [])
        returns.append(ret)
    return returns


def _ticker(size: int, progress):
    """progress(advance) in ~200 chunks, so the bar costs nothing per step."""
    chunk = max(1, size // 200)

    def tick(done: int) -> None:
        if progress is not None and (done % chunk == 0 or done == size):
            progress(chunk if done % chunk == 0 else done % chunk)

    return tick


def _ensure_namespace(minari_id: str) -> None:
    from minari.namespace import create_namespace, list_local_namespaces

    namespace = minari_id.rsplit("/", 1)[0] if "/" in minari_id else None
    if namespace and namespace not in list_local_namespaces():
        create_namespace(namespace)


def ensure_dataset(card: Card, show_progress: bool = True):
    """Open the card's dataset, building it first when it is not in the Minari root."""
    if dataset_exists(card.minari_id):
        return open_dataset(card.minari_id)
    if card.behavior.policy == "external":
        raise DatasetError(f"dataset {card.minari_id} is not in the Minari root {minari_root()}")
    from bench.progress import progress_bar

    with progress_bar(f"building {card.id}", card.size, show_progress) as (advance, _):
        return build_dataset(card, progress=advance)
