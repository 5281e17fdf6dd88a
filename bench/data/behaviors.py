"""Behavior policies that collect datasets: scripted controllers, mixed with epsilon-random actions.

A behavior acts on a batch of observations (numpy, [n, *obs_shape]) and returns a batch of
actions, so the same object drives one collecting env or a vector of evaluation envs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from bench.data.cards import PolicySpec
from bench.errors import UnknownNameError

#: name -> factory(action_space, seed, **params) -> (obs batch -> action batch)
SCRIPTED: dict[str, Callable[..., Callable[[np.ndarray], np.ndarray]]] = {}


def scripted(name: str):
    def deco(factory):
        SCRIPTED[name] = factory
        return factory

    return deco


@scripted("random")
def _random(action_space: gym.Space, seed: int, **_: Any):
    # A placeholder that never gets called: epsilon = 1 draws every action at random.
    def act(obs: np.ndarray) -> np.ndarray:
        raise AssertionError("the random behavior acts through epsilon = 1")

    return act


@scripted("cartpole_pd")
def _cartpole_pd(
    action_space: gym.Space,
    seed: int,
    k_x: float = 0.1,
    k_v: float = 0.5,
    k_theta: float = 10.0,
    k_omega: float = 2.0,
):
    """Push towards the side the pole falls to: u = k_x x + k_v x' + k_theta theta + k_omega theta'.

    The cart terms keep the cart near the centre, so episodes last the full 500 steps.
    """
    gains = np.array([k_x, k_v, k_theta, k_omega], dtype=np.float64)

    def act(obs: np.ndarray) -> np.ndarray:
        return (obs @ gains > 0).astype(np.int64)

    return act


@scripted("checkpoint")
def _checkpoint(action_space: gym.Space, seed: int, file: str, mode: str = "sample"):
    """A learned policy shipped as a file (saved by `bench behavior train`), path relative to
    the cards folder. mode "sample" draws from the stochastic policy (as D4RL's behaviors
    did), "deterministic" acts with its evaluation policy without noise."""
    import torch

    from bench.data.cards import cards_dir
    from bench.online import load_policy

    algo = load_policy(cards_dir() / file, seed=seed)
    if hasattr(algo.config, "deterministic_eval"):
        algo.config.deterministic_eval = mode == "deterministic"

    def act(obs: np.ndarray) -> np.ndarray:
        obs_t = torch.as_tensor(obs, dtype=torch.float32)
        return algo.act(obs_t, deterministic=mode == "deterministic").numpy()

    return act


class Behavior:
    """A scripted policy mixed with epsilon-uniform-random actions, over a batch of envs.

    With an epsilon range, each env draws a fresh epsilon for every episode (call
    new_episode(i) at its reset), so one dataset holds poor and good play.
    """

    def __init__(self, spec: PolicySpec, action_space: gym.Space, n_envs: int, seed: int):
        if spec.policy not in SCRIPTED:
            raise UnknownNameError("behavior policy", spec.policy, list(SCRIPTED))
        self.spec = spec
        self.action_space = action_space
        self.policy = SCRIPTED[spec.policy](action_space, seed, **spec.params)
        self.rng = np.random.default_rng(seed)
        self.eps = np.zeros(n_envs)
        for i in range(n_envs):
            self.new_episode(i)

    def new_episode(self, i: int) -> None:
        e = self.spec.epsilon
        self.eps[i] = self.rng.uniform(min(e), max(e)) if isinstance(e, tuple) else e

    def _random_actions(self, n: int) -> np.ndarray:
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            return space.start + self.rng.integers(space.n, size=n)
        low, high = space.low, space.high
        return self.rng.uniform(low, high, size=(n, *space.shape)).astype(space.dtype)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        n = len(obs)
        eps = self.eps[:n]
        random = self._random_actions(n)
        if np.all(eps >= 1.0):
            return random
        greedy = np.asarray(self.policy(obs))
        pick = self.rng.random(n) < eps
        return np.where(pick.reshape((n,) + (1,) * (greedy.ndim - 1)), random, greedy).astype(
            greedy.dtype
        )
