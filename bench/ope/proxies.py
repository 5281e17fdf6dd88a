"""Cheap selection proxies: scores of a candidate policy from the dataset that need no training.

    q0          the algorithm's own value estimate at the initial states,
                mean_(s0 in D) Q_alg(s0, pi(s0)), in return units (Paine et al. 2020, "Q-value
                of the trained policy"); only where the algorithm has a Q function
    td          minus the mean squared one-step TD error of the algorithm's own Q under pi,
                -mean (Q(s, a) - r - gamma (1 - terminal) Q(s', pi(s')))^2; gamma is the
                algorithm's own
    likelihood  how well pi explains the data's actions: the fraction of transitions where
                pi(s) = a (discrete; pi is deterministic when acting), or minus the mean
                squared distance between pi(s) and a in the unit action box (continuous)

td and likelihood average over a fixed sample of transitions: of the held-out episodes when the
runs were trained with a holdout (`bench run --holdout`), else of all transitions, which the
runs trained on.

Each function takes the candidates of one configuration stacked in one algorithm object
(member i = candidate i) and returns one score per candidate; higher is better for all three.
"""

from __future__ import annotations

import torch

from bench.data.data import split_transitions
from bench.nets import ActionScale
from bench.ope.candidates import policy_actions, q_values
from bench.seeding import stream_seed

#: Transitions of the fixed sample that td and likelihood average over.
SAMPLE_SIZE = 10_000


#: The methods that score on that sample.
SAMPLED = ("td", "likelihood")


def sample_transitions(data, holdout: float = 0.0, seed: int = 0) -> torch.Tensor:
    """A fixed sample of transition indices, at most SAMPLE_SIZE: of the episodes held out of
    training at this holdout fraction (bench.data.data.split_transitions), or of all of them."""
    pool = split_transitions(data, holdout)[1] if holdout else None
    N = len(data) if pool is None else len(pool)
    if N <= SAMPLE_SIZE:
        pick = torch.arange(N, device=data.act.device)
    else:
        g = torch.Generator().manual_seed(stream_seed("select", seed))
        pick = torch.randperm(N, generator=g)[:SAMPLE_SIZE].sort().values.to(data.act.device)
    return pick if pool is None else pool[pick]


def sample_label(holdout: float) -> str:
    """What td and likelihood scored on, for the selection table's settings column."""
    return f"held-out episodes ({holdout:g})" if holdout else "training transitions"


def q0(algo, data, s0_rows: torch.Tensor) -> torch.Tensor | None:
    """mean over s0 of Q_alg(s0, pi(s0)) per candidate [C], or None without a Q function."""
    q = q_values(algo, data, s0_rows, policy_actions(algo, data, s0_rows))
    return None if q is None else q.mean(1)


def td(algo, data, idx: torch.Tensor) -> torch.Tensor | None:
    """-mean squared TD error of Q_alg under pi on transitions idx, per candidate [C]."""
    gamma = algo.nstep()[0]
    rows = data.obs_index[idx]
    C = algo.num_seeds
    act = data.act[idx].expand(C, *data.act[idx].shape)
    q = q_values(algo, data, rows, act)
    if q is None:
        return None
    q_next = q_values(algo, data, rows + 1, policy_actions(algo, data, rows + 1))
    y = data.rew[idx].float() + gamma * (~data.terminated[idx]).float() * q_next
    return -(q - y).pow(2).mean(1)


def likelihood(algo, data, idx: torch.Tensor) -> torch.Tensor:
    """Action agreement (discrete) or minus the mean squared action distance (continuous) [C]."""
    pi = policy_actions(algo, data, data.obs_index[idx])
    act = data.act[idx]
    if algo.info.discrete:
        return (pi == act).float().mean(1)
    space = algo.info.action_space
    scale = ActionScale(space.low, space.high, pi.device)
    return -(scale.to_unit(pi) - scale.to_unit(act)).pow(2).sum(-1).mean(1)
