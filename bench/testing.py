"""The algorithm contract as checks an algorithm's author runs in their own tests (bench's own
algorithms run them too, tests/algos/). Each check raises AssertionError on a break:

    from bench.testing import check_algorithm
    from my_package.my_algo import MyAlgo

    def test_my_algo_keeps_the_bench_contract():
        check_algorithm(MyAlgo)

check_algorithm runs all of them on small networks and random batches, for every observation
and action kind the algorithm declares: finite [S] stats per update, valid actions for every
seed, a state_dict round trip that restores actions and random streams, kept policies that
reload as candidates, and S seeds trained together equal to the same seeds trained alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import torch

from bench.algos.base import Algorithm, resolve_config
from bench.nets import small_frames
from bench.types import Batch, EnvInfo

DISCRETE = gym.spaces.Discrete(4)
CONTINUOUS = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))
#: Small networks where the config has these fields (the checks need not the paper's sizes).
SMALL = {"hidden_sizes": "32,32", "vae_hidden_sizes": "32,32"}
#: Seeds of the together-versus-alone check (out of order, on purpose).
SEEDS = [3, 0, 11]


#: MinAtar Breakout's observation: 4 object channels on a 10 x 10 grid
MINATAR = (4, 10, 10)


def shapes(cls: type[Algorithm]) -> Iterator[tuple[str, tuple[int, ...], gym.Space]]:
    """(label, observation shape, action space) for every kind of data the algorithm takes:
    vector observations, Atari frames (4 x 84 x 84 uint8) and MinAtar's object channels
    (4 x 10 x 10, Breakout's) with discrete actions."""
    if "discrete" in cls.action_kinds:
        yield "vector-discrete", (6,), DISCRETE
        yield "atari", (4, 84, 84), DISCRETE
        yield "minatar", MINATAR, DISCRETE
    if "continuous" in cls.action_kinds:
        yield "vector-continuous", (5,), CONTINUOUS


def _algorithm(algo: type[Algorithm] | str) -> type[Algorithm]:
    if isinstance(algo, str):
        from bench.algos import get_algorithm

        return get_algorithm(algo)
    return algo


def make(algo: type[Algorithm] | str, obs_shape, space, seeds=(0,), **extra) -> Algorithm:
    """The algorithm (a class or a registered name) with small networks, for these seeds."""
    cls = _algorithm(algo)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    overrides = {k: v for k, v in SMALL.items() if k in fields}
    config = resolve_config(cls, None, overrides | extra)
    return cls(config, EnvInfo(obs_shape=obs_shape, action_space=space), seeds=seeds)


def random_obs(obs_shape, S: int, B: int, g: torch.Generator) -> torch.Tensor:
    if len(obs_shape) == 3 and small_frames(obs_shape):  # MinAtar: object channels of 0 and 1
        return torch.randint(0, 2, (S, B, *obs_shape), generator=g, dtype=torch.uint8)
    if len(obs_shape) == 3:
        return torch.randint(0, 256, (S, B, *obs_shape), generator=g, dtype=torch.uint8)
    return torch.randn(S, B, *obs_shape, generator=g)


def random_batch(obs_shape, space, S: int = 1, B: int = 8, seed: int = 0) -> Batch:
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


def valid_actions(actions: torch.Tensor, space, S: int, N: int) -> bool:
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


def check_update(algo, obs_shape, space, S: int = 3) -> None:
    """update() returns finite stats, one per seed ([S], no gradient), every time."""
    a = make(algo, obs_shape, space, seeds=range(S))
    for step in range(3):
        stats = a.update(random_batch(obs_shape, space, S=S, seed=step))
        assert stats, "update() returned no stats"
        for k, v in stats.items():
            assert isinstance(v, torch.Tensor) and v.shape == (S,), f"stat {k}: not a [S] tensor"
            assert not v.requires_grad, f"stat {k} carries a gradient (detach it)"
            assert bool(torch.isfinite(v).all()), f"stat {k} is not finite: {v}"


def check_act(algo, obs_shape, space, S: int = 3) -> None:
    """act() gives valid actions [S, N] for every seed, sampled and deterministic."""
    a = make(algo, obs_shape, space, seeds=range(S))
    obs = random_obs(obs_shape, S, 5, torch.Generator().manual_seed(1))
    assert valid_actions(a.act(obs), space, S, 5), "act(): invalid actions"
    assert valid_actions(a.act(obs, deterministic=True), space, S, 5), "act(deterministic)"


def check_save_load(algo, obs_shape, space) -> None:
    """load_state_dict(state_dict()) restores acting, random streams and the next update."""
    a = make(algo, obs_shape, space, seeds=[0, 1])
    for step in range(2):
        a.update(random_batch(obs_shape, space, S=2, seed=step))
    b = make(algo, obs_shape, space, seeds=[0, 1])
    b.update(random_batch(obs_shape, space, S=2, seed=7))  # b's state differs, then is replaced
    b.load_state_dict(a.state_dict())
    obs = random_obs(obs_shape, 2, 6, torch.Generator().manual_seed(2))
    assert torch.equal(a.act(obs, deterministic=True), b.act(obs, deterministic=True))
    assert torch.equal(a.act(obs), b.act(obs)), "random streams not restored"
    sa = a.update(random_batch(obs_shape, space, S=2, seed=9))
    sb = b.update(random_batch(obs_shape, space, S=2, seed=9))
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def check_kept_policies(algo, obs_shape, space) -> None:
    """What a run keeps per evaluation (acting and Q networks, no optimizer) reloads with the
    candidates as members, in any order, and acts and values exactly as the trained seeds."""
    from bench.run.policies import _kept_state, load_policies
    from bench.seeding import split_seeds

    a = make(algo, obs_shape, space, seeds=[0, 1])
    for step in range(2):
        a.update(random_batch(obs_shape, space, S=2, seed=step))
    kept = split_seeds(_kept_state(a), 2)
    assert all("optimizers" not in k and not any("target" in m for m in k["modules"]) for k in kept)
    # candidates in another order than the seeds (seeded as the swapped seeds: BCQ's
    # deterministic acting draws its sampled actions from a fixed stream per seed)
    b = make(algo, obs_shape, space, seeds=[1, 0])
    load_policies(b, [kept[1], kept[0]])
    obs = random_obs(obs_shape, 2, 6, torch.Generator().manual_seed(2))
    swapped = obs.flip(0)
    assert torch.equal(a.act(obs, deterministic=True).flip(0), b.act(swapped, deterministic=True))
    act = a.act(obs, deterministic=True)
    q = a.q_value(obs, act)
    if q is None:  # no Q estimate of its own (behavior cloning)
        assert b.q_value(swapped, act.flip(0)) is None
        return
    assert q.shape == (2, 6) and bool(torch.isfinite(q).all())
    q_b = b.q_value(swapped, act.flip(0))
    assert q_b is not None and torch.allclose(q.flip(0), q_b)


def seed_slice(batch: Batch, s: int) -> Batch:
    return batch.map(lambda v: v[s : s + 1])


def close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-7) -> bool:
    return torch.allclose(a.float(), b.float(), rtol=1e-5, atol=atol)


