"""TD3+BC, IQL, CQL and Discrete CQL: each loss and target against values computed by hand on
tiny tensors, and the dataset statistics they keep (observation normalization, reward scale)."""

import math

import numpy as np
import pytest
import torch

from bench.algos.cql import cql_gap, cql_logsumexp
from bench.algos.discrete_cql import discrete_cql_penalty, double_dqn_target
from bench.algos.iql import awr_weights, expectile_loss, return_range_scale
from bench.algos.td3_bc import smoothed_action, td3_bc_actor_loss, td3_target
from bench.data.data import OfflineData
from tests.algos.test_contract import CONTINUOUS, make, random_batch

t = torch.tensor


# ---------------------------------------------------------------------- TD3+BC
def test_td3_bc_lambda_normalizes_q_by_its_mean_absolute_value():
    q = t([1.0, -3.0])  # mean |Q| = 2, so lambda = 2.5 / 2 = 1.25
    pi, act = t([[0.5], [0.0]]), t([[0.0], [0.0]])  # bc = (0.25 + 0) / 2
    loss, bc, lmbda = td3_bc_actor_loss(q, pi, act, alpha=2.5)
    assert lmbda.item() == pytest.approx(1.25)
    assert bc.item() == pytest.approx(0.125)
    assert loss.item() == pytest.approx(-1.25 * -1.0 + 0.125)


def test_td3_bc_lambda_carries_no_gradient():
    q = t([1.0, -3.0], requires_grad=True)
    loss, _, _ = td3_bc_actor_loss(q, torch.zeros(2, 1), torch.zeros(2, 1), alpha=2.5)
    loss.backward()
    # d/dq of -lambda mean(q) with lambda held fixed: -1.25 / 2 per element
    assert torch.allclose(q.grad, t([-0.625, -0.625]))


def test_td3_target_takes_the_smaller_critic_and_stops_at_termination():
    y = td3_target(t([1.0, 1.0]), t([0.99, 0.0]), t([2.0, 5.0]), t([3.0, 4.0]))
    assert torch.allclose(y, t([1.0 + 0.99 * 2.0, 1.0]))


def test_target_policy_smoothing_clips_the_noise_then_the_action():
    a = t([0.9, -0.9, 0.0])
    noise = t([2.0, 5.0, -1.0])  # sigma 0.2: 0.4, 1.0 -> clipped to 0.5, -0.2
    out = smoothed_action(a, noise, sigma=0.2, clip=0.5)
    assert torch.allclose(out, t([1.0, -0.4, -0.2]))  # 1.3 clipped to the unit box


# ---------------------------------------------------------------------- IQL
def test_expectile_loss_weights_positive_errors_by_tau_and_negative_by_one_minus_tau():
    # u = -2 -> 0.3 * 4, u = 1 -> 0.7 * 1
    assert expectile_loss(t([-2.0, 1.0]), 0.7).item() == pytest.approx((1.2 + 0.7) / 2)
    # tau 0.5 is half the squared error, symmetric
    assert expectile_loss(t([-2.0, 2.0]), 0.5).item() == pytest.approx(2.0)


def test_awr_weights_exponentiate_the_advantage_and_clip_at_max_weight():
    w = awr_weights(t([0.0, 1.0, 10.0, -1.0]), beta=3.0, max_weight=100.0)
    assert torch.allclose(w, t([1.0, math.exp(3.0), 100.0, math.exp(-3.0)]))


def test_awr_weights_carry_no_gradient():
    adv = t([0.5], requires_grad=True)
    assert not awr_weights(adv, 3.0, 100.0).requires_grad


def test_reward_scale_is_1000_over_the_return_range():
    assert return_range_scale(np.array([10.0, 60.0, 30.0])) == pytest.approx(20.0)
    assert return_range_scale(np.array([5.0])) == 1.0  # one episode: no range, no scaling


# ---------------------------------------------------------------------- CQL
def test_cql_logsumexp_importance_weights_each_proposal_by_its_density():
    q_rand, q_next, q_cur = t([[0.0, 0.0]]), t([[1.0, 1.0]]), t([[2.0, 2.0]])
    logp_next, logp_cur = t([[0.0, 0.0]]), t([[-1.0, -1.0]])
    q_data = t([5.0])
    lse = cql_logsumexp(q_rand, q_next, q_cur, q_data, logp_next, logp_cur, 2, 1.0, True)
    log_unif = 2 * math.log(0.5)  # uniform on [-1, 1]^2 has density 1/4
    terms = [0.0 - log_unif] * 2 + [1.0 - 0.0] * 2 + [2.0 + 1.0] * 2
    assert lse.item() == pytest.approx(math.log(sum(math.exp(x) for x in terms)))


def test_cql_logsumexp_without_importance_sampling_includes_the_data_action():
    q_rand, q_next, q_cur = t([[0.0]]), t([[1.0]]), t([[2.0]])
    q_data = t([3.0])
    logp = t([[-7.0]])  # ignored
    lse = cql_logsumexp(q_rand, q_next, q_cur, q_data, logp, logp, 1, 2.0, False)
    # temperature 2: 2 * log sum exp(q / 2)
    expected = 2 * math.log(sum(math.exp(x / 2) for x in (0.0, 3.0, 1.0, 2.0)))
    assert lse.item() == pytest.approx(expected)


