"""Build a dataset from its card: roll the behavior out through minari.DataCollector.

The dataset is written into a staging folder inside the Minari root and renamed into place
only when complete, so an interrupted build never leaves a dataset that loads as if whole.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager

import numpy as np

from bench.collect.behaviors import Behavior
from bench.data.cards import Card, PolicySpec
from bench.data.identity import (
    BUILD_VERSION,
    BUILD_VERSION_KEY,
    CONTENT_HASH_KEY,
    Content,
    content,
    describe_mismatch,
    reference_file,
)
from bench.data.minari_io import (
    check_free_space,
    check_root_writable,
    dataset_exists,
    free_bytes,
    is_disk_full,
    minari_root,
    open_dataset,
    staged_dataset,
)
from bench.envs import make_env
from bench.errors import DatasetError
from bench.evaluate import rollout_returns
from bench.seeding import env_seed


def _locate(card: Card):
    """Files a card names (behavior weights, replay logs): inside its folder or the package's."""
    from bench.data.cards import card_file

    return lambda name: card_file(card, name)


def measure_policy(card: Card, spec: PolicySpec, episodes: int) -> np.ndarray:
    """Returns of a policy over `episodes` episodes of the card's env, on the env seeds and
    random streams of the "refs" purpose (bench.seeding): the same episodes for every policy."""
    probe = make_env(card.env)
    space = probe.action_space
    probe.close()
    n_envs = min(episodes, 10)
    behavior = Behavior(spec, space, n_envs, card.seed, purpose="refs", locate=_locate(card))
    return rollout_returns(
        card.env,
        behavior,
        episodes,
        env_seed("refs", card.seed),
        on_episode_end=behavior.new_episode,
        attach=lambda envs: setattr(behavior, "envs", envs),
    )


def measure_refs(card: Card) -> tuple[float, float]:
    """Minari's convention, measured now: ref_min = uniform random, ref_max = the card's expert,
    mean over the card's reference episodes. Only `bench datasets build --measure-refs` calls
    it: a build always uses the card's constants."""
    if card.expert.policy == "none":
        raise DatasetError(
            f"dataset '{card.id}' has published references ({card.ref_source}): there is no "
            "expert policy to measure"
        )
    with _torch_threads(BUILD_THREADS):
        random = PolicySpec(policy="random", epsilon=1.0)
        ref_min = float(np.mean(measure_policy(card, random, card.ref_episodes)))
        ref_max = float(np.mean(measure_policy(card, card.expert, card.ref_episodes)))
    return ref_min, ref_max


def card_refs(card: Card) -> tuple[float, float]:
    """The card's normalization references: constants, never measured by a build; finite and
    different, or no score could be normalized by them (a build and a run refuse alike)."""
    if card.measured_refs:
        raise DatasetError(
            f"dataset card '{card.id}' has no ref_min/ref_max: measure them with `bench datasets "
            f"build {card.id} --measure-refs` and write them into its [normalization] table"
        )
    assert card.ref_min is not None and card.ref_max is not None  # not measured_refs
    ref_min, ref_max = float(card.ref_min), float(card.ref_max)
    if not (math.isfinite(ref_min) and math.isfinite(ref_max)) or ref_max == ref_min:
        raise DatasetError(
            f"dataset {card.id}: reference scores ref_min {ref_min!r} / ref_max {ref_max!r} "
            "cannot normalize scores (they must be finite and differ)"
        )
    return ref_min, ref_max


#: torch threads of a build: learned behaviors act on one observation per step, so more only
#: add overhead (5x slower builds measured beside other processes). The data does not depend on
#: it (tests/data/test_dataset_identity.py builds with 1 and 2).
BUILD_THREADS = 1


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
    return env_seed("build", card.seed, episode)


def _space_bytes(space) -> int:
    """Bytes of one element of a gymnasium space as stored (its dtype; 8 per dim otherwise)."""
    import gymnasium as gym

    if space.dtype is not None and space.shape is not None:
        return int(np.prod(space.shape, dtype=np.int64)) * np.dtype(space.dtype).itemsize
    return gym.spaces.flatdim(space) * 8


#: HDF5 bytes per stored episode beyond its arrays (its group and five datasets): measured
#: 17 KB with Minari 0.5.4, which dominates datasets of short episodes.
EPISODE_BYTES = 20 * 1024


