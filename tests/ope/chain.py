"""A four-state chain written as a dataset, with policies whose values are known in closed form.

States 0-3, one-hot observations, start at 0. Action 1 moves right, action 0 stays. Every step
pays -0.1, except the step into state 3, which pays +1 and terminates. So for gamma:
    always right: V(0) = -0.1 - 0.1 gamma + gamma^2
    always stay:  V(0) = -0.1 / (1 - gamma)      (the episodes are truncated, not terminated)
"""

import gymnasium as gym
import numpy as np
import torch

from bench.data.data import OfflineData
from bench.types import EnvInfo

N_STATES = 4
SPACE = gym.spaces.Discrete(2)
INFO = EnvInfo(obs_shape=(N_STATES,), action_space=SPACE)


def v_right(gamma):
    return -0.1 - 0.1 * gamma + gamma**2


def v_stay(gamma):
    return -0.1 / (1 - gamma)


def q_table(gamma):
    """Exact Q^pi[s, a] of the two policies: (always right, always stay), [2, 4, 2]."""
    q = np.zeros((2, N_STATES, 2))
    for p, policy_action in enumerate((1, 0)):
        v = np.zeros(N_STATES)
        for _ in range(2000):  # value iteration of a fixed policy: exact to float precision
            q_p = np.zeros((N_STATES, 2))
            for s in range(N_STATES - 1):
                q_p[s, 0] = -0.1 + gamma * v[s]
                q_p[s, 1] = 1.0 if s + 1 == N_STATES - 1 else -0.1 + gamma * v[s + 1]
            v = q_p[np.arange(N_STATES), policy_action]
        q[p] = q_p
    return q


def chain_data(episodes=200, horizon=12, p_right=0.5, seed=0) -> OfflineData:
    """Episodes of a behavior that moves right with probability p_right."""
    rng = np.random.default_rng(seed)
    eps = []
    for _ in range(episodes):
        s, obs, acts, rews, terms = 0, [0], [], [], []
        for _ in range(horizon):
            a = int(rng.random() < p_right)
            s2 = s + a
            done = s2 == N_STATES - 1
            acts.append(a)
            rews.append(1.0 if done else -0.1)
            terms.append(done)
            obs.append(s2)
            s = s2
            if done:
                break
        trunc = [False] * len(acts)
        trunc[-1] = not terms[-1]
        eps.append(
            {
                "observations": np.eye(N_STATES, dtype=np.float32)[obs],
                "actions": np.array(acts),
                "rewards": np.array(rews, np.float32),
                "terminations": np.array(terms),
                "truncations": np.array(trunc),
            }
        )
    return OfflineData.from_episodes(eps)


def state_of_rows(data) -> torch.Tensor:
    return data.obs.argmax(-1)