def test_cql_gap_is_logsumexp_minus_the_data_value_clipped_per_state():
    lse, q_data = t([3.0, 1.0]), t([1.0, 2.0])  # gaps 2 and -1
    assert cql_gap(lse, q_data, None, None).item() == pytest.approx(0.5)
    assert cql_gap(lse, q_data, 0.0, 1.5).item() == pytest.approx((1.5 + 0.0) / 2)


def test_cql_lagrange_raises_alpha_prime_while_the_gap_exceeds_its_target():
    algo = make("cql", (5,), CONTINUOUS, cql_lagrange="true", cql_target_action_gap="-100")
    before = algo.log_alpha_cql.clone()
    stats = algo.update(random_batch((5,), CONTINUOUS, B=16))
    assert stats["cql_loss"].item() > -100  # the gap is above the target
    assert bool((algo.log_alpha_cql > before).all())
    algo = make("cql", (5,), CONTINUOUS, cql_lagrange="true", cql_target_action_gap="100")
    before = algo.log_alpha_cql.clone()
    algo.update(random_batch((5,), CONTINUOUS, B=16))
    assert bool((algo.log_alpha_cql < before).all())


def test_cql_without_lagrange_keeps_its_fixed_weight():
    algo = make("cql", (5,), CONTINUOUS, cql_alpha="7")
    stats = algo.update(random_batch((5,), CONTINUOUS, B=16))
    assert stats["alpha_cql"].item() == 7.0


# ---------------------------------------------------------------------- Discrete CQL
def test_discrete_cql_penalty_is_logsumexp_minus_the_data_action_value():
    q, act = t([[1.0, 2.0, 3.0]]), t([0])
    expected = math.log(math.e + math.e**2 + math.e**3) - 1.0
    assert discrete_cql_penalty(q, act).item() == pytest.approx(expected)
    mask = t([[True, True, False]])  # illegal actions leave the logsumexp
    expected = math.log(math.e + math.e**2) - 1.0
    assert discrete_cql_penalty(q, act, mask).item() == pytest.approx(expected)


def test_double_dqn_target_picks_with_the_online_net_and_values_with_the_target():
    online, target = t([[1.0, 5.0]]), t([[10.0, 20.0]])
    y = double_dqn_target(t([1.0]), t([0.5]), online, target)
    assert y.item() == pytest.approx(1.0 + 0.5 * 20.0)
    y = double_dqn_target(t([1.0]), t([0.5]), online, target, t([[True, False]]))
    assert y.item() == pytest.approx(1.0 + 0.5 * 10.0)


# ---------------------------------------------------------------------- dataset statistics
def small_data() -> OfflineData:
    rng = np.random.default_rng(0)
    episodes = []
    for T, reward in ((5, 1.0), (3, 4.0)):  # returns 5 and 12
        episodes.append(
            {
                "observations": rng.normal(3.0, 2.0, (T + 1, 5)).astype(np.float32),
                "actions": rng.uniform(-1, 1, (T, 2)).astype(np.float32),
                "rewards": np.full(T, reward, np.float32),
                "terminations": np.eye(T, dtype=bool)[-1],
                "truncations": np.zeros(T, bool),
            }
        )
    return OfflineData.from_episodes(episodes)


@pytest.mark.parametrize("name", ["td3_bc", "iql", "cql"])
def test_observations_are_normalized_identically_when_training_and_acting(name):
    data = small_data()
    algo = make(name, (5,), CONTINUOUS, seeds=[0, 1])
    algo.fit_dataset(data)
    s_t = data.obs[data.obs_index].double().numpy()  # the transitions' s_t
    mean, std = s_t.mean(0), s_t.std(0) + 1e-3
    assert np.allclose(algo.norm.mean[1, 0].numpy(), mean, atol=1e-5)
    assert np.allclose(algo.norm.std[0, 0].numpy(), std, atol=1e-5)
    obs = torch.randn(2, 4, 5)
    normed = algo.norm(obs)
    assert torch.allclose(
        normed, ((obs - torch.tensor(mean)) / torch.tensor(std)).float(), atol=1e-5
    )
    # act() sees normalized observations: an unfitted twin given normalized input agrees
    twin = make(name, (5,), CONTINUOUS, seeds=[0, 1])
    assert torch.allclose(algo.act(obs, deterministic=True), twin.act(normed, deterministic=True))
    # and the statistics travel with the checkpoint
    twin.load_state_dict(algo.state_dict())
    assert torch.equal(twin.act(obs, deterministic=True), algo.act(obs, deterministic=True))


def test_normalization_can_be_switched_off():
    algo = make("td3_bc", (5,), CONTINUOUS, normalize="false")
    algo.fit_dataset(small_data())
    obs = torch.randn(1, 3, 5)
    assert torch.equal(algo.norm(obs), obs)


def test_iql_scales_rewards_by_the_datasets_return_range():
    algo = make("iql", (5,), CONTINUOUS)
    algo.fit_dataset(small_data())
    assert algo.reward_scale.item() == pytest.approx(1000.0 / (12.0 - 5.0))
    off = make("iql", (5,), CONTINUOUS, normalize_reward="false")
    off.fit_dataset(small_data())
    assert off.reward_scale.item() == 1.0
