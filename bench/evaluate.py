"""Rollouts -> episode returns -> normalized scores (0-100)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from bench.envs import make_env
from bench.types import EnvSpec

#: The evaluation protocol's version, part of every run's key: bump it when a change alters what
#: an evaluation measures (env seeds, episode quotas, wrappers, scoring)
EVAL_VERSION = 1
#: Upper bound on parallel evaluation envs (they step one after another).
MAX_EVAL_ENVS = 10
#: gamma of the discounted returns evaluations also record: the true values that offline
#: estimates (FQE at this gamma) are compared with
EVAL_DISCOUNT = 0.99


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
    seed: int | Sequence[int],
    on_episode_end: Callable[[int], None] | None = None,
    n_envs: int = MAX_EVAL_ENVS,
    attach: Callable[[list], None] | None = None,
    discount: float | None = None,
):
    """Run exactly `episodes` episodes of `act` (obs batch -> action batch) on copies of env.

    Each env runs a fixed quota of episodes in sequence, so short episodes are not
    over-represented (which taking the first N finished episodes would do). Env i is seeded
    with seed + i; the episodes that follow continue each env's own RNG, so a given
    (seed, episodes) always plays the same episodes.

    With a list of G seeds, G groups of envs step together (one act() call per step for all of
    them; group g's envs seeded seed[g] + i, with the same quotas), and the result is
    [G, episodes]: group g's returns are those it gets alone. An env that has played its quota
    stops stepping; act() still sees its last observation, so the batch keeps its shape.

    on_episode_end(i) is called when env i finishes an episode (a behavior uses it to draw a new
    epsilon). attach(envs), when given, receives the list of single envs first (policies that
    read emulator state need them). With a discount gamma, the result is a pair: the returns
    and the discounted returns sum_t gamma^t r_t of the same episodes, shaped alike.
    """
    seeds = [seed] if isinstance(seed, int) else list(seed)
    n_envs = min(n_envs, episodes)
    quota = np.tile(split_episodes(episodes, n_envs), len(seeds))
    envs = [make_env(env) for _ in quota]
    if attach is not None:
        attach(envs)
    try:
        env_seeds = [base + i for base in seeds for i in range(n_envs)]
        obs = np.stack([e.reset(seed=s)[0] for e, s in zip(envs, env_seeds, strict=True)])
        running = np.zeros(len(quota))
        discounted, weight = np.zeros(len(quota)), np.ones(len(quota))
        returns: list[list[float]] = [[] for _ in quota]
        disc_returns: list[list[float]] = [[] for _ in quota]
        active = quota > 0
        while active.any():
            # one act() for every env, so a policy's random draws do not depend on which envs
            # are done; only the envs that still owe episodes step (the others would only
            # play uncounted episodes, which an agent stuck until the time limit makes costly)
            actions = act(obs)
            for i in np.flatnonzero(active):
                obs[i], rew, term, trunc, _ = envs[i].step(actions[i])
                running[i] += rew
                discounted[i] += weight[i] * rew
                weight[i] *= 1.0 if discount is None else discount
                if term or trunc:
                    returns[i].append(float(running[i]))
                    disc_returns[i].append(float(discounted[i]))
                    running[i] = discounted[i] = 0.0
                    weight[i] = 1.0
                    if on_episode_end is not None:
                        on_episode_end(int(i))
                    active[i] = len(returns[i]) < quota[i]
                    if active[i]:  # the env's next episode continues its own RNG
                        obs[i] = envs[i].reset()[0]
    finally:
        for e in envs:
            e.close()

    def shaped(per_env: list[list[float]]) -> np.ndarray:
        flat = np.array([r for env_returns in per_env for r in env_returns])
        return flat if isinstance(seed, int) else flat.reshape(len(seeds), episodes)

    if discount is None:
        return shaped(returns)
    return shaped(returns), shaped(disc_returns)


def algorithm_returns(
    algo, env: EnvSpec, episodes: int, seeds: Sequence[int], discount: float | None = None
):
    """Episode returns [S, episodes] of an algorithm's S seeds: env group s is seeded from
    seeds[s] and acted on by seed s's policy; one batched act() per step for all of them.
    With a discount, also the discounted returns (see rollout_returns)."""
    S = algo.num_seeds

    def act(obs: np.ndarray) -> np.ndarray:
        obs_t = torch.as_tensor(obs, device=algo.device)
        if obs_t.dtype != torch.uint8:
            obs_t = obs_t.float()
        actions = algo.act(obs_t.view(S, -1, *obs_t.shape[1:]))
        return actions.reshape(-1, *actions.shape[2:]).cpu().numpy()

    return rollout_returns(env, act, episodes, list(seeds), discount=discount)
