"""Behavior policies that collect datasets: scripted controllers, mixed with epsilon-random actions.

A behavior acts on a batch of observations (numpy, [n, *obs_shape]) and returns a batch of
actions, so the same object drives one collecting env or a vector of evaluation envs. Policies
that read the emulator's RAM (the Atari ones) are also given the envs themselves, one per row.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import bench.seeding as seeding
from bench.data.cards import PolicySpec
from bench.errors import DatasetError, UnknownNameError

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


@scripted("mountaincar_energy")
def _mountaincar_energy(action_space: gym.Space, seed: int, sign: int = 1):
    """Pump energy: push in the direction of the car's velocity (sign 1), reaching the flag in
    about 120 steps from any start. sign -1 pushes against it, a deliberately wrong controller
    that damps every swing and never leaves the valley."""
    if sign not in (1, -1):
        raise ValueError(f"mountaincar_energy: sign must be 1 or -1, got {sign}")

    def act(obs: np.ndarray, envs=None) -> np.ndarray:
        right = sign * obs[:, 1] >= 0  # obs = [position, velocity]; actions 0 left, 2 right
        return np.where(right, 2, 0).astype(np.int64)

    return act


@scripted("checkpoint")
def _checkpoint(
    action_space: gym.Space,
    seed: int,
    file: str,
    mode: str = "sample",
    *,
    locate: Callable[[str], Path],
    noise: np.random.Generator | None = None,
):
    """A learned policy shipped as a file (saved by `bench behavior train`), named relative to
    the card's folder. mode "sample" draws from the stochastic policy (as D4RL's behaviors
    did), "deterministic" acts with its mean (tanh(mu), or the most probable action). It acts
    through ExactPolicy: float64 networks, numpy noise, actions on a grid, so every CPU builds
    the same dataset."""
    from bench.collect.exact import ExactPolicy
    from bench.collect.online import load_policy

    if mode not in ("sample", "deterministic"):
        raise DatasetError(
            f"behavior 'checkpoint': mode must be sample or deterministic, got {mode!r}"
        )
    path = locate(file)  # inside the card's folder or the package's (bench.data.cards)
    policy = ExactPolicy(
        load_policy(path, seed=seed),
        mode == "deterministic",
        noise if noise is not None else seeding.rng("behavior_noise", seed),
    )

    def act(obs: np.ndarray, envs=None) -> np.ndarray:
        return policy(obs)

    return act


def _ram(env: gym.Env) -> np.ndarray:
    return env.unwrapped.ale.getRAM()  # type: ignore[attr-defined]  # an ALE env


def _action_ids(env: gym.Env, *names: str) -> list[int]:
    meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]  # an ALE env
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


def _minatar_clone(game, rng: np.random.RandomState):
    """A copy of a MinAtar game (minatar.Environment) to simulate on, its own state copied and
    every random draw (sticky actions, spawns) taken from rng instead of the game's stream: the
    copy plays one sampled future, and the real game's stream is not touched."""
    g = copy.copy(game)
    g.env = inner = copy.copy(game.env)
    g.random = inner.random = rng
    for k, v in vars(inner).items():
        if isinstance(v, np.ndarray):
            setattr(inner, k, v.copy())
        elif isinstance(v, list) and k != "action_map":  # objects: lists of [x, y, ...]
            setattr(inner, k, copy.deepcopy(v))
    return g


#: Potentials for minatar_planner: name -> (the MinAtar game whose state it reads, phi of that
#: state, minatar.environments.<game>.Env), progress the planner cannot see as reward within its
#: horizon.
POTENTIALS: dict[str, tuple[str, Callable[[Any], float]]] = {
    # Freeway: the chicken's height (row 9 at the bottom, a point for reaching row 0)
    "freeway_height": ("freeway", lambda env: (9 - env.pos) / 10),
    # Breakout: the paddle under the ball (MinAtar's ball moves one cell a step, as the paddle)
    "breakout_under_ball": ("breakout", lambda env: -abs(env.pos - env.ball_x) / 10),
    # Seaquest: divers aboard (surfacing with none ends the episode; with six, a bonus)
    "seaquest_divers": ("seaquest", lambda env: env.diver_count / 2),
}


