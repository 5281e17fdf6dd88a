"""Seeding: the seed plan, the process-wide RNGs, and per-seed random streams for jobs that
train many seeds.

The seed plan. Every env seed and every random stream bench uses is derived here from
(purpose, seed, index), and nowhere else:

    env_seed(purpose, seed, index)   the reset seed of an environment: PURPOSE_SPAN * purpose
                                     + SEED_STRIDE * seed + index, so the ranges of two
                                     purposes, or of two seeds of one purpose, never overlap
                                     (tests/test_seedplan.py checks it over the full range)
    rng(purpose, seed, *index)       a numpy Generator (PCG64) keyed by the same triple
    stream_seed(purpose, seed, *index) an integer seed for a torch generator keyed by it

A purpose's `seed` is the run seed (eval, final), the card's build seed (build, refs, behavior
noise), the online agent's seed (online, online_eval), or 0 for draws shared by every run
(holdout, select). The per-seed training streams (SeedStreams: network init, sampler, acting
noise) are keyed by (seed, stream name, kind) through derive_seed; their names are purposes too.

A job trains S seeds at once, so every random draw has a leading seed dimension, and seed s's
numbers must not depend on which other seeds share its job. SeedStreams gives each seed its own
torch generator and hands out [S, *shape] draws; seed s's row is the next values of its own
generator, whatever S is. Generators are drawn in blocks (one loop over the seeds per block, not
per draw), so a draw inside an update is one slice of a buffer.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Sequence

import numpy as np
import torch

#: The purposes, in a fixed order: a purpose's code is its position (never reorder; append).
PURPOSES = (
    "build",
    "refs",
    "eval",
    "final",
    "online",
    "online_eval",
    "holdout",
    "select",
    "behavior_noise",
)
#: Seeds are non-negative and fit the 32-bit seeds of numpy's legacy API and the environments.
MAX_SEED = 2**31 - 1
#: Indices (episodes, envs) per (purpose, seed): 16.7M episodes of one build or evaluation.
SEED_STRIDE = 2**24
#: Env seeds per purpose: every seed's stride.
PURPOSE_SPAN = (MAX_SEED + 1) * SEED_STRIDE


def _code(purpose: str) -> int:
    try:
        return PURPOSES.index(purpose)
    except ValueError:
        raise ValueError(f"unknown seed purpose {purpose!r}; one of {PURPOSES}") from None


def _check(seed: int, index: int = 0) -> None:
    if (
        isinstance(seed, bool)
        or not isinstance(seed, int | np.integer)
        or not 0 <= seed <= MAX_SEED
    ):
        raise ValueError(f"seed must be an integer in 0..{MAX_SEED}, got {seed!r}")
    if not 0 <= index < SEED_STRIDE:
        raise ValueError(f"index must be in 0..{SEED_STRIDE - 1}, got {index}")


def env_seed(purpose: str, seed: int, index: int = 0) -> int:
    """The reset seed of env (or episode) `index` for `purpose` and `seed`. For "build" with
    seed 0 it is the index itself, as dataset builds have always reset their episodes."""
    _check(seed, index)
    return PURPOSE_SPAN * _code(purpose) + SEED_STRIDE * int(seed) + int(index)


def seed_sequence(purpose: str, seed: int, *index: int) -> np.random.SeedSequence:
    """numpy's SeedSequence for (purpose, seed, index). "build" with no index is numpy's plain
    default_rng(seed) (what a card's behavior has always drawn from); every other triple has a
    spawn key of its own."""
    _check(seed)
    code = _code(purpose)
    key = () if code == 0 and not index else (code, *map(int, index))
    return np.random.SeedSequence(int(seed), spawn_key=key)


def rng(purpose: str, seed: int, *index: int) -> np.random.Generator:
    """A numpy Generator for (purpose, seed, index)."""
    return np.random.default_rng(seed_sequence(purpose, seed, *index))


def reseed_legacy(state: np.random.RandomState, seed: int) -> np.random.RandomState:
    """Reseed, in place, a legacy RandomState that a simulated rollout draws from (MinAtar's
    games draw from one): `seed` is a draw of a plan stream (minatar_planner takes one per step
    from the card's build stream, rng("build", seed)), so the rollout is the same on every
    machine. Reseeding one object per plan costs far less than making one."""
    state.seed(seed)
    return state


def stream_seed(purpose: str, seed: int, *index: int) -> int:
    """An integer seed for a torch generator (or a gymnasium space) keyed by (purpose, seed,
    index): 63 bits of numpy's SeedSequence for the triple. torch's CPU generator keeps the low 32
    bits of its seed, so two such streams coincide with probability 2^-32 per pair; env seeds,
    which decide which initial states runs and datasets share, are disjoint by construction."""
    return int(seed_sequence(purpose, seed, *index).generate_state(1, np.uint64)[0] >> 1)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from a tuple (seed, stream name, ...): distinct tuples, unrelated streams."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class _Block:
    """One kind of draw (normal, uniform, or integers below `high`) for every seed, buffered."""

    #: values drawn per seed per refill (or the request, when larger)
    BLOCK = 8192

    def __init__(self, streams: SeedStreams, kind: str, draw: Callable):
        self.streams, self.kind, self.draw = streams, kind, draw
        dev = streams.device
        self.generators = [
            torch.Generator(device=dev).manual_seed(derive_seed(s, streams.name, kind))
            for s in streams.seeds
        ]
        self.buffer: torch.Tensor | None = None
        self.pos = 0
        self.states: list[torch.Tensor] = []  # generator states when the buffer was drawn

    def _refill(self, size: int) -> None:
        self.states = [g.get_state() for g in self.generators]
        self.buffer = torch.stack([self.draw(size, g) for g in self.generators])
        self.pos = 0

    def take(self, n: int) -> torch.Tensor:
        """[S, n]: the next n values of each seed's stream."""
        if self.buffer is None or self.pos + n > self.buffer.shape[1]:
            self._refill(max(self.BLOCK, n))
        assert self.buffer is not None
        out = self.buffer[:, self.pos : self.pos + n]
        self.pos += n
        return out

    def state_dict(self) -> dict:
        if self.buffer is None:
            return {
                "states": torch.stack([g.get_state() for g in self.generators]),
                "size": 0,
                "pos": 0,
            }
        return {"states": torch.stack(self.states), "size": self.buffer.shape[1], "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        for g, st in zip(self.generators, state["states"], strict=True):
            g.set_state(st.clone())
        if int(state["size"]):
            self._refill(int(state["size"]))
            self.pos = int(state["pos"])
        else:
            self.buffer, self.pos = None, 0


class SeedStreams:
    """Per-seed random streams: normal(*shape), uniform(*shape), integers(high, *shape) give
    [S, *shape] tensors on the device; row s comes from seed s's own generators only.

    reseed(*salt) restarts every stream from (seed, name, salt): the evaluation restarts its
    acting noise per evaluation, so a seed's evaluation never depends on how long another
    seed's episodes ran. state_dict() holds a leading seed dimension, like the networks'."""

    def __init__(self, seeds: Sequence[int], device: str | torch.device, name: str):
        self.seeds = [int(s) for s in seeds]
        self.device = torch.device(device)
        self.base_name = name
        self.name = name
        self._blocks: dict[str, _Block] = {}

    @property
    def num_seeds(self) -> int:
        return len(self.seeds)

    def reseed(self, *salt: int | str) -> None:
        self.name = f"{self.base_name}/{'/'.join(map(str, salt))}" if salt else self.base_name
        self._blocks = {}

    def _take(self, kind: str, shape: tuple[int, ...]) -> torch.Tensor:
        block = self._blocks.get(kind)
        if block is None:
            block = self._blocks[kind] = _Block(self, kind, _DRAWS[kind.split("<")[0]](self, kind))
        return block.take(math.prod(shape)).reshape(self.num_seeds, *shape)

    def normal(self, *shape: int) -> torch.Tensor:
        """Standard normal draws [S, *shape]."""
        return self._take("normal", shape)

    def uniform(self, *shape: int) -> torch.Tensor:
        """Uniform draws in [0, 1): [S, *shape]."""
        return self._take("uniform", shape)

    def integers(self, high: int, *shape: int) -> torch.Tensor:
        """Uniform integers in [0, high): [S, *shape] (one stream per value of high)."""
        return self._take(f"integers<{int(high)}", shape)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {"name": self.name, "blocks": {k: b.state_dict() for k, b in self._blocks.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.name = state["name"]
        self._blocks = {}
        for kind, block_state in state["blocks"].items():
            self._take(kind, (0,))  # creates the block
            self._blocks[kind].load_state_dict(block_state)


def _normal(streams: SeedStreams, kind: str) -> Callable:
    dev = streams.device
    return lambda n, g: torch.randn(n, generator=g, device=dev)


def _uniform(streams: SeedStreams, kind: str) -> Callable:
    dev = streams.device
    return lambda n, g: torch.rand(n, generator=g, device=dev)


def _integers(streams: SeedStreams, kind: str) -> Callable:
    high, dev = int(kind.split("<")[1]), streams.device
    return lambda n, g: torch.randint(high, (n,), generator=g, device=dev)


_DRAWS = {"normal": _normal, "uniform": _uniform, "integers": _integers}


# ---------------------------------------------------------------------- per-seed states
def split_seeds(state, num_seeds: int) -> list:
    """A job's state (nested dicts/lists of tensors with a leading seed dimension) -> one state
    per seed, each shaped as a one-seed job's ([1, ...]). 0-d tensors and plain values (step
    counters, names) are shared by all seeds."""
    return [_select(state, s, num_seeds) for s in range(num_seeds)]


def _select(x, s: int, n: int):
    if isinstance(x, dict):
        return {k: _select(v, s, n) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(_select(v, s, n) for v in x)
    if isinstance(x, torch.Tensor) and x.dim() >= 1:
        if x.shape[0] != n:
            raise ValueError(f"a state tensor of shape {tuple(x.shape)} has no seed dimension {n}")
        return x[s : s + 1].clone()
    return x


def stack_seeds(states: list):
    """One state per seed -> the job's state (the inverse of split_seeds). The shared values
    must agree: seeds at different steps cannot share a job."""
    first = states[0]
    if isinstance(first, dict):
        if any(not isinstance(st, dict) or st.keys() != first.keys() for st in states):
            raise ValueError("the seeds' states hold different entries")
        return {k: stack_seeds([st[k] for st in states]) for k in first}
    if isinstance(first, list | tuple):
        if any(len(st) != len(first) for st in states):
            raise ValueError("the seeds' states hold lists of different lengths")
        return type(first)(stack_seeds([st[i] for st in states]) for i in range(len(first)))
    if isinstance(first, torch.Tensor) and first.dim() >= 1:
        return torch.cat(states)
    same = all(
        torch.equal(st, first) if isinstance(first, torch.Tensor) else st == first for st in states
    )
    if not same:
        raise ValueError(f"the seeds' states disagree on a shared value ({first!r})")
    return first