def transition_bytes(card: Card) -> int:
    """Bytes one stored transition takes: an observation (one frame: stacks are not stored),
    an action, a float64 reward, termination and truncation flags. Each episode's extra final
    observation is left to the free-space margin. (Cached per env spec: it makes an env.)"""
    key = repr(card.env)
    if key not in _TRANSITION_BYTES:
        env = make_env(card.env, stacked=False)
        try:
            obs, act = _space_bytes(env.observation_space), _space_bytes(env.action_space)
        finally:
            env.close()
        _TRANSITION_BYTES[key] = obs + act + 8 + 2
    return _TRANSITION_BYTES[key]


_TRANSITION_BYTES: dict[str, int] = {}


def check_build(card: Card, size: int | None = None, force: bool = False) -> int:
    """What refuses a build before anything is collected (one line each): an imported card,
    a bad size, an existing dataset without force, a disk too small for the estimate.
    Returns the size to build."""
    size = card.size if size is None else size
    if card.behavior.policy == "external":
        raise DatasetError(
            f"dataset '{card.id}' holds external data (imported): it cannot be built; import "
            "its file again with `bench datasets import FILE --env ENV --as ID --force`"
        )
    if size <= 0:
        raise DatasetError(f"dataset '{card.id}': size must be positive, got {size}")
    card_refs(card)  # constants, before anything is collected
    if dataset_exists(card.minari_id) and not force:
        raise DatasetError(f"dataset {card.minari_id} already exists (use --force to replace it)")
    # episodes: at least one per time limit's worth of steps; shorter ones are caught while
    # collecting (SpaceGuard), before Minari writes them
    limit = _time_limit(card)
    episodes = -(-size // limit) if limit else 1
    check_free_space(minari_root(), size * transition_bytes(card) + episodes * EPISODE_BYTES)
    return size


def build_dataset(
    card: Card,
    size: int | None = None,
    progress=None,
    force: bool = False,
    allow_mismatch: bool = False,
):
    """Collect `size` transitions (default: the card's) and write the Minari dataset.

    progress: optional callable(advance: int) called as steps are collected.
    A build of the card's full size is compared with the card's reference build (its content
    hash): a mismatch is one error line and nothing is kept, unless allow_mismatch, which keeps
    it as a dataset of its own (its content hash is its identity).
    Returns the opened MinariDataset. Refused up front when the Minari root's disk cannot
    hold the estimate, and stopped when the disk fills while collecting (HDF5 crashes
    rather than raising when the disk fills up).
    """
    size = check_build(card, size, force)
    root = minari_root()
    try:
        return _build(
            card, size, progress, force, SpaceGuard(root, transition_bytes(card)), allow_mismatch
        )
    except OSError as e:  # the disk filled anyway (another writer)
        if not is_disk_full(e):
            raise
        raise DatasetError(
            f"dataset '{card.id}': no space left in the Minari root {root}"
        ) from None


def _time_limit(card: Card) -> int | None:
    import gymnasium as gym

    try:
        return gym.spec(card.env.id).max_episode_steps
    except gym.error.Error:
        return None


class SpaceGuard:
    """Free space watched while collecting. Minari writes an episode when it ends, so before
    each step the episode's pending bytes (plus the margin) must fit in what is free: the
    build stops with one line before HDF5 would hit a full disk. What is free is read again at
    every episode's start and every RECHECK_EVERY steps, so another process filling the disk
    during a long episode stops the build too."""

    #: steps between two reads of the free space inside an episode (a statvfs call each)
    RECHECK_EVERY = 256

    def __init__(self, folder, per_step: int):
        self.folder, self.per_step = folder, per_step
        self.new_episode()

    def new_episode(self) -> None:
        self.free = free_bytes(self.folder)
        self.pending = EPISODE_BYTES
        self.steps = 0

    def step(self) -> None:
        self.pending += self.per_step
        self.steps += 1
        if self.steps % self.RECHECK_EVERY == 0:
            self.free = free_bytes(self.folder)
        check_free_space(self.folder, self.pending, free=self.free)


#: What a build's metadata says of its reference (CLI and `bench datasets info` show it).
IDENTICAL = "identical to the reference build"
OWN_IDENTITY = "differs from the reference build (kept with --allow-mismatch)"


def reference_status(card: Card, size: int, built: Content) -> tuple[str, str | None]:
    """(status, error): how a build compares with its card's reference build."""
    ref = card.reference
    if ref is None:
        return "the card records no reference build", None
    if size != card.size:
        return f"no reference build at this size ({size:,}; the card's is {card.size:,})", None
    if built.hash == ref.content_hash:
        return IDENTICAL, None
    from bench.data.cards import cards_dir

    folder = card.path.parent if card.path is not None else cards_dir()
    return OWN_IDENTITY, describe_mismatch(
        card.id, ref.content_hash, ref.episodes, ref.steps, built, reference_file(folder, card.id)
    )


def _build(
    card: Card, size: int, progress, force: bool, guard: SpaceGuard, allow_mismatch: bool = False
):
    from minari import DataCollector

    ref_min, ref_max = card_refs(card)
    with _torch_threads(BUILD_THREADS), staged_dataset(card.minari_id, force):  # a staging root
        base_env = make_env(card.env, stacked=False)  # frames are stored once, unstacked
        # the plain env's spec: Minari cannot recreate the collector wrapper itself
        eval_spec = base_env.spec
        env = DataCollector(base_env, record_infos=False, jpeg_encoding=False)
        collect = _collect_replay if card.behavior.policy == "replay" else _collect_behavior
        returns = collect(env, card, size, progress, guard)
        # A last unfinished episode is stored as truncated by Minari (bootstrapped, not final).
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
        built = content(dataset)
        status, error = reference_status(card, size, built)
        if error is not None and not allow_mismatch:
            raise DatasetError(error)  # the staging folder goes, nothing is kept
        dataset.storage.update_metadata(
            {
                CONTENT_HASH_KEY: built.hash,
                BUILD_VERSION_KEY: BUILD_VERSION,
                "bench_reference": status,
            }
        )
    return open_dataset(card.minari_id)


def _collect_behavior(env, card: Card, size: int, progress, guard: SpaceGuard) -> list[float]:
    """Roll the card's behavior out for exactly `size` steps; returns complete episodes' returns."""
    behavior = Behavior(
        card.behavior, env.action_space, 1, card.seed, envs=[env], locate=_locate(card)
    )
    episode = 0
    obs, _ = env.reset(seed=_episode_seed(card, episode))
    returns, ret = [], 0.0
    tick = _ticker(size, progress)
    for t in range(size):
        guard.step()
        obs, rew, term, trunc, _ = env.step(behavior(obs[None])[0])
        ret += float(rew)
        if term or trunc:
            returns.append(ret)
            ret, episode = 0.0, episode + 1
            behavior.new_episode(0)
            guard.new_episode()
            if t + 1 < size:
                obs, _ = env.reset(seed=_episode_seed(card, episode))
        tick(t + 1)
    return returns


def _collect_replay(env, card: Card, size: int, progress, guard: SpaceGuard) -> list[float]:
    """Replay recorded episodes (reset seed + actions, from `bench behavior train`'s
    replay.npz) through the env: rebuilds an online agent's replay buffer exactly."""
    path = _locate(card)(card.behavior.params["file"])
    try:
        with np.load(path, allow_pickle=False) as f:
            seeds, lengths, actions = f["seeds"], f["lengths"], f["actions"]
    except (OSError, KeyError, ValueError) as e:
        raise DatasetError(f"dataset '{card.id}': cannot read replay file {path}: {e}") from None
    if lengths.sum() < size:
        raise DatasetError(f"dataset '{card.id}': replay file has {lengths.sum()} steps < {size}")
    discrete = hasattr(env.action_space, "n")
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    returns: list[float] = []
    t = 0
    tick = _ticker(size, progress)
    for seed, start, length in zip(seeds, starts, lengths, strict=True):
        env.reset(seed=int(seed))
        guard.new_episode()
        ret = 0.0
        for a in actions[start : start + length]:
            guard.step()
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


def ensure_dataset(card: Card, show_progress: bool = True):
    """Open the card's dataset, building it first when it is not in the Minari root."""
    if dataset_exists(card.minari_id):
        return open_dataset(card.minari_id)
    if card.behavior.policy == "external":
        raise DatasetError(f"dataset {card.minari_id} is not in the Minari root {minari_root()}")
    from bench.progress import progress_bar

    check_root_writable()  # before any progress is shown
    with progress_bar(f"building {card.id}", card.size, show_progress) as (advance, _):
        return build_dataset(card, progress=advance)
