"""Atari cards: the stored frames, stacked at sample time, equal what the evaluator's env shows;
the RAM-reading behaviors play far better than random."""

import dataclasses

import numpy as np
import pytest
import torch

from bench.collect.behaviors import Behavior
from bench.collect.build import _episode_seed, build_dataset
from bench.data.cards import PolicySpec, load_card
from bench.data.data import OfflineData
from bench.envs import make_env
from bench.evaluate import rollout_returns


def short(card, frames: int):
    """The card with episodes capped at `frames` emulator frames (a test-sized env)."""
    kwargs = {**card.env.kwargs, "max_num_frames_per_episode": frames}
    return dataclasses.replace(card, env=dataclasses.replace(card.env, kwargs=kwargs))


def test_sample_time_stacks_equal_the_eval_envs_observations(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    card = short(load_card("atari-breakout"), 2000)  # episodes of <= 500 agent steps
    ds = build_dataset(card, size=700)
    data = OfflineData.from_minari(ds, frame_stack=card.env.frame_stack)
    data.compute_nstep(0.99, 1)
    assert data.obs.shape[1:] == (84, 84) and data.obs_shape == (4, 84, 84)
    episode = next(iter(ds.iterate_episodes([0])))
    env = make_env(card.env)  # the evaluator's env: AtariPreprocessing + a 4-frame stack
    obs, _ = env.reset(seed=_episode_seed(card, 0))
    stacks = data.gather(torch.arange(len(episode)))
    assert np.array_equal(stacks.obs[0].numpy(), obs)
    for t, a in enumerate(episode.actions):
        obs, *_ = env.step(int(a))
        assert np.array_equal(stacks.next_obs[t].numpy(), obs), f"step {t}"


@pytest.mark.parametrize(
    ("game", "policy", "minimum"), [("breakout", "breakout_ram", 20.0), ("pong", "pong_ram", -15.0)]
)
def test_ram_behaviors_beat_random(game, policy, minimum):
    """One seeded episode each (deterministic): random play scores 1.7 / -20.7."""
    card = load_card(f"atari-{game}")
    spec = PolicySpec(policy=policy, epsilon=0.0)
    behavior = Behavior(spec, make_env(card.env).action_space, 1, seed=0)
    returns = rollout_returns(
        card.env, behavior, 1, seed=0, attach=lambda envs: setattr(behavior, "envs", envs)
    )
    assert returns[0] >= minimum
