"""Behavior policies that collect datasets: scripted controllers, mixed with epsilon-random actions.

A behavior acts on a batch of observations (numpy, [n, *obs_shape]) and returns a batch of
actions, so the same object drives one collecting env or a vector of evaluation envs. Policies
that read the emulator's RAM (the Atari ones) are also given the envs themselves, one per row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from bench.data.cards import PolicySpec
from bench.errors import UnknownNameError

#: name -> factory(action_space, seed, **params) -> act(obs batch, envs) -> action batch
SCRIPTED: dict[str, Callable[..., Callable[[np.ndarray], np.ndarray]]] = {}


def scripted(name: str):
    def deco(factory):
        SCRIPTED[name] = factory
        return factory

    return deco


@scripted("random")
def _random(action_space: gym.Space, seed: int, **_: Any):
    # A placeholder that never gets called: epsilon = 1 draws every action at random.
    def act(obs: np.ndarray, envs=None) -> np.ndarray:
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

    def act(obs: np.ndarray, envs=None) -> np.ndarray:
        return (obs @ gains > 0).astype(np.int64)

    return act


@scripted("checkpoint")
def _checkpoint(action_space: gym.Space, seed: int, file: str, mode: str = "sample"):
    """A learned policy shipped as a file (saved by `bench behavior train`), path relative to
    the cards folder. mode "sample" draws from the stochastic policy (as D4RL's behaviors
    did), "deterministic" acts with its evaluation policy without noise."""
    import torch

    from bench.collect.online import load_policy
    from bench.data.cards import cards_dir

    algo = load_policy(cards_dir() / file, seed=seed)
    if hasattr(algo.config, "deterministic_eval"):
        algo.config.deterministic_eval = mode == "deterministic"

    def act(obs: np.ndarray, envs=None) -> np.ndarray:
        obs_t = torch.as_tensor(obs, dtype=torch.float32)[None]  # [1 seed, envs, obs]
        return algo.act(obs_t, deterministic=mode == "deterministic")[0].numpy()

    return act


def _ram(env: gym.Env) -> np.ndarray:
    return env.unwrapped.ale.getRAM()


def _action_ids(env: gym.Env, *names: str) -> list[int]:
    meanings = env.unwrapped.get_action_meanings()
    return [meanings.index(n) for n in names]


def _reflect(x: np.ndarray | float, lo: float, hi: float):
    """Fold a straight-line position back into [lo, hi] (bounces off both walls)."""
    w = hi - lo
    x = np.mod(x - lo, 2 * w)
    return lo + np.where(x < w, x, 2 * w - x)


class _BallTracker:
    """Per-env previous ball position, for a velocity estimate from two consecutive steps."""

    def __init__(self):
        self.prev: dict[int, tuple[int, int]] = {}

    def velocity(self, i: int, x: int, y: int) -> tuple[int, int] | None:
        prev, self.prev[i] = self.prev.get(i), (x, y)
        if prev is None or prev[1] == 0 or y == 0:
            return None
        return x - prev[0], y - prev[1]


@scripted("breakout_ram")
def _breakout_ram(
    action_space: gym.Space, seed: int, paddle_row: float = 180.0, deadband: float = 10.0
):
    """Breakout from emulator RAM (addresses in REFERENCE.md, Breakout from RAM): FIRE while the
    ball is not in play; while it falls, predict where it crosses the paddle's row (straight
    line, bouncing off the side walls) and move the paddle there; while it rises, follow its x.
    paddle_row (RAM y units) and deadband (pixels) were tuned on returns: ~200 per episode with
    sticky actions, against 1.4 for random and 30.5 for the human reference."""
    tracker = _BallTracker()
    wall_lo, wall_hi = 8.0, 150.0  # playfield x range of the ball's left pixel

    def act(obs: np.ndarray, envs) -> np.ndarray:
        actions = np.zeros(len(obs), dtype=np.int64)
        for i, env in enumerate(envs):
            noop, fire, right, left = _action_ids(env, "NOOP", "FIRE", "RIGHT", "LEFT")
            ram = _ram(env)
            paddle = int(ram[72]) - 47 + 8  # centre pixel of the 16-pixel paddle
            x, y = int(ram[99]) - 49, int(ram[101])
            v = tracker.velocity(i, x, y)
            if y == 0:  # ball not in play
                actions[i] = fire
                continue
            target = float(x)
            if v is not None and v[1] > 0:  # falling: where will it meet the paddle's row?
                target = float(_reflect(x + v[0] * (paddle_row - y) / v[1], wall_lo, wall_hi))
            d = target + 1 - paddle
            actions[i] = right if d > deadband else left if d < -deadband else noop
        return actions

    return act


@scripted("pong_ram")
def _pong_ram(action_space: gym.Space, seed: int, deadband: float = 8.0):
    """Pong from emulator RAM: ram[51] our paddle's y (rows ram[51]-13 .. ram[51]+2), ram[49] /
    ram[54] the ball's x / y (left pixel ram[49]-49, top row ram[54]-14; 0 = not in play),
    read against the screen. While the ball comes towards us, predict the y where it reaches
    our paddle's column (bouncing off top and bottom walls) and centre the paddle on it;
    otherwise follow the ball's y. RIGHT moves the paddle up, LEFT down. It wins some points
    and loses more: returns around -5 per episode with sticky actions, against -20.7 for random
    and 14.6 for the human reference."""
    tracker = _BallTracker()
    column, top, bottom = 189.0, 47.0, 204.0  # ball x at our paddle; ball y range (RAM units)

    def act(obs: np.ndarray, envs) -> np.ndarray:
        actions = np.zeros(len(obs), dtype=np.int64)
        for i, env in enumerate(envs):
            noop, up, down = _action_ids(env, "NOOP", "RIGHT", "LEFT")
            ram = _ram(env)
            paddle, x, y = int(ram[51]), int(ram[49]), int(ram[54])
            v = tracker.velocity(i, x, y)
            if y == 0:
                actions[i] = noop
                continue
            target = float(y)
            if v is not None and v[0] > 0:  # coming towards us
                target = float(_reflect(y + v[1] * (column - x) / v[0], top, bottom))
            d = target - 7 - paddle  # the ball's centre row is 7 RAM units above our paddle's
            actions[i] = down if d > deadband else up if d < -deadband else noop
        return actions

    return act


class Behavior:
    """A scripted policy mixed with epsilon-uniform-random actions, over a batch of envs.

    With an epsilon range, each env draws a fresh epsilon for every episode (call
    new_episode(i) at its reset), so one dataset holds poor and good play.
    """

    def __init__(
        self,
        spec: PolicySpec,
        action_space: gym.Space,
        n_envs: int,
        seed: int,
        envs: list[gym.Env] | None = None,
    ):
        if spec.policy not in SCRIPTED:
            raise UnknownNameError("behavior policy", spec.policy, list(SCRIPTED))
        self.spec = spec
        self.action_space = action_space
        self.policy = SCRIPTED[spec.policy](action_space, seed, **spec.params)
        self.rng = np.random.default_rng(seed)
        self.envs = envs  # the envs acted on, one per observation row (RAM-reading policies)
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
        greedy = np.asarray(self.policy(obs, self.envs))
        pick = self.rng.random(n) < eps
        return np.where(pick.reshape((n,) + (1,) * (greedy.ndim - 1)), random, greedy).astype(
            greedy.dtype
        )
