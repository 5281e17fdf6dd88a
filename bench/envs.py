"""Environment construction from a dataset card: the builder and the evaluator use the same one."""

from __future__ import annotations

import gymnasium as gym

from bench.data.cards import EnvSpec
from bench.errors import BenchError


def make_env(env: EnvSpec) -> gym.Env:
    try:
        return gym.make(env.id, **env.kwargs)
    except gym.error.Error as e:
        raise BenchError(f"cannot make env {env.id}: {e}") from None


def make_vector_env(env: EnvSpec, n: int) -> gym.vector.VectorEnv:
    """n synchronous copies; on an episode's end the env resets in the same step.

    SyncVectorEnv with batched inference beats AsyncVectorEnv for cheap envs on 2 cores
    (REFERENCE.md, environment throughput).
    """
    return gym.vector.SyncVectorEnv(
        [lambda: make_env(env) for _ in range(n)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
