"""OfflineData: layout, n-step targets (termination vs truncation), the seeded sampler."""

import numpy as np
import pytest
import torch

from bench.data.data import OfflineData, Sampler, held_out_episodes, split_transitions
from bench.errors import DatasetError


def episode(obs, rew, terminated):
    """An episode from T+1 scalar observations and T rewards; truncated unless terminated."""
    T = len(rew)
    term = np.zeros(T, bool)
    trunc = np.zeros(T, bool)
    (term if terminated else trunc)[-1] = True
    return {
        "observations": np.asarray(obs, np.float32)[:, None],
        "actions": np.zeros(T, np.int64),
        "rewards": np.asarray(rew, np.float32),
        "terminations": term,
        "truncations": trunc,
    }


@pytest.fixture
def data():
    # episode A: obs 10..13, rewards 1,2,3, terminates; episode B: obs 20..22, rewards 4,5, truncated
    return OfflineData.from_episodes(
        [episode([10, 11, 12, 13], [1, 2, 3], True), episode([20, 21, 22], [4, 5], False)]
    )


def test_layout_keeps_t_plus_one_observations(data):
    assert len(data) == 5
    assert data.obs.shape == (7, 1)
    assert data.obs_index.tolist() == [0, 1, 2, 4, 5]
    assert data.obs[data.obs_index + 1].squeeze(1).tolist() == [11, 12, 13, 21, 22]
    assert data.episode_end.tolist() == [3, 3, 3, 5, 5]
    assert data.num_episodes == 2
    assert data.episode_returns().tolist() == [6.0, 9.0]


def test_one_step_targets(data):
    g = 0.5
    ns = data.compute_nstep(g, 1)
    assert ns.ret.tolist() == [1, 2, 3, 4, 5]
    # the terminal transition does not bootstrap; the truncated one does, from obs 22
    assert ns.discount.tolist() == [g, g, 0.0, g, g]
    assert data.obs[ns.boot_index].squeeze(1).tolist() == [11, 12, 13, 21, 22]


def test_three_step_targets_termination_vs_truncation(data):
    g = 0.5
    ns = data.compute_nstep(g, 3)
    # A: t0 = 1 + .5*2 + .25*3 = 2.75 (terminates inside the window: no bootstrap)
    #    t1 = 2 + .5*3 = 3.5 (terminal), t2 = 3 (terminal)
    # B: t3 = 4 + .5*5 = 6.5, truncated after 2 steps: bootstrap from obs 22 with g^2
    #    t4 = 5, bootstrap from obs 22 with g^1
    assert ns.ret.tolist() == pytest.approx([2.75, 3.5, 3.0, 6.5, 5.0])
    assert ns.discount.tolist() == pytest.approx([0.0, 0.0, 0.0, 0.25, 0.5])
    assert data.obs[ns.boot_index].squeeze(1).tolist() == [13, 13, 13, 22, 22]


def test_two_step_bootstrap_inside_an_episode():
    long = OfflineData.from_episodes([episode([0, 1, 2, 3, 4], [1, 1, 1, 1], True)])
    ns = long.compute_nstep(0.9, 2)
    assert ns.ret.tolist() == pytest.approx([1.9, 1.9, 1.9, 1.0])
    assert ns.discount.tolist() == pytest.approx([0.81, 0.81, 0.0, 0.0])
    assert long.obs[ns.boot_index].squeeze(1).tolist() == [2, 3, 4, 4]


def test_reward_normalization_standardizes_before_returns(data):
    ns = data.compute_nstep(0.5, 1, normalize_rewards=True)
    r = np.array([1, 2, 3, 4, 5.0])
    assert ns.ret.numpy() == pytest.approx((r - r.mean()) / r.std(ddof=1), abs=1e-6)


def test_sampler_is_seeded_per_seed_and_batches_align(data):
    data.compute_nstep(0.5, 1)
    a = Sampler(data, 64, [3]).sample()
    b = Sampler(data, 64, [3]).sample()
    c = Sampler(data, 64, [4]).sample()
    assert torch.equal(a.obs, b.obs) and not torch.equal(a.obs, c.obs)
    # next_obs is the observation right after obs for one-step targets
    assert torch.equal(a.next_obs, a.obs + 1)
    assert a.obs.shape == (1, 64, 1) and a.act.shape == (1, 64) and a.discount.shape == (1, 64)
    # seeds sampled together: [S, B], seed 3's rows as when it samples alone
    job = Sampler(data, 64, [4, 3]).sample()
    assert job.obs.shape == (2, 64, 1)
    assert torch.equal(job.obs[1], a.obs[0]) and torch.equal(job.obs[0], c.obs[0])
    assert torch.equal(job.next_obs, job.obs + 1)


def test_bad_episodes_are_rejected():
    bad = episode([0, 1, 2], [1, 1], True)
    bad["observations"] = bad["observations"][:2]
    with pytest.raises(DatasetError, match="T\\+1"):
        OfflineData.from_episodes([bad])
    with pytest.raises(DatasetError, match="no transitions"):
        OfflineData.from_episodes([])


