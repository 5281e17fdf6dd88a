"""Estimators against values known in closed form, on a chain MDP written as a dataset."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from bench.data.data import OfflineData
from bench.ope import proxies
from bench.ope.candidates import initial_rows
from bench.ope.fqe import FQE, FQEConfig
from bench.stats.selection import (
    expected_random_regret,
    rank_correlation,
    regret_at_k,
    seed_metrics,
)
from bench.types import EnvInfo
from tests.ope.chain import INFO, chain_data, q_table, state_of_rows, v_right, v_stay

GAMMA = 0.8


def both_policies(data):
    """Actions of (always right, always stay) at every obs row: [2, n_obs]."""
    n = data.obs.shape[0]
    return torch.stack([torch.ones(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)])


@pytest.mark.parametrize("loss", ["mse", "huber"])
def test_fqe_matches_the_exact_discounted_values_to_one_percent(loss):
    """The chain is deterministic, so both losses have the policy's value as their fixed point."""
    data = chain_data()
    pi = both_policies(data)
    config = FQEConfig(
        gamma=GAMMA,
        lr=1e-3,
        batch_size=256,
        target_update_interval=20,
        hidden_sizes=(64, 64),
        steps=2000,
        loss=loss,
    )
    fqe = FQE(config, data, INFO, "cpu", [0, 1])
    fqe.fit(pi)
    est = fqe.estimate(initial_rows(data), pi).numpy()
    exact = np.array([v_right(GAMMA), v_stay(GAMMA)])  # 0.46 and -0.5
    assert np.all(np.abs(est - exact) <= 0.01 * np.abs(exact)), (est, exact)


def test_fqe_of_candidates_together_equals_one_at_a_time():
    data = chain_data(episodes=40)
    pi = both_policies(data)
    config = FQEConfig(gamma=GAMMA, steps=150, hidden_sizes=(16, 16), target_update_interval=10)
    together = FQE(config, data, INFO, "cpu", [0, 1])
    together.fit(pi)
    s0 = initial_rows(data)
    stacked = together.estimate(s0, pi)
    for i in (0, 1):
        alone = FQE(config, data, INFO, "cpu", [i])
        alone.fit(pi[i : i + 1])
        assert torch.allclose(alone.estimate(s0, pi[i : i + 1])[0], stacked[i], atol=1e-5)
    other_seed = FQE(FQEConfig(**{**config.__dict__, "seed": 1}), data, INFO, "cpu", [0, 1])
    other_seed.fit(pi)
    assert not torch.equal(other_seed.estimate(s0, pi), stacked)  # the seed is used


def test_initial_rows_are_the_first_observation_of_every_episode():
    data = chain_data(episodes=30)
    rows = initial_rows(data)
    assert len(rows) == data.num_episodes == 30
    assert bool((state_of_rows(data)[rows] == 0).all())


class TabularPolicies:
    """Two hand-built candidates as an algorithm's members: member 0 always moves right,
    member 1 always stays; q_value reads the given Q tables [2, 4, 2]."""

    def __init__(self, q):
        self.q = torch.as_tensor(q, dtype=torch.float32)
        self.num_seeds = 2
        self.info = INFO

    def nstep(self):
        return GAMMA, 1, False

    def act(self, obs, mask=None, deterministic=False):
        n = obs.shape[1]
        return torch.stack([torch.ones(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)])

    def q_value(self, obs, act):
        s = obs.argmax(-1)  # [2, N]
        return self.q[torch.arange(2)[:, None], s, act]


def test_q0_is_the_algorithms_value_at_the_initial_states():
    data = chain_data()
    est = proxies.q0(TabularPolicies(q_table(GAMMA)), data, initial_rows(data))
    assert torch.allclose(est, torch.tensor([v_right(GAMMA), v_stay(GAMMA)]).float(), atol=1e-5)
    assert est[0] > est[1]  # ranks the better policy first


def test_td_is_zero_for_an_exact_q_and_ranks_it_above_a_wrong_one():
    data = chain_data()
    q = q_table(GAMMA)
    q[1] += 0.5  # the second candidate's Q is off by a constant: its TD errors are not 0
    est = proxies.td(TabularPolicies(q), data, proxies.sample_transitions(data))
    assert abs(float(est[0])) < 1e-8 and est[1] < -1e-3


