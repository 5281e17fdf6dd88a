"""Rollouts -> episode returns -> normalized scores (0-100)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from bench.envs import make_vector_env
from bench.types import EnvSpec

#: Upper bound on parallel evaluation envs (SyncVectorEnv: they step one after another).
MAX_EVAL_ENVS = 10


def normalized_score(returns: np.ndarray | float, ref_min: float, ref_max: float):
    """100 * (return - ref_min) / (ref_max - ref_min): 0 = reference min, 100 = reference max.

    Always on the 0-100 scale (D4RL and Minari return 0-1 fractions; we multiply by 100).
    """
    return 100.0 * (np.asarray(returns, dtype=np.float64) - ref_min) / (ref_max - ref_min)


def split_episodes(episodes: int, n_envs: int) -> np.ndarray:
    """How many episodes each env runs: as even as possible, summing to `episodes`."""
    counts = np.full(n_envs, episodes // n_envs)
    counts[: episodes % n_envs] += 1
    return counts


def rollout_returns(
    env: EnvSpec,
    act: Callable[[np.ndarray], np.ndarray],
    episodes: int,
    seed: int,
    on_episode_end: Callable[[int], None] | None = None,
    n_envs: int = MAX_EVAL_ENVS,
    attach: Callable[[list], None] | None = None,
) -> np.ndarray:
    """Run exactly `episodes` episodes of `act` (obs batch -> action batch) on a vector env.

    Each env runs a fixed quota of episodes in sequence, so short episodes are not
    over-represented (which taking the first N finished episodes would do). Env i is seeded
    with seed + i; the episodes that follow continue each env's own RNG, so a given
    (seed, episodes) always plays the same episodes. on_episode_end(i) is called when env i
    finishes an episode (a behavior uses it to draw a new epsilon). attach(envs), when given,
    receives the list of single envs first (policies that read emulator state need them).
    """
    n_envs = min(n_envs, episodes)
    quota = split_episodes(episodes, n_envs)
    envs = make_vector_env(env, n_envs)
    if attach is not None:
        attach(envs.envs)
    try:
        obs, _ = envs.reset(seed=[seed + i for i in range(n_envs)])
        running = np.zeros(n_envs)
        returns: list[list[float]] = [[] for _ in range(n_envs)]
        while any(len(r) < q for r, q in zip(returns, quota, strict=True)):
            obs, rew, term, trunc, _ = envs.step(act(obs))
            running += rew
            for i in np.flatnonzero(term | trunc):
                if len(returns[i]) < quota[i]:
                    returns[i].append(float(running[i]))
                running[i] = 0.0
                if on_episode_end is not None:
                    on_episode_end(int(i))
    finally:
        envs.close()
    return np.array([r for env_returns in returns for r in env_returns])


def algorithm_returns(algo, env: EnvSpec, episodes: int, seed: int) -> np.ndarray:
    """Episode returns of an algorithm's evaluation policy, one batched act() per step."""

    def act(obs: np.ndarray) -> np.ndarray:
        obs_t = torch.as_tensor(obs, device=algo.device)
        if obs_t.dtype != torch.uint8:
            obs_t = obs_t.float()
        return algo.act(obs_t).cpu().numpy()

    return rollout_returns(env, act, episodes, seed)
