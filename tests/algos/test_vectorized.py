"""Seeds trained together equal seeds trained alone: for every algorithm, S seeds updated as one
job give the parameters, losses and actions of the same seeds updated one at a time from the
same initial weights and batches; and a seed's evaluation does not depend on its job's seeds.

Tolerance: fp32 on CPU, relative 1e-5 (absolute 1e-7 near zero). Most algorithms match bitwise;
where they do not, the difference is in reductions (softmax and mean kernels vectorize a row
differently depending on where it sits in the tensor), a few ulps that Adam then carries."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from bench.algos import REGISTRY
from bench.evaluate import algorithm_returns
from bench.types import Batch, EnvSpec
from tests.algos.test_contract import make, random_batch, random_obs

DISCRETE = gym.spaces.Discrete(4)
CONTINUOUS = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))
SEEDS = [3, 0, 11]


def cases():
    for name, cls in sorted(REGISTRY.items()):
        if "discrete" in cls.action_kinds:
            yield pytest.param(name, (6,), DISCRETE, 300, 16, id=f"{name}-vector")
            yield pytest.param(name, (4, 84, 84), DISCRETE, 6, 4, id=f"{name}-atari")
        if "continuous" in cls.action_kinds:
            yield pytest.param(name, (5,), CONTINUOUS, 300, 16, id=f"{name}-vector")


def seed_slice(batch: Batch, s: int) -> Batch:
    return Batch(**{k: None if v is None else v[s : s + 1] for k, v in vars(batch).items()})


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name, obs_shape, space, updates, B", list(cases()))
def test_seeds_trained_together_equal_seeds_trained_alone(name, obs_shape, space, updates, B):
    extra = {"actor_delay": "2"} if name == "redq" else {}  # exercise the policy updates
    job = make(name, obs_shape, space, seeds=SEEDS, **extra)
    alone = [make(name, obs_shape, space, seeds=[s], **extra) for s in SEEDS]
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
            assert all(close(stats[k][s], single[k][0]) for k in stats), (step, s)
    for mod_name, module in job.modules().items():
        for key, p in module.state_dict().items():
            for s, a in enumerate(alone):
                assert close(p[s], a.modules()[mod_name].state_dict()[key][0]), (mod_name, key)
    obs = random_obs(obs_shape, len(SEEDS), 5, torch.Generator().manual_seed(99))
    for deterministic in (True, False):
        actions = job.act(obs, deterministic=deterministic)
        for s, a in enumerate(alone):
            assert close(actions[s], a.act(obs[s : s + 1], deterministic=deterministic)[0])


@pytest.mark.parametrize(
    "name, overrides",
    [("discrete_bcq", {"eval_eps": "0.3"}), ("discrete_sac", {"deterministic_eval": "false"})],
)
def test_a_seeds_evaluation_does_not_depend_on_its_job(name, overrides):
    """Acting noise and env seeds are per seed: seed s's returns in a job of three equal its
    returns alone, although the other seeds' episodes end at other times."""
    space = gym.spaces.Discrete(2)
    job = make(name, (4,), space, seeds=SEEDS, **overrides)
    alone = [make(name, (4,), space, seeds=[s], **overrides) for s in SEEDS]
    env = EnvSpec("CartPole-v1")
    bases = [1000 * s for s in SEEDS]
    job.act_rng.reseed("eval", 1)
    together = algorithm_returns(job, env, 4, bases)
    assert together.shape == (3, 4)
    for s, a in enumerate(alone):
        a.act_rng.reseed("eval", 1)
        assert np.array_equal(together[s], algorithm_returns(a, env, 4, [bases[s]])[0])