def test_likelihood_ranks_the_policy_the_data_follows_first():
    data = chain_data(p_right=0.9)
    est = proxies.likelihood(TabularPolicies(q_table(GAMMA)), data, torch.arange(len(data)))
    assert est[0] > 0.8 > 0.2 > est[1]


def test_regret_and_rank_correlation_by_hand():
    true = np.array([10.0, 50.0, 30.0, 40.0])
    steps = np.array([1, 2, 3, 4])
    est = np.array([0.0, 1.0, 3.0, 2.0])  # picks candidate 2 (30), then 3 (40), then 1 (50)
    assert regret_at_k(est, true, steps, 1) == 20.0
    assert regret_at_k(est, true, steps, 2) == 10.0
    assert regret_at_k(est, true, steps, 3) == 0.0
    assert rank_correlation(est, true) == pytest.approx(0.2)  # 1 - 6 * 8 / (4 * 15)
    assert np.isnan(rank_correlation(np.zeros(4), true))  # a constant estimate ranks nothing
    # ties go to the later checkpoint
    assert regret_at_k(np.zeros(4), true, steps, 1) == 10.0
    # random: E[regret@1] = max - mean; E[regret@3] over the 4 subsets of 3
    assert expected_random_regret(true, 1) == pytest.approx(50 - 32.5)
    subsets_best = [50, 50, 50, 40]  # without 50 only {10, 30, 40}
    assert expected_random_regret(true, 3) == pytest.approx(50 - np.mean(subsets_best))
    m = seed_metrics("fqe", est, true, steps, np.array([1.0, 3.0]))
    assert m["picked_score"] == 30.0 and m["abs_error"] == 2.0


def random_episodes(frame_shape, act_space, episodes=3, length=6, seed=0):
    """Episodes of random observations (uint8 frames for image shapes) and actions."""
    g = np.random.default_rng(seed)
    out = []
    for _ in range(episodes):
        if len(frame_shape) == 2:
            obs = g.integers(0, 256, (length + 1, *frame_shape), dtype=np.uint8)
        else:
            obs = g.normal(size=(length + 1, *frame_shape)).astype(np.float32)
        if isinstance(act_space, gym.spaces.Discrete):
            act = g.integers(0, act_space.n, length)
        else:
            act = g.uniform(act_space.low, act_space.high, (length, *act_space.shape))
        term = np.zeros(length, bool)
        term[-1] = True
        out.append(
            {
                "observations": obs,
                "actions": act,
                "rewards": g.normal(size=length),
                "terminations": term,
                "truncations": np.zeros(length, bool),
            }
        )
    return out


BOX = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))


@pytest.mark.parametrize(
    "frame_shape, space, stack",
    [((3,), BOX, 1), ((84, 84), gym.spaces.Discrete(4), 4)],
    ids=["continuous-mlp", "atari-nature-cnn"],
)
def test_fqe_handles_continuous_actions_and_stacked_frames(frame_shape, space, stack):
    data = OfflineData.from_episodes(random_episodes(frame_shape, space), frame_stack=stack)
    info = EnvInfo(obs_shape=data.obs_shape, action_space=space)
    n = data.obs.shape[0]
    if isinstance(space, gym.spaces.Discrete):
        pi = torch.randint(0, space.n, (2, n), generator=torch.Generator().manual_seed(0))
    else:
        low, high = torch.tensor(space.low), torch.tensor(space.high)
        pi = low + (high - low) * torch.rand(2, n, 2, generator=torch.Generator().manual_seed(0))
    config = FQEConfig(steps=3, batch_size=4, hidden_sizes=(8,))
    fqe = FQE(config, data, info, "cpu", [0, 1])
    fqe.fit(pi)
    est = fqe.estimate(initial_rows(data), pi)
    assert est.shape == (2,) and bool(torch.isfinite(est).all())
    alone = FQE(config, data, info, "cpu", [1])
    alone.fit(pi[1:])
    assert torch.allclose(alone.estimate(initial_rows(data), pi[1:])[0], est[1], atol=1e-5)
