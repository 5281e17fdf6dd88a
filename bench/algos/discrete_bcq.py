"""Discrete Batch-Constrained Q-learning (Discrete BCQ).

Fujimoto, Conti, Ghavamzadeh, Pineau. "Benchmarking Batch Deep Reinforcement Learning
Algorithms", arXiv:1910.01708, 2019.

A Q-network Q(s, .) and an imitator G(a|s) (the behavior's action distribution) share a trunk.
Only actions the behavior takes often enough are eligible for the argmax (Eq. 17/18):
    pi(s) = argmax_{a : G(a|s) / max_a' G(a'|s) >= tau} Q(s, a)
Q is trained towards the n-step double-Q target that uses the same filter at s':
    y = R_t^(n) + gamma^n * Q_target(s', pi(s'))
and G by maximum likelihood with a small L2 penalty on its logits:
    loss = l(y - Q(s, a)) + NLL(G(a|s)) + imitation_logits_penalty * mean(logits^2)
l is the squared error, or the Huber loss when clip_loss_grad (the paper's choice).
Parameter names and defaults follow the reference API (Tianshou's DiscreteBCQ).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from bench.algos.base import (
    Algorithm,
    Count,
    Fraction,
    In,
    NonNegative,
    Positive,
    Widths,
    action_values,
    register,
)
from bench.nets import (
    MLP,
    Linear,
    MinAtarCNN,
    NatureCNN,
    adam,
    frame_trunk,
    hard_update,
    init_members,
    is_image,
)
from bench.types import Batch, EnvInfo


@dataclass
class DiscreteBCQConfig:
    discount_factor: Fraction = 0.99
    """gamma, the discount factor."""
    estimation_step: Count = 1
    """n, the number of steps of the n-step return target."""
    target_update_freq: Count = 8000
    """Hard copy of Q into the target network every this many updates."""
    eval_eps: Fraction = 1e-3
    """epsilon of the epsilon-greedy noise while evaluating."""
    unlikely_action_threshold: Annotated[float, In("(0, 1]")] = 0.3
    """tau (Eq. 17): keep actions with G(a|s) / max_a' G(a'|s) >= tau."""
    imitation_logits_penalty: NonNegative = 1e-2
    """Weight of the L2 penalty on the imitator's logits."""
    reward_normalization: bool = False
    """Standardize rewards (dataset mean and std) before computing returns."""
    is_double: bool = True
    """Double Q-learning: pick a' with the online network, value it with the target network."""
    clip_loss_grad: bool = False
    """Huber loss (gradient clipped at 1) instead of squared error for the Q loss."""
    lr: Positive = 6.25e-5
    """Adam learning rate (the authors' Atari setting)."""
    adam_eps: Positive = 1.5e-4
    """Adam epsilon (the authors' Atari setting)."""
    hidden_sizes: Widths = (256, 256)
    """Shared MLP trunk for vector observations (images use the Nature CNN trunk)."""


#: Deltas for tasks far smaller than Atari (CartPole-sized), as in the reference's own CartPole
#: test: faster target sync, a larger learning rate, and a stricter filter. With two actions and
#: an epsilon-mixed behavior, the behavior's action distribution is (1 - eps/2, eps/2): at eps 0.5
#: the less likely action has ratio 1/3, just above the Atari default tau 0.3, so nothing would be
#: filtered and BCQ would reduce to offline DQN (which oscillates there: see the README).
PRESETS = {
    "small": {
        "target_update_freq": 320,
        "lr": 3e-4,
        "adam_eps": 1e-8,
        "unlikely_action_threshold": 0.6,
    },
    # MinAtar frames (Young and Tian 2019, their DQN: learning rate 0.00025, target network
    # updated every 1,000 updates); the network is chosen by the frame size (MinAtarCNN)
    "minatar": {"target_update_freq": 1000, "lr": 2.5e-4},
}


class BCQNetwork(nn.Module):
    """Shared trunk, then a Q head and an imitator head: s -> (Q(s, .), logits of G(.|s)).
    Per member (seed): [S, B, *obs] -> ([S, B, A], [S, B, A])."""

    def __init__(self, members, obs_shape: tuple[int, ...], n_actions: int, hidden_sizes):
        super().__init__()
        self.n_actions = n_actions
        self.trunk: NatureCNN | MinAtarCNN | MLP
        if is_image(obs_shape):  # the paper's Atari network: shared convs, separate FC heads
            trunk = frame_trunk(members, obs_shape)  # (512 wide on Atari; MinAtar's: 128)
            self.trunk = trunk
            self.q = MLP(members, trunk.out_dim, (trunk.head,), n_actions)
            self.imitator = MLP(members, trunk.out_dim, (trunk.head,), n_actions)
            self.heads = None
        else:  # linear heads: Q and imitator logits as one layer, [Q | logits] side by side
            self.trunk = MLP(members, obs_shape[0], hidden_sizes, None)
            self.heads = Linear(members, self.trunk.out_dim, 2 * n_actions)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(obs)
        if self.heads is None:
            return self.q(h), self.imitator(h)
        out = self.heads(h)
        return out[..., : self.n_actions], out[..., self.n_actions :]