def test_frame_stacks_are_gathered_and_padded_at_episode_starts():
    """frame_stack 3: obs at row r = frames [r-2, r-1, r], clamped to the episode's first."""
    data = OfflineData.from_episodes(
        [episode([10, 11, 12, 13], [1, 2, 3], True), episode([20, 21, 22], [4, 5], False)],
        frame_stack=3,
    )
    data.compute_nstep(0.9, 1)
    assert data.obs_shape == (3, 1)
    batch = data.gather(torch.arange(5))
    stacks = batch.obs.squeeze(-1).tolist()
    assert stacks == [[10, 10, 10], [10, 10, 11], [10, 11, 12], [20, 20, 20], [20, 20, 21]]
    nxt = batch.next_obs.squeeze(-1).tolist()
    assert nxt == [[10, 10, 11], [10, 11, 12], [11, 12, 13], [20, 20, 21], [20, 21, 22]]


def test_streamed_loading_equals_concatenation():
    eps = [episode([10, 11, 12, 13], [1, 2, 3], True), episode([20, 21, 22], [4, 5], False)]
    a = OfflineData.from_episodes(eps)
    b = OfflineData.from_episodes(iter(eps), n_obs=7)
    assert torch.equal(a.obs, b.obs) and torch.equal(a.obs_index, b.obs_index)
    with pytest.raises(DatasetError, match="metadata says 8"):
        OfflineData.from_episodes(iter(eps), n_obs=8)


def test_huge_estimation_step_equals_the_longest_episode_and_loops_that_often(monkeypatch):
    """n beyond the longest episode gives the targets of n = that length (they stop at the
    episode's end); the precompute loops min(n, longest) times, so n = 10^9 returns at once."""
    import bench.data.data as data_module

    rng = np.random.default_rng(0)
    episodes = [
        episode(np.arange(T + 1), rng.standard_normal(T), terminated)
        for T, terminated in [(3, True), (7, False), (5, True), (1, False)]
    ]
    longest = 7
    data = OfflineData.from_episodes(episodes)
    calls = []
    real_term = data_module._nstep_term

    def counted(*args):
        calls.append(args[2])
        if len(calls) > longest:  # the unbounded loop would run 10^9 times: stop it here
            raise AssertionError(f"n-step loop ran more than {longest} times")
        return real_term(*args)

    monkeypatch.setattr(data_module, "_nstep_term", counted)
    g = 0.9
    bounded = data.compute_nstep(g, longest)
    assert calls == list(range(longest))
    calls.clear()
    huge = data.compute_nstep(g, 10**9)
    assert calls == list(range(longest))
    assert torch.equal(huge.ret, bounded.ret)
    assert torch.equal(huge.boot_index, bounded.boot_index)
    assert torch.equal(huge.discount, bounded.discount)
    # and the targets are the episode-end ones: the first transition of the 7-step episode
    # (truncated) sums all its rewards and bootstraps from its last observation with g^7
    r = episodes[1]["rewards"].astype(np.float64)
    assert huge.ret[3].item() == pytest.approx(sum(g**k * r[k] for k in range(7)), rel=1e-6)
    assert huge.discount[3].item() == pytest.approx(g**7)
    assert data.obs[huge.boot_index[3]].item() == 7
    assert huge.discount[0].item() == 0.0  # terminated within the window


def _numbered(lengths):
    """Episodes of the given lengths whose rewards number the transitions 0, 1, 2, ..."""
    eps, t = [], 0
    for T in lengths:
        eps.append(episode(np.arange(T + 1), np.arange(t, t + T), True))
        t += T
    return OfflineData.from_episodes(eps)


def test_holdout_takes_whole_episodes_and_the_sampler_never_draws_them():
    lengths = [3, 5, 2, 7, 4, 6, 1, 8, 3, 5]
    data = _numbered(lengths)
    data.compute_nstep(0.9, 1)
    train, held = split_transitions(data, 0.3)
    assert len(train) + len(held) == len(data)
    assert set(train.tolist()).isdisjoint(held.tolist())
    # whole episodes: an episode's transitions are all on one side
    episode_of = np.repeat(np.arange(len(lengths)), lengths)
    held_eps = set(episode_of[held.numpy()])
    assert len(held_eps) == 3 and set(episode_of[train.numpy()]).isdisjoint(held_eps)
    # the same episodes on every call (a fixed seed, not the run's)
    assert torch.equal(split_transitions(data, 0.3)[1], held)
    assert len(split_transitions(data, 0.0)[1]) == 0
    drawn = Sampler(data, 512, [0, 1, 2], train).sample().ret.long().flatten()  # n = 1: r
    assert set(drawn.tolist()) <= set(train.tolist())
    assert len(set(drawn.tolist())) > len(train) // 2  # and draws across all of training


def test_holdout_keeps_an_episode_each_side():
    assert held_out_episodes(10, 0.0) == 0
    assert held_out_episodes(10, 0.01) == 1  # at least one when asked
    assert held_out_episodes(10, 0.3) == 3
    with pytest.raises(DatasetError, match="leaving none to train on"):
        held_out_episodes(10, 0.96)
    with pytest.raises(DatasetError, match="leaving none to train on"):
        held_out_episodes(1, 0.1)
