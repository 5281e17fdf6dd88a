"""Seeds trained together equal seeds trained alone: for every algorithm, S seeds updated as one
job give the parameters, losses and actions of the same seeds updated one at a time from the
same initial weights and batches; and a seed's evaluation does not depend on its job's seeds.

Tolerance: fp32 on CPU, relative 1e-5 (absolute 1e-7 near zero). Most algorithms match bitwise;
where they do not, the difference is in reductions (softmax and mean kernels vectorize a row
differently depending on where it sits in the tensor), a few ulps that Adam then carries."""

import gymnasium as gym
import numpy as np
import pytest

from bench.algos import REGISTRY
from bench.evaluate import algorithm_returns
from bench.testing import SEEDS, check_seeds_together, make, shapes
from bench.types import EnvSpec

#: Updates before the comparison ends, where 300 is too many: IQL's advantage weights
#: exp(beta (Q - V)) amplify the few ulps its batch means differ by from the first update on,
#: to 2e-5 relative by update ~270 on these random batches.
UPDATES = {"iql": 100}
#: Absolute tolerance of the final weights, where 1e-7 is too tight: the first Adam step moves
#: a weight by lr * g / (|g| + eps), so a near-zero gradient element (IQL's value network: a
#: batch sum that cancels) whose last bits differ moves by up to ~1e-2 lr (lr 3e-4) differently.
PARAM_ATOL = {"iql": 1e-5}
#: Stats that are differences of two learned values of similar size (IQL's advantage Q - V, of
#: values near 1 here): a few ulps of Q or V are a large relative error of their difference, so
#: they are compared with an absolute tolerance of a few ulps of the values subtracted.
DIFFERENCES = {"adv_mean": 1e-6}


def cases():
    for name, cls in sorted(REGISTRY.items()):
        for label, obs_shape, space in shapes(cls):
            atari = len(obs_shape) == 3
            updates, B = (6, 4) if atari else (UPDATES.get(name, 300), 16)
            yield pytest.param(name, obs_shape, space, updates, B, id=f"{name}-{label}")


@pytest.mark.parametrize("name, obs_shape, space, updates, B", list(cases()))
def test_seeds_trained_together_equal_seeds_trained_alone(name, obs_shape, space, updates, B):
    extra = {"actor_delay": "2"} if name == "redq" else {}  # exercise the policy updates
    check_seeds_together(
        name, obs_shape, space, updates, B, PARAM_ATOL.get(name, 1e-7), DIFFERENCES, **extra
    )


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
