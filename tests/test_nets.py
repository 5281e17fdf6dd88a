"""Shared networks: the vectorized ensemble equals separate MLPs, the actor's log-density."""

import math

import pytest
import torch
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from bench.nets import ActionScale, EnsembleMLP, TanhGaussianActor, soft_update


def test_ensemble_members_equal_separate_mlps():
    torch.manual_seed(0)
    ens = EnsembleMLP(3, 4, (8, 5), 2)
    x = torch.randn(6, 4)
    out = ens(x)
    assert out.shape == (3, 6, 2)
    for e in range(3):
        h = x
        for i, layer in enumerate(ens.layers):
            h = h @ layer.weight[e] + layer.bias[e]
            h = torch.relu(h) if i < len(ens.layers) - 1 else h
        assert torch.allclose(out[e], h, atol=1e-6)
    # per-member inputs [E, B, in] give the same result when the inputs are equal
    assert torch.allclose(ens(x.expand(3, 6, 4)), out, atol=1e-6)


def test_tanh_gaussian_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    actor = TanhGaussianActor(3, 2, (16,))
    obs = torch.randn(5, 3)
    g = torch.Generator().manual_seed(1)
    a, logp = actor(obs, generator=g)
    h = actor.trunk(obs)
    std = actor.log_std(h).clamp(-20, 2).exp()
    dist = TransformedDistribution(Normal(actor.mu(h), std), TanhTransform(cache_size=1))
    ref = dist.log_prob(a.clamp(-1 + 1e-6, 1 - 1e-6)).sum(-1)
    assert torch.allclose(logp, ref, atol=1e-3)
    det, _ = actor(obs, deterministic=True)
    assert torch.allclose(det, torch.tanh(actor.mu(h)))


def test_soft_update_and_action_scale():
    src, tgt = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    expected = [0.9 * t + 0.1 * s for t, s in zip(tgt.parameters(), src.parameters(), strict=True)]
    soft_update(tgt, src, 0.1)
    assert all(torch.allclose(e, t) for e, t in zip(expected, tgt.parameters(), strict=True))
    scale = ActionScale([-2.0, 0.0], [2.0, 1.0], torch.device("cpu"))
    a = torch.tensor([[1.0, 0.25]])
    assert scale.to_unit(a)[0].tolist() == pytest.approx([0.5, -0.5])
    assert torch.allclose(scale.from_unit(scale.to_unit(a)), a)
    assert scale.from_unit(torch.tensor([[3.0, -3.0]])).tolist() == [[2.0, 0.0]]  # clip
    assert scale.from_unit(torch.tensor([[0.0, 0.0]]), "tanh").tolist() == [[0.0, 0.5]]
    assert math.isclose(scale.from_unit(torch.tensor([[10.0, 0.0]]), "tanh")[0, 0].item(), 2.0)


def test_lean_adam_matches_torch_adam_and_its_state_dict():
    from bench.nets import LeanAdam

    torch.manual_seed(0)
    a, b = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.Adam(a.parameters(), lr=1e-2, eps=1e-6)
    opt_b = LeanAdam(b.parameters(), lr=1e-2, eps=1e-6)
    for step in range(5):
        x = torch.randn(8, 5, generator=torch.Generator().manual_seed(step))
        for net, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            net(x).pow(2).sum().backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6)
    # the state_dict layout is torch's: a torch Adam can load a LeanAdam's state and vice versa
    sd = opt_b.state_dict()
    assert sd["state"][0]["step"].item() == 5 and "exp_avg_sq" in sd["state"][0]
    torch.optim.Adam(a.parameters(), lr=1e-2).load_state_dict(sd)
    LeanAdam(b.parameters(), lr=1e-2, eps=1e-6).load_state_dict(opt_a.state_dict())