def check_seeds_together(
    algo,
    obs_shape,
    space,
    updates: int = 300,
    B: int = 16,
    param_atol: float = 1e-7,
    stat_atol: dict | None = None,
    **extra,
) -> None:
    """S seeds updated as one job give the parameters, stats and actions of the same seeds
    updated one at a time from the same initial weights and batches (fp32 on CPU: relative
    1e-5, absolute 1e-7 near zero unless given; stat_atol: per-stat absolute tolerances)."""
    stat_atol = stat_atol or {}
    job = make(algo, obs_shape, space, seeds=SEEDS, **extra)
    alone = [make(algo, obs_shape, space, seeds=[s], **extra) for s in SEEDS]
    # the same initial weights: each seed's from its own seed alone
    for mod_name, module in job.modules().items():
        for key, p in module.state_dict().items():
            for s, a in enumerate(alone):
                assert torch.equal(p[s], a.modules()[mod_name].state_dict()[key][0]), key
    for step in range(updates):
        batch = random_batch(obs_shape, space, S=len(SEEDS), B=B, seed=step)
        stats = job.update(batch)
        for s, a in enumerate(alone):
            single = a.update(seed_slice(batch, s))
            assert all(close(stats[k][s], single[k][0], stat_atol.get(k, 1e-7)) for k in stats), (
                step,
                s,
            )
    for mod_name, module in job.modules().items():
        for key, p in module.state_dict().items():
            for s, a in enumerate(alone):
                q = a.modules()[mod_name].state_dict()[key][0]
                assert close(p[s], q, param_atol), (mod_name, key)
    obs = random_obs(obs_shape, len(SEEDS), 5, torch.Generator().manual_seed(99))
    for deterministic in (True, False):
        actions = job.act(obs, deterministic=deterministic)
        for s, a in enumerate(alone):
            assert close(actions[s], a.act(obs[s : s + 1], deterministic=deterministic)[0])


def check_algorithm(algo: type[Algorithm] | str, updates: int = 50) -> None:
    """Every check, on every kind of data the algorithm declares (updates: of the
    together-versus-alone check on vector data; Atari frames get 6)."""
    cls = _algorithm(algo)
    assert isinstance(cls.name, str) and cls.name, "the class needs a name"
    resolve_config(cls)  # the reference defaults are valid
    assert "gamma" in {f.name for f in dataclasses.fields(cls.Config)}, "its Config needs gamma"
    for _, obs_shape, space in shapes(cls):
        gamma, n, _ = make(cls, obs_shape, space).nstep()  # what the loop asks before training
        assert 0 <= gamma <= 1 and n >= 1, f"nstep() gives gamma {gamma}, estimation_step {n}"
        check_update(cls, obs_shape, space, S=1)
        check_update(cls, obs_shape, space, S=3)
        check_act(cls, obs_shape, space)
        check_save_load(cls, obs_shape, space)
        check_kept_policies(cls, obs_shape, space)
        if len(obs_shape) == 3:
            check_seeds_together(cls, obs_shape, space, updates=6, B=4)
        else:
            check_seeds_together(cls, obs_shape, space, updates=updates)