@scripted("minatar_planner")
def _minatar_planner(
    action_space: gym.Space,
    seed: int,
    horizon: int = 10,
    holds: tuple[int, ...] | list[int] = (1, 3, 6, 10),
    discount: float = 0.95,
    death: float = 10.0,
    sign: int = 1,
    then: int = 0,
    potential: str | None = None,
):
    """A MinAtar game played by lookahead on a copy of its state: for every action a and hold
    length k, simulate a for k steps then the action `then` (MinAtar's action index: 0 NOOP, 5
    FIRE) up to `horizon` steps, and take the first action of the best plan, whose value is
    sum_t discount^t r_t - discount^T death [the episode ended at step T] + discount^T phi(last
    state), phi the named `potential` (POTENTIALS; none by default, its game's only) where
    reward lies beyond the horizon. Every plan of a step draws its random numbers (sticky
    actions, spawns) from one stream seeded alike from the step's draw, not from the game's, so
    plans differ by their actions (and by where the game draws only in some states); ties go to
    the lowest action index. It reads the game's state as MinAtar keeps it (the objects behind
    the channels), like the Atari behaviors read the emulator's RAM.

    sign -1 is the deliberately wrong twin: it ranks plans by minus that value, so it avoids
    reward and seeks the episode's end."""
    if sign not in (1, -1):
        raise ValueError(f"minatar_planner: sign must be 1 or -1, got {sign}")
    if not (isinstance(horizon, int) and horizon >= 1):
        raise ValueError(f"minatar_planner: horizon must be an integer >= 1, got {horizon!r}")
    if not isinstance(holds, list | tuple) or not holds:
        raise ValueError(f"minatar_planner: holds must be a list of integers >= 1, got {holds!r}")
    if not all(isinstance(k, int) and k >= 1 for k in holds):
        raise ValueError(f"minatar_planner: holds must be integers >= 1, got {holds!r}")
    if not (isinstance(then, int) and not isinstance(then, bool) and 0 <= then <= 5):
        raise ValueError(f"minatar_planner: then must be a MinAtar action 0-5, got {then!r}")
    if not all(isinstance(x, int | float) and math.isfinite(x) for x in (discount, death)):
        raise ValueError("minatar_planner: discount and death must be finite numbers")
    if potential is not None and (not isinstance(potential, str) or potential not in POTENTIALS):
        raise ValueError(
            f"minatar_planner: unknown potential {potential!r}; known: {sorted(POTENTIALS)}"
        )
    phi_game, phi = POTENTIALS[potential] if potential is not None else (None, None)
    # each step's sampled future: a draw of the card's build stream (numpy's default_rng(seed),
    # the stream the behavior's epsilon and mixture draws also start from)
    draws = seeding.rng("build", seed)
    sim = np.random.RandomState(0)  # reseeded for every plan, from the step's draw

    def plan_value(game, first: int, hold: int, future: int) -> float:
        g = _minatar_clone(game, seeding.reseed_legacy(sim, future))
        value, scale = 0.0, 1.0
        for t in range(horizon):
            reward, done = g.act(first if t < hold else then)
            value += scale * reward
            if done:
                value -= scale * death
                break
            scale *= discount
        if phi is not None:
            value += scale * phi(g.env)
        return sign * value

    def act(obs: np.ndarray, envs) -> np.ndarray:
        actions = np.zeros(len(obs), dtype=np.int64)
        for i, env in enumerate(envs):
            game = getattr(env.unwrapped, "game", None)
            if game is None or not hasattr(game, "env_name"):
                raise DatasetError(
                    f"behavior minatar_planner plays MinAtar envs, not {env.spec.id}"
                )
            if phi_game is not None and phi_game != game.env_name:
                raise DatasetError(
                    f"behavior minatar_planner: potential {potential!r} reads "
                    f"{phi_game}'s state, not {game.env_name}'s"
                )
            action_set = env.unwrapped.action_set
            future = int(draws.integers(2**31))
            values = [max(plan_value(game, a, k, future) for k in holds) for a in action_set]
            actions[i] = int(np.argmax(values))
        return actions

    act.only_its_rows = True  # type: ignore[attr-defined]  # see Behavior._component_actions
    return act


#: A behavior that draws, for every episode, one of several policies (policy = "mixture",
#: params = {components = [{policy, epsilon, params}, ...], weights = [...]}).
MIXTURE = "mixture"


def mixture_components(spec: PolicySpec) -> tuple[list[PolicySpec], np.ndarray]:
    """The component policies of a mixture spec and their probabilities (weights normalized)."""
    from bench.data.cards import _policy

    comps = spec.params.get("components")
    if not isinstance(comps, list) or not comps or not all(isinstance(c, dict) for c in comps):
        raise DatasetError("behavior 'mixture' needs params.components, a list of policies")
    specs = [_policy(c, "behavior mixture") for c in comps]
    if any(c.policy == MIXTURE for c in specs):
        raise DatasetError("behavior 'mixture': a component cannot be a mixture")
    raw = spec.params.get("weights", [1.0] * len(specs))
    numbers = (
        isinstance(raw, list)
        and len(raw) == len(specs)
        and all(
            isinstance(w, int | float) and not isinstance(w, bool) and 0 <= w < math.inf
            for w in raw
        )
    )
    if not numbers or sum(raw) <= 0:
        raise DatasetError(
            "behavior 'mixture': weights must be one non-negative number per "
            f"component, not all 0; got {raw!r}"
        )
    weights = np.asarray(raw, dtype=np.float64)
    return specs, weights / weights.sum()


