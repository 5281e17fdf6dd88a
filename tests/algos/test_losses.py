"""Targets and losses of bcq, redq, discrete_sac and bc against values computed by hand."""

import math

import pytest
import torch

from bench.algos.bc import bc_continuous_loss, bc_discrete_loss
from bench.algos.bcq import bcq_continuous_target, clipped_double_q, vae_loss_terms
from bench.algos.discrete_sac import actor_objective, entropy, soft_value
from bench.algos.redq import redq_target, subset_target


# ---------------------------------------------------------------- BCQ
def test_clipped_double_q_mix():
    q1, q2 = torch.tensor([1.0, 4.0]), torch.tensor([3.0, 2.0])
    # min [1, 2], max [3, 4]: 0.75 * min + 0.25 * max
    assert clipped_double_q(q1, q2, 0.75).tolist() == pytest.approx([1.5, 2.5])
    assert clipped_double_q(q1, q2, 1.0).tolist() == pytest.approx([1.0, 2.0])  # pure min


def test_bcq_target_takes_the_best_of_the_sampled_actions():
    # one state, K = 3 sampled next actions
    q1 = torch.tensor([[1.0, 5.0, 2.0]])
    q2 = torch.tensor([[2.0, 3.0, 8.0]])
    # mixes (lmbda .75): [1.25, 3.5, 3.5]; max 3.5 -> y = 1 + 0.5 * 3.5
    y = bcq_continuous_target(torch.tensor([1.0]), torch.tensor([0.5]), q1, q2, 0.75)
    assert y.tolist() == pytest.approx([2.75])


def test_vae_loss_terms():
    act = torch.tensor([[0.5, -0.5]])
    recon = torch.tensor([[0.0, 0.5]])
    # MSE: (0.25 + 1) / 2
    mu, std = torch.zeros(1, 2), torch.ones(1, 2)
    recon_loss, kl = vae_loss_terms(recon, act, mu, std)
    assert recon_loss.item() == pytest.approx(0.625)
    assert kl.item() == pytest.approx(0.0)  # N(0, 1) against itself
    # KL(N(1, e) || N(0, 1)) per dim = -log e + (e^2 + 1) / 2 - 1/2 = e^2 / 2 - 1
    _, kl = vae_loss_terms(recon, act, torch.ones(1, 2), torch.full((1, 2), math.e))
    assert kl.item() == pytest.approx(math.e**2 / 2 - 1)


# ---------------------------------------------------------------- REDQ
def test_redq_subset_min_and_mean():
    q_next = torch.tensor([[1.0, 9.0], [4.0, 2.0], [7.0, 5.0]])  # 3 members, 2 states
    subset = torch.tensor([0, 2])
    assert subset_target(q_next, subset, "min").tolist() == [1.0, 5.0]
    assert subset_target(q_next, subset, "mean").tolist() == [4.0, 7.0]
    assert subset_target(q_next, torch.tensor([1, 2]), "min").tolist() == [4.0, 2.0]


def test_redq_target_subtracts_the_entropy_term():
    q_next = torch.tensor([[1.0], [3.0]])
    y = redq_target(
        torch.tensor([1.0]),
        torch.tensor([0.9]),
        q_next,
        torch.tensor([0, 1]),
        log_prob_next=torch.tensor([-2.0]),
        alpha=0.5,
        mode="min",
    )
    # 1 + 0.9 * (min(1, 3) - 0.5 * -2) = 1 + 0.9 * 2
    assert y.tolist() == pytest.approx([2.8])


# ---------------------------------------------------------------- Discrete SAC
def test_discrete_sac_soft_value_is_exact():
    logits = torch.log(torch.tensor([[0.5, 0.5], [0.25, 0.75]]))
    q = torch.tensor([[1.0, 3.0], [2.0, 0.0]])
    alpha = 0.5
    v0 = 0.5 * (1 - alpha * math.log(0.5)) + 0.5 * (3 - alpha * math.log(0.5))
    v1 = 0.25 * (2 - alpha * math.log(0.25)) + 0.75 * (0 - alpha * math.log(0.75))
    assert soft_value(q, logits, alpha).tolist() == pytest.approx([v0, v1])
    assert actor_objective(q, logits, alpha).item() == pytest.approx(-(v0 + v1) / 2)
    h1 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert entropy(logits).tolist() == pytest.approx([math.log(2), h1])


# ---------------------------------------------------------------- BC
def test_bc_losses():
    logits = torch.tensor([[0.0, 0.0, 0.0], [math.log(3.0), 0.0, 0.0]])
    # -log(1/3), -log(3/5)
    expected = (math.log(3) + math.log(5 / 3)) / 2
    assert bc_discrete_loss(logits, torch.tensor([2, 0])).item() == pytest.approx(expected)
    pred, act = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.0]])
    assert bc_continuous_loss(pred, act).item() == pytest.approx((0.25 + 1.0) / 2)
