"""The contract every registered algorithm keeps, on vector and (discrete) image observations."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from bench.algos import REGISTRY
from bench.algos.base import resolve_config
from bench.types import Batch, EnvInfo

DISCRETE = gym.spaces.Discrete(4)
CONTINUOUS = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))
SMALL = {"hidden_sizes": "32,32"}


def cases():
    for name, cls in sorted(REGISTRY.items()):
        if "discrete" in cls.action_kinds:
            yield pytest.param(name, (6,), DISCRETE, id=f"{name}-vector-discrete")
            yield pytest.param(name, (4, 84, 84), DISCRETE, id=f"{name}-atari")
        if "continuous" in cls.action_kinds:
            yield pytest.param(name, (5,), CONTINUOUS, id=f"{name}-vector-continuous")


def make(name, obs_shape, space, seed=0):
    cls = REGISTRY[name]
    overrides = {k: v for k, v in SMALL.items() if k in cls.Config.__dataclass_fields__}
    if "forward_sampled_times" in cls.Config.__dataclass_fields__:
        overrides["vae_hidden_sizes"] = "32,32"
    config = resolve_config(cls, None, overrides)
    return cls(config, EnvInfo(obs_shape=obs_shape, action_space=space), seed=seed)


def random_obs(obs_shape, B, g):
    if len(obs_shape) == 3:
        return torch.randint(0, 256, (B, *obs_shape), generator=g, dtype=torch.uint8)
    return torch.randn(B, *obs_shape, generator=g)


def random_batch(obs_shape, space, B=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    if isinstance(space, gym.spaces.Discrete):
        act = torch.randint(space.n, (B,), generator=g)
    else:
        low, high = torch.tensor(space.low), torch.tensor(space.high)
        act = low + (high - low) * torch.rand(B, *space.shape, generator=g)
    return Batch(
        obs=random_obs(obs_shape, B, g),
        act=act,
        ret=torch.randn(B, generator=g),
        next_obs=random_obs(obs_shape, B, g),
        discount=torch.full((B,), 0.99),
    )


def valid_actions(actions, space, B):
    if isinstance(space, gym.spaces.Discrete):
        return (
            actions.shape == (B,)
            and actions.dtype == torch.long
            and bool(((actions >= 0) & (actions < space.n)).all())
        )
    low, high = torch.tensor(space.low), torch.tensor(space.high)
    return actions.shape == (B, *space.shape) and bool(((actions >= low) & (actions <= high)).all())


@pytest.mark.parametrize("name, obs_shape, space", list(cases()))
def test_update_gives_finite_float_stats(name, obs_shape, space):
    algo = make(name, obs_shape, space)
    for step in range(3):
        stats = algo.update(random_batch(obs_shape, space, seed=step))
        assert stats and all(isinstance(v, float) and math.isfinite(v) for v in stats.values())


@pytest.mark.parametrize("name, obs_shape, space", list(cases()))
def test_act_gives_valid_actions_for_a_batch(name, obs_shape, space):
    algo = make(name, obs_shape, space)
    obs = random_obs(obs_shape, 5, torch.Generator().manual_seed(1))
    assert valid_actions(algo.act(obs), space, 5)
    assert valid_actions(algo.act(obs, deterministic=True), space, 5)


@pytest.mark.parametrize("name, obs_shape, space", list(cases()))
def test_save_load_round_trip_gives_identical_actions(name, obs_shape, space):
    a = make(name, obs_shape, space, seed=0)
    for step in range(2):
        a.update(random_batch(obs_shape, space, seed=step))
    b = make(name, obs_shape, space, seed=123)
    b.load_state_dict(a.state_dict())
    obs = random_obs(obs_shape, 6, torch.Generator().manual_seed(2))
    assert torch.equal(a.act(obs, deterministic=True), b.act(obs, deterministic=True))
    assert torch.equal(a.act(obs), b.act(obs))  # RNG state included
    sa = a.update(random_batch(obs_shape, space, seed=9))
    sb = b.update(random_batch(obs_shape, space, seed=9))
    assert sa == sb


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_slug_matches_file_and_defaults_validate(name):
    cls = REGISTRY[name]
    assert cls.__module__ == f"bench.algos.{name}"
    resolve_config(cls)  # reference defaults are valid
