"""The contract every registered algorithm keeps, on vector and (discrete) image observations."""

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


def make(name, obs_shape, space, seeds=(0,), **extra):
    cls = REGISTRY[name]
    overrides = {k: v for k, v in SMALL.items() if k in cls.Config.__dataclass_fields__}
    if "forward_sampled_times" in cls.Config.__dataclass_fields__:
        overrides["vae_hidden_sizes"] = "32,32"
    config = resolve_config(cls, None, overrides | extra)
    return cls(config, EnvInfo(obs_shape=obs_shape, action_space=space), seeds=seeds)


def random_obs(obs_shape, S, B, g):
    if len(obs_shape) == 3:
        return torch.randint(0, 256, (S, B, *obs_shape), generator=g, dtype=torch.uint8)
    return torch.randn(S, B, *obs_shape, generator=g)


def random_batch(obs_shape, space, S=1, B=8, seed=0):
    """A batch [S, B, ...] of random transitions."""
    g = torch.Generator().manual_seed(seed)
    if isinstance(space, gym.spaces.Discrete):
        act = torch.randint(space.n, (S, B), generator=g)
    else:
        low, high = torch.tensor(space.low), torch.tensor(space.high)
        act = low + (high - low) * torch.rand(S, B, *space.shape, generator=g)
    return Batch(
        obs=random_obs(obs_shape, S, B, g),
        act=act,
        ret=torch.randn(S, B, generator=g),
        next_obs=random_obs(obs_shape, S, B, g),
        discount=torch.full((S, B), 0.99),
    )


def valid_actions(actions, space, S, N):
    if isinstance(space, gym.spaces.Discrete):
        return (
            actions.shape == (S, N)
            and actions.dtype == torch.long
            and bool(((actions >= 0) & (actions < space.n)).all())
        )
    low, high = torch.tensor(space.low), torch.tensor(space.high)
    return actions.shape == (S, N, *space.shape) and bool(
        ((actions >= low) & (actions <= high)).all()
    )


@pytest.mark.parametrize("S", [1, 3])
@pytest.mark.parametrize("name, obs_shape, space", list(cases()))
def test_update_gives_finite_stats_per_seed(name, obs_shape, space, S):
    algo = make(name, obs_shape, space, seeds=range(S))
    for step in range(3):
        stats = algo.update(random_batch(obs_shape, space, S=S, seed=step))
        assert stats
        for v in stats.values():
            assert isinstance(v, torch.Tensor) and v.shape == (S,) and not v.requires_grad
            assert bool(torch.isfinite(v).all())


@pytest.mark.parametrize("S", [1, 3])
@pytest.mark.parametrize("name, obs_shape, space", list(cases()))
def test_act_gives_valid_actions_for_every_seed(name, obs_shape, space, S):
    algo = make(name, obs_shape, space, seeds=range(S))
    obs = random_obs(obs_shape, S, 5, torch.Generator().manual_seed(1))
    assert valid_actions(algo.act(obs), space, S, 5)
    assert valid_actions(algo.act(obs, deterministic=True), space, S, 5)


@pytest.mark.parametrize("name, obs_shape, space", list(cases()))
def test_save_load_round_trip_gives_identical_actions(name, obs_shape, space):
    a = make(name, obs_shape, space, seeds=[0, 1])
    for step in range(2):
        a.update(random_batch(obs_shape, space, S=2, seed=step))
    b = make(name, obs_shape, space, seeds=[0, 1])
    b.update(random_batch(obs_shape, space, S=2, seed=7))  # b's state differs, then is replaced
    b.load_state_dict(a.state_dict())
    obs = random_obs(obs_shape, 2, 6, torch.Generator().manual_seed(2))
    assert torch.equal(a.act(obs, deterministic=True), b.act(obs, deterministic=True))
    assert torch.equal(a.act(obs), b.act(obs))  # random streams included
    sa = a.update(random_batch(obs_shape, space, S=2, seed=9))
    sb = b.update(random_batch(obs_shape, space, S=2, seed=9))
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_slug_matches_file_and_defaults_validate(name):
    cls = REGISTRY[name]
    assert cls.__module__ == f"bench.algos.{name}"
    resolve_config(cls)  # reference defaults are valid


@pytest.mark.parametrize("name, obs_shape, space", list(cases()))
def test_kept_policies_load_as_candidates_with_the_same_actions_and_q(name, obs_shape, space):
    """What a run keeps per evaluation (acting and Q networks, no optimizer) reloads with the
    candidates as members, in any order, and acts and values exactly as the trained seeds."""
    from bench.run.policies import _kept_state, load_policies
    from bench.seeding import split_seeds

    a = make(name, obs_shape, space, seeds=[0, 1])
    for step in range(2):
        a.update(random_batch(obs_shape, space, S=2, seed=step))
    kept = split_seeds(_kept_state(a), 2)
    assert all("optimizers" not in k and not any("target" in m for m in k["modules"])
               for k in kept)  # fmt: skip
    # candidates in another order than the seeds (seeded as the swapped seeds: BCQ's
    # deterministic acting draws its sampled actions from a fixed stream per seed)
    b = make(name, obs_shape, space, seeds=[1, 0])
    load_policies(b, [kept[1], kept[0]])
    obs = random_obs(obs_shape, 2, 6, torch.Generator().manual_seed(2))
    swapped = obs.flip(0)
    assert torch.equal(a.act(obs, deterministic=True).flip(0), b.act(swapped, deterministic=True))
    act = a.act(obs, deterministic=True)
    q = a.q_value(obs, act)
    if name == "bc":
        assert q is None
        return
    assert q.shape == (2, 6) and bool(torch.isfinite(q).all())
    assert torch.allclose(q.flip(0), b.q_value(swapped, act.flip(0)))
