"""Rollouts: each env plays its quota of episodes, and only that."""

from __future__ import annotations

import numpy as np

from bench.evaluate import rollout_returns
from bench.types import EnvSpec


def test_an_env_that_has_played_its_quota_stops_stepping():
    """Group 0 falls within a few steps, group 1 balances for hundreds: group 0's env is not
    stepped while group 1 plays on (CartPole pays 1 per step, so steps = return)."""
    steps: list[int] = []

    def attach(envs):
        steps.extend([0] * len(envs))
        for i, e in enumerate(envs):

            def counted(action, i=i, step=e.step):
                steps[i] += 1
                return step(action)

            e.step = counted

    def act(obs: np.ndarray) -> np.ndarray:
        actions = (obs[:, 2] + obs[:, 3] > 0).astype(np.int64)  # push toward the pole's lean
        actions[0] = 0  # group 0 always pushes left
        return actions

    returns = rollout_returns(EnvSpec("CartPole-v1"), act, 1, [0, 100], n_envs=1, attach=attach)
    assert returns.shape == (2, 1)
    assert steps[0] == returns[0, 0] < 50
    assert steps[1] == returns[1, 0] > 100
