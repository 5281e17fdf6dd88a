"""Environment construction from a dataset card: the builder and the evaluator use the same one."""

from __future__ import annotations

import gymnasium as gym

from bench.data.cards import Card
from bench.errors import DatasetError


def make_env(card: Card) -> gym.Env:
    try:
        return gym.make(card.env.id, **card.env.kwargs)
    except gym.error.Error as e:
        raise DatasetError(f"dataset '{card.id}': cannot make env {card.env.id}: {e}") from None


def make_vector_env(card: Card, n: int) -> gym.vector.VectorEnv:
    """n synchronous copies; on an episode's end the env resets in the same step.

    SyncVectorEnv with batched inference beats AsyncVectorEnv for cheap envs on 2 cores
    (REFERENCE.md, environment throughput).
    """
    return gym.vector.SyncVectorEnv(
        [lambda: make_env(card) for _ in range(n)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
