"""MinAtar environments (the optional `minatar` package): frames as the CNNs take them, an
episode that replays bitwise from its seed and actions, and one line when the package is
missing."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from bench.envs import make_env
from bench.errors import BenchError
from bench.types import EnvSpec

GAMES = ["Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders"]
SEEDS = range(11, 19)


def test_missing_minatar_is_one_line_naming_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "minatar" else real(name, *a)
    )
    with pytest.raises(BenchError, match=r"pip install 'bench\[minatar\]'") as err:
        make_env(EnvSpec("MinAtar/NotRegistered-v1"))
    assert "\n" not in str(err.value)


def _episode(env, seed: int, actions=None, rng=None, steps: int = 150):
    """(observations, actions) of one episode from reset(seed), cut at `steps`."""
    obs, _ = env.reset(seed=seed)
    frames, taken = [obs], []
    for t in range(steps):
        a = int(rng.integers(env.action_space.n)) if actions is None else actions[t]
        obs, _, terminated, truncated, _ = env.step(a)
        frames.append(obs)
        taken.append(a)
        if terminated or truncated or (actions is not None and t + 1 == len(actions)):
            break
    return np.stack(frames), taken


@pytest.mark.parametrize("game", GAMES)
def test_frames_are_channels_first_zero_one_uint8(game):
    pytest.importorskip("minatar")
    env = make_env(EnvSpec(f"MinAtar/{game}-v1", kwargs={"sticky_action_prob": 0.1}))
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape[1:] == (10, 10) and set(np.unique(obs)) <= {0, 1}
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("sticky", [0.1, 0.5])
@pytest.mark.parametrize("game", ["Breakout", "Asterix"])
def test_an_episode_replays_bitwise_from_its_seed_and_actions(game, sticky):
    """Episodes played one after another in one env (as a build plays them) equal each one
    replayed alone in a fresh env (as an evaluation or a check does), sticky actions included:
    an env that carried its last action over from the previous episode would repeat it at a
    new episode's first steps (half of the time at sticky 0.5), which a fresh env cannot."""
    pytest.importorskip("minatar")
    spec = EnvSpec(f"MinAtar/{game}-v1", kwargs={"sticky_action_prob": sticky})
    env, rng = make_env(spec), np.random.default_rng(0)
    played = [_episode(env, seed, rng=rng) for seed in SEEDS]
    for seed, (frames, actions) in zip(SEEDS, played, strict=True):
        again, _ = _episode(make_env(spec), seed, actions=actions)
        assert np.array_equal(again, frames), f"seed {seed}"


def test_a_seed_wider_than_minatars_32_bits_is_hashed_down_the_same_way_each_time():
    """bench's env seeds can pass 2**32; MinAtar's RandomState refuses them. The wrapper hashes
    such a seed (SeedSequence), so the episode is the same on every reset with it."""
    pytest.importorskip("minatar")
    spec = EnvSpec("MinAtar/Asterix-v1", kwargs={"sticky_action_prob": 0.1})
    rng = np.random.default_rng(0)
    frames, actions = _episode(make_env(spec), 2**40 + 3, rng=rng)
    again, _ = _episode(make_env(spec), 2**40 + 3, actions=actions)
    assert np.array_equal(again, frames)
