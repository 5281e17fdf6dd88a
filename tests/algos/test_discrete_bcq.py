"""Discrete BCQ: the action filter, targets, the target-network schedule and each loss term,
checked against values computed by hand on tiny tensors."""

import math

import gymnasium as gym
import pytest
import torch

from bench.algos.base import resolve_config
from bench.algos.discrete_bcq import (
    DiscreteBCQ,
    bcq_losses,
    bcq_target,
    eligible_actions,
    filtered_argmax,
)
from bench.types import Batch, EnvInfo


def probs_to_logits(p):
    return torch.log(torch.tensor(p))


def test_filter_keeps_actions_with_probability_ratio_at_least_tau():
    # G = [0.5, 0.2, 0.3]: ratios to the max 1.0, 0.4, 0.6
    logits = probs_to_logits([[0.5, 0.2, 0.3]])
    assert eligible_actions(logits, 0.3).tolist() == [[True, True, True]]
    assert eligible_actions(logits, 0.5).tolist() == [[True, False, True]]
    assert eligible_actions(logits, 0.7).tolist() == [[True, False, False]]
    # exactly at the threshold counts as eligible (>= tau)
    assert eligible_actions(logits, 0.4 - 1e-6).tolist() == [[True, True, True]]


def test_filter_honours_the_action_mask():
    logits = probs_to_logits([[0.6, 0.3, 0.1]])
    mask = torch.tensor([[False, True, True]])
    # among legal actions G = [0.75, 0.25]: ratio of action 2 to action 1 is 1/3
    assert eligible_actions(logits, 0.3, mask).tolist() == [[False, True, True]]
    assert eligible_actions(logits, 0.5, mask).tolist() == [[False, True, False]]


def test_filtered_argmax_ignores_ineligible_actions():
    q = torch.tensor([[1.0, 5.0, 3.0], [2.0, 1.0, 0.0]])
    eligible = torch.tensor([[True, False, True], [False, True, True]])
    assert filtered_argmax(q, eligible).tolist() == [2, 1]


def test_double_q_target_by_hand():
    ret = torch.tensor([1.0, 2.0])
    discount = torch.tensor([0.9, 0.0])  # second transition terminated
    q_target = torch.tensor([[10.0, 20.0, 30.0], [7.0, 8.0, 9.0]])
    q_online = torch.tensor([[3.0, 2.0, 1.0], [0.0, 0.0, 5.0]])
    eligible = torch.tensor([[False, True, True], [True, True, True]])
    # row 0: online argmax over {1, 2} -> action 1 -> Q_target 20 -> 1 + 0.9 * 20 = 19
    # row 1: terminated -> 2
    y = bcq_target(ret, discount, q_target, q_online, eligible)
    assert y.tolist() == pytest.approx([19.0, 2.0])
    # plain (not double) Q: select with the target network's own values -> action 2 -> 30
    y_plain = bcq_target(ret, discount, q_target, q_target, eligible)
    assert y_plain.tolist() == pytest.approx([28.0, 2.0])


def test_each_loss_term_by_hand():
    q = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    act = torch.tensor([1, 0])
    target = torch.tensor([4.0, 3.5])
    q_loss, i_loss, reg_loss = bcq_losses(q, logits, act, target, huber=False)
    # errors: 2 - 4 = -2, 3 - 3.5 = -0.5 -> MSE (4 + 0.25) / 2
    assert q_loss.item() == pytest.approx(2.125)
    # NLL: -log(1/2), -log(e^2 / (e^2 + 1))
    nll = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    assert i_loss.item() == pytest.approx(nll)
    assert reg_loss.item() == pytest.approx((0 + 0 + 4 + 0) / 4)
    q_huber, _, _ = bcq_losses(q, logits, act, target, huber=True)
    # Huber: |e| > 1 -> |e| - 0.5 = 1.5; |e| <= 1 -> e^2 / 2 = 0.125
    assert q_huber.item() == pytest.approx((1.5 + 0.125) / 2)


def make_algo(**overrides):
    info = EnvInfo(obs_shape=(4,), action_space=gym.spaces.Discrete(3))
    config = resolve_config(DiscreteBCQ, None, {k: str(v) for k, v in overrides.items()})
    return DiscreteBCQ(config, info, seeds=[0])


def random_batch(B=16, A=3, seed=0):
    """One seed's batch: [1, B, ...]."""
    g = torch.Generator().manual_seed(seed)
    return Batch(
        obs=torch.randn(1, B, 4, generator=g),
        act=torch.randint(A, (1, B), generator=g),
        ret=torch.randn(1, B, generator=g),
        next_obs=torch.randn(1, B, 4, generator=g),
        discount=torch.full((1, B), 0.99),
    )


def params_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def test_target_network_is_copied_every_target_update_freq_updates():
    algo = make_algo(target_update_freq=3, lr=1e-2)
    batch = random_batch()
    # update 1 syncs first (step 0), then trains: online and target differ afterwards
    algo.update(batch)
    assert not params_equal(algo.net, algo.target_net)
    frozen = [p.clone() for p in algo.target_net.parameters()]
    algo.update(batch)
    algo.update(batch)  # updates 2 and 3 leave the target alone
    assert all(torch.equal(f, p) for f, p in zip(frozen, algo.target_net.parameters(), strict=True))
    before_sync = [p.clone() for p in algo.net.parameters()]
    algo.update(batch)  # update 4 (num_updates == 3) syncs, then trains the online net
    assert all(
        torch.equal(b, p) for b, p in zip(before_sync, algo.target_net.parameters(), strict=True)
    )


def test_update_returns_the_reference_stats():
    stats = {k: v.item() for k, v in make_algo().update(random_batch()).items()}
    assert set(stats) == {"loss", "q_loss", "i_loss", "reg_loss"}
    assert all(math.isfinite(v) for v in stats.values())
    assert stats["loss"] == pytest.approx(
        stats["q_loss"] + stats["i_loss"] + 0.01 * stats["reg_loss"], rel=1e-5
    )


def test_act_is_filtered_greedy_and_respects_masks_and_eval_eps():
    algo = make_algo(eval_eps=0.0)
    obs = torch.randn(1, 64, 4)
    q, logits = algo.net(obs)
    expected = filtered_argmax(q, eligible_actions(logits, 0.3))
    assert torch.equal(algo.act(obs), expected)
    mask = torch.zeros(1, 64, 3, dtype=torch.bool)
    mask[..., 2] = True
    assert (algo.act(obs, mask=mask) == 2).all()
    noisy = make_algo(eval_eps=1.0)
    acts = noisy.act(torch.randn(1, 512, 4))
    assert set(acts[0].tolist()) == {0, 1, 2}  # uniformly random when eps = 1
    assert (noisy.act(obs, mask=mask) == 2).all()  # random actions are legal ones
    assert torch.equal(noisy.act(obs, deterministic=True), noisy.act(obs, deterministic=True))


def test_state_dict_round_trip_gives_identical_actions():
    a = make_algo(lr=1e-2)
    for _ in range(3):
        a.update(random_batch())
    b = make_algo(lr=1e-2)
    b.load_state_dict(a.state_dict())
    obs = torch.randn(1, 32, 4)
    assert torch.equal(a.act(obs, deterministic=True), b.act(obs, deterministic=True))
    assert torch.equal(a.act(obs), b.act(obs))  # the acting streams travel too
    assert b.num_updates == 3
    # training continues identically
    sa, sb = a.update(random_batch(seed=5)), b.update(random_batch(seed=5))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