class Behavior:
    """A scripted policy mixed with epsilon-uniform-random actions, over a batch of envs.

    With an epsilon range, each env draws a fresh epsilon for every episode (call
    new_episode(i) at its reset), so one dataset holds poor and good play. A mixture draws,
    for every episode, one of its component policies (each with its own epsilon) by weight.
    """

    def __init__(
        self,
        spec: PolicySpec,
        action_space: gym.Space,
        n_envs: int,
        seed: int,
        envs: list[gym.Env] | None = None,
        purpose: str = "build",
        locate: Callable[[str], Path] | None = None,
    ):
        """seed: the card's build seed; purpose: "build" (collecting the dataset) or "refs"
        (measuring reference returns): each draws its own streams (bench.seeding). locate
        finds a file a component names (its card's folder)."""
        if spec.policy == MIXTURE:
            self.components, self.weights = mixture_components(spec)
        else:
            self.components, self.weights = [spec], np.ones(1)
        for c in self.components:
            if c.policy not in SCRIPTED:
                raise UnknownNameError("behavior policy", c.policy, [*SCRIPTED, MIXTURE])
        self.spec = spec
        self.action_space = action_space
        code = seeding.PURPOSES.index(purpose)
        self.policies: list[Callable[..., np.ndarray]] = []
        for i, c in enumerate(self.components):
            extra = {}
            if c.policy == "checkpoint":
                extra = {"locate": locate, "noise": seeding.rng("behavior_noise", seed, code, i)}
            try:
                self.policies.append(SCRIPTED[c.policy](action_space, seed, **c.params, **extra))
            except (TypeError, ValueError) as e:  # a card's parameters, wrong in kind or value
                why = str(e).removeprefix(f"{c.policy}: ")
                why = re.sub(
                    r"^\w+\(\) got an unexpected keyword argument", "unknown parameter", why
                )
                raise DatasetError(f"behavior {c.policy!r}: {why}") from None
        # epsilon and mixture draws: for a build, numpy's default_rng(card seed), as always
        self.rng = seeding.rng(purpose, seed)
        self.envs = envs  # the envs acted on, one per observation row (RAM-reading policies)
        self.eps = np.zeros(n_envs)
        self.component = np.zeros(n_envs, dtype=np.int64)  # each env's policy this episode
        for i in range(n_envs):
            self.new_episode(i)

    def new_episode(self, i: int) -> None:
        if len(self.components) > 1:  # a single policy draws nothing here (older builds)
            self.component[i] = self.rng.choice(len(self.components), p=self.weights)
        e = self.components[self.component[i]].epsilon
        self.eps[i] = self.rng.uniform(min(e), max(e)) if isinstance(e, tuple) else e

    def _random_actions(self, n: int) -> np.ndarray:
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            return space.start + self.rng.integers(space.n, size=n)
        assert isinstance(space, gym.spaces.Box)
        low, high = space.low, space.high
        return self.rng.uniform(low, high, size=(n, *space.shape)).astype(space.dtype)

    def _component_actions(self, obs: np.ndarray, random: np.ndarray) -> np.ndarray:
        """Every component acts on every row (their streams advance as they always have), but
        one marked only_its_rows (a costly one: minatar_planner) only on the rows playing it."""
        n = len(obs)
        acts = []
        for k, (c, pol) in enumerate(zip(self.components, self.policies, strict=True)):
            if c.policy == "random":
                acts.append(random)
                continue
            if getattr(pol, "only_its_rows", False):
                mine = np.flatnonzero(self.component[:n] == k)
                out = np.zeros_like(random)
                if len(mine):
                    envs = None if self.envs is None else [self.envs[j] for j in mine]
                    out[mine] = np.asarray(pol(obs[mine], envs))
                acts.append(out)
            else:
                acts.append(np.asarray(pol(obs, self.envs)))
        return np.stack(acts)[self.component[:n], np.arange(n)]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        n = len(obs)
        eps = self.eps[:n]
        random = self._random_actions(n)
        if np.all(eps >= 1.0):
            return random
        if len(self.policies) == 1:
            greedy = np.asarray(self.policies[0](obs, self.envs))
        else:  # each row keeps its episode's component
            greedy = self._component_actions(obs, random)
        pick = self.rng.random(n) < eps
        return np.where(pick.reshape((n,) + (1,) * (greedy.ndim - 1)), random, greedy).astype(
            greedy.dtype
        )
