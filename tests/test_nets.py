"""Shared networks: members (seeds, ensembles) equal separate networks, per-seed initialization
and random streams, the actor's log-density."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from bench.nets import MLP, ActionScale, NatureCNN, TanhGaussianActor, init_members, soft_update
from bench.seeding import SeedStreams, split_seeds, stack_seeds


def test_members_equal_separate_mlps():
    torch.manual_seed(0)
    net = MLP((3, 2), 4, (8, 5), 2)  # 3 seeds x 2 ensemble members
    x = torch.randn(3, 6, 4)  # one input per seed, shared by its members
    out = net(x)
    assert out.shape == (3, 2, 6, 2)
    for s in range(3):
        for e in range(2):
            h = x[s]
            for i, layer in enumerate(net.layers):
                h = h @ layer.weight[s, e] + layer.bias[s, e]
                h = torch.relu(h) if i < len(net.layers) - 1 else h
            assert torch.allclose(out[s, e], h, atol=1e-6)
            assert torch.allclose(net.member(x, e)[s], h, atol=1e-6)
    # per-member inputs [S, E, B, in] give the same result when the inputs are equal
    assert torch.allclose(net(x[:, None].expand(3, 2, 6, 4)), out, atol=1e-6)


def test_nature_cnn_members_equal_separate_convolutions():
    torch.manual_seed(0)
    cnn = NatureCNN((2,), 4)
    x = torch.randint(0, 256, (2, 3, 4, 84, 84), dtype=torch.uint8)
    out = cnn(x)
    assert out.shape == (2, 3, NatureCNN.out_dim)
    for s in range(2):
        h = x[s].float() / 255.0
        for conv in cnn.convs:
            h = torch.relu(F.conv2d(h, conv.weight[s], conv.bias[s], stride=conv.stride))
        assert torch.allclose(out[s], h.flatten(1), atol=1e-5)


def test_nature_cnn_layouts_compute_the_same_features_and_gradients(monkeypatch):
    """The CPU's layout (each member's convolutions in turn) and the GPU's (one grouped
    convolution) give the same features and weight gradients, for seeds and for (S, E)."""
    torch.manual_seed(0)
    cnn = NatureCNN((3, 2), 4)
    x = torch.randint(0, 256, (3, 2, 5, 4, 84, 84), dtype=torch.uint8)
    results = {}
    for name in ("grouped", "per_member"):
        monkeypatch.setattr(NatureCNN, "LAYOUTS", {"cpu": name})
        cnn.zero_grad()
        out = cnn(x)
        assert out.shape == (3, 2, 5, NatureCNN.out_dim)
        (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
        results[name] = (out.detach(), [p.grad.clone() for p in cnn.parameters()])
    (a, ga), (b, gb) = results["grouped"], results["per_member"]
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    for g1, g2 in zip(ga, gb, strict=True):
        assert torch.allclose(g1, g2, rtol=1e-4, atol=1e-6)
    # member (s, e) alone, from the flattened weights
    for s, e in ((0, 0), (2, 1)):
        h = x[s, e].float() / 255.0
        for conv in cnn.convs:
            h = torch.relu(F.conv2d(h, conv.weight[s, e], conv.bias[s, e], stride=conv.stride))
        assert torch.allclose(a[s, e], h.flatten(1), atol=1e-5)


def test_a_seeds_initial_weights_do_not_depend_on_its_job():
    job, alone = MLP((3,), 4, (8,), 2), MLP((1,), 4, (8,), 2)
    init_members([5, 9, 2], job)
    init_members([9], alone)
    for a, b in zip(job.parameters(), alone.parameters(), strict=True):
        assert torch.equal(a[1], b[0])
    other = MLP((1,), 4, (8,), 2)
    init_members([5], other)
    assert not torch.equal(other.layers[0].weight[0], alone.layers[0].weight[0])


def test_tanh_gaussian_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    actor = TanhGaussianActor((1,), 3, 2, (16,))
    obs = torch.randn(1, 5, 3)
    rng = SeedStreams([0], "cpu", "test")
    a, logp = actor(obs, rng)
    mu, log_std = actor.head(actor.trunk(obs)).chunk(2, -1)
    std = log_std.clamp(-20, 2).exp()
    dist = TransformedDistribution(Normal(mu, std), TanhTransform(cache_size=1))
    ref = dist.log_prob(a.clamp(-1 + 1e-6, 1 - 1e-6)).sum(-1)
    assert torch.allclose(logp, ref, atol=1e-3)
    det, _ = actor(obs, deterministic=True)
    assert torch.allclose(det, torch.tanh(mu))


def test_seed_streams_give_each_seed_its_own_draws():
    job, alone = SeedStreams([4, 1, 8], "cpu", "x"), SeedStreams([1], "cpu", "x")
    for shape in [(3, 2), (5,), (20_000,)]:  # past one block too
        assert torch.equal(job.normal(*shape)[1], alone.normal(*shape)[0])
        assert torch.equal(job.integers(7, *shape)[1], alone.integers(7, *shape)[0])
    state = job.state_dict()
    after = job.uniform(10)
    again = SeedStreams([4, 1, 8], "cpu", "x")
    again.load_state_dict(state)
    assert torch.equal(again.uniform(10), after)
    job.reseed("eval", 3)
    alone.reseed("eval", 3)
    assert torch.equal(job.uniform(4)[1], alone.uniform(4)[0])
    assert not torch.equal(job.uniform(4)[0], job.uniform(4)[1])


def test_seed_states_split_and_stack_back():
    net = MLP((3,), 2, (4,), 1)
    state = {"net": net.state_dict(), "step": torch.tensor(5.0), "name": "a"}
    parts = split_seeds(state, 3)
    assert parts[2]["net"]["layers.0.weight"].shape == (1, 2, 4)
    back = stack_seeds(parts)
    assert all(torch.equal(back["net"][k], v) for k, v in state["net"].items())
    parts[1]["step"] = torch.tensor(6.0)
    with pytest.raises(ValueError):
        stack_seeds(parts)


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


def test_minatar_trunk_is_the_papers_convolution_for_every_member():
    """MinAtarCNN (im2col and a batched matmul over members) equals torch's conv2d + ReLU with
    each member's own weights, on 0/1 object channels, flattened position-major (a fixed
    permutation of NCHW's channel-major flattening)."""
    import torch.nn.functional as F

    from bench.nets import MinAtarCNN, frame_trunk

    torch.manual_seed(0)
    net = MinAtarCNN((3,), 4)
    x = torch.randint(0, 2, (3, 5, 4, 10, 10), dtype=torch.uint8)
    out = net(x)
    assert out.shape == (3, 5, 1024)
    for m in range(3):
        ref = F.relu(F.conv2d(x[m].float(), net.conv.weight[m], net.conv.bias[m]))
        assert torch.allclose(out[m], ref.permute(0, 2, 3, 1).reshape(5, -1), atol=1e-6)
    assert isinstance(frame_trunk((1,), (4, 10, 10)), MinAtarCNN)
    assert not isinstance(frame_trunk((1,), (4, 84, 84)), MinAtarCNN)