# ---------------------------------------------------------------------- pure functions
def eligible_actions(
    logits: torch.Tensor, tau: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 17/18 filter: bool [..., B, A], True where G(a|s) / max_a' G(a'|s) >= tau.

    Works in log space: log G(a|s) - max_a' log G(a'|s) >= log tau. Illegal actions (mask False)
    are excluded before normalizing, so G is a distribution over legal actions only.
    """
    if mask is not None:
        logits = logits.masked_fill(~mask, -math.inf)
    logp = F.log_softmax(logits, dim=-1)
    ok = logp - logp.max(dim=-1, keepdim=True).values >= math.log(tau)
    return ok if mask is None else ok & mask


def filtered_argmax(q: torch.Tensor, eligible: torch.Tensor) -> torch.Tensor:
    """argmax of Q over the eligible actions only: [..., B] long."""
    return q.masked_fill(~eligible, -math.inf).argmax(dim=-1)


def bcq_target(
    ret: torch.Tensor,
    discount: torch.Tensor,
    q_next_target: torch.Tensor,
    q_next_select: torch.Tensor,
    eligible_next: torch.Tensor,
) -> torch.Tensor:
    """y = R^(n) + gamma^n (0 if terminated) * Q_target(s', argmax_{eligible a'} Q_select(s', a')).

    Double Q: q_next_select is the online network's Q(s', .); plain Q: the target's own.
    """
    a_next = filtered_argmax(q_next_select, eligible_next)
    return ret + discount * q_next_target.gather(-1, a_next.unsqueeze(-1)).squeeze(-1)


def bcq_losses(
    q: torch.Tensor,
    logits: torch.Tensor,
    act: torch.Tensor,
    target: torch.Tensor,
    huber: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q_loss, i_loss, reg_loss), each a mean over the batch: [..., B, A] -> [...]."""
    q_sa = q.gather(-1, act.unsqueeze(-1)).squeeze(-1)
    td = F.smooth_l1_loss if huber else F.mse_loss
    q_loss = td(q_sa, target, reduction="none").mean(-1)
    logp_a = F.log_softmax(logits, dim=-1).gather(-1, act.unsqueeze(-1)).squeeze(-1)
    i_loss = -logp_a.mean(-1)  # imitator: maximum likelihood
    reg_loss = logits.pow(2).mean((-2, -1))
    return q_loss, i_loss, reg_loss


# ---------------------------------------------------------------------- the algorithm
@register
class DiscreteBCQ(Algorithm[DiscreteBCQConfig]):
    name = "discrete_bcq"
    version = 1  # bump when a change alters the numbers (see Algorithm.version)
    source = "Fujimoto et al. 2019, arXiv:1910.01708; defaults: Tianshou DiscreteBCQPolicy"
    Config = DiscreteBCQConfig
    aliases = {"gamma": "discount_factor"}  # the one spelling every algorithm takes
    presets = PRESETS
    action_kinds = ("discrete",)

    def __init__(self, config: DiscreteBCQConfig, info: EnvInfo, device="cpu", seeds=(0,)):
        super().__init__(config, info, device, seeds)
        members = (self.num_seeds,)
        self.net = BCQNetwork(members, info.obs_shape, info.n_actions, config.hidden_sizes)
        init_members(self.seeds, self.net)
        self.net.to(self.device)
        self.target_net = copy.deepcopy(self.net).requires_grad_(False)
        self.optim = adam(self.net.parameters(), config.lr, config.adam_eps)

    def nstep(self) -> tuple[float, int, bool]:
        c = self.config
        return c.discount_factor, c.estimation_step, c.reward_normalization

    def modules(self):
        return {"net": self.net, "target_net": self.target_net}

    def policy_modules(self):
        return {"net": self.net}

    @torch.no_grad()
    def q_value(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Q(s, a) of the Q head (in standardized reward units with reward_normalization)."""
        return action_values(self.net(obs)[0], act)

    def optimizers(self):
        return {"optim": self.optim}

    def sync_target(self) -> None:
        hard_update(self.target_net, self.net)

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        c = self.config
        if self.num_updates % c.target_update_freq == 0:  # hard update, first at step 0
            self.sync_target()
        self.num_updates += 1
        with torch.no_grad():
            q_next_target, _ = self.target_net(batch.next_obs)
            if c.is_double:
                q_next_select, logits_next = self.net(batch.next_obs)
            else:
                q_next_select, logits_next = q_next_target, self.net(batch.next_obs)[1]
            eligible = eligible_actions(logits_next, c.unlikely_action_threshold, batch.next_mask)
            target = bcq_target(batch.ret, batch.discount, q_next_target, q_next_select, eligible)
        q, logits = self.net(batch.obs)
        q_loss, i_loss, reg_loss = bcq_losses(q, logits, batch.act, target, c.clip_loss_grad)
        loss = q_loss + i_loss + c.imitation_logits_penalty * reg_loss
        self.optim.zero_grad(set_to_none=True)
        loss.sum().backward()  # per-seed losses: the sum keeps each seed's gradient its own
        self.optim.step()
        stats = (loss, q_loss, i_loss, reg_loss)
        return {
            k: v.detach()
            for k, v in zip(("loss", "q_loss", "i_loss", "reg_loss"), stats, strict=True)
        }

    @torch.no_grad()
    def act(self, obs: torch.Tensor, mask: torch.Tensor | None = None, deterministic: bool = False):
        """Filtered greedy actions; with eval_eps probability a uniformly random legal action."""
        q, logits = self.net(obs)
        actions = filtered_argmax(
            q, eligible_actions(logits, self.config.unlikely_action_threshold, mask)
        )
        if deterministic or self.config.eval_eps <= 0:
            return actions
        N, A = q.shape[1:]
        keys = self.act_rng.uniform(N, A)  # the legal action with the largest key: uniform
        random = (keys if mask is None else keys.masked_fill(~mask, -1.0)).argmax(-1)
        explore = self.act_rng.uniform(N) < self.config.eval_eps
        return torch.where(explore, random, actions)
