"""Conservative Q-Learning for discrete actions (Discrete CQL): double DQN plus the CQL(H)
penalty, the variant the paper runs on Atari.

Kumar, Zhou, Tucker, Levine. "Conservative Q-Learning for Offline Reinforcement Learning",
arXiv:2006.04779, 2020 (Eq. 4; Atari experiments of Section 6.3).

With discrete actions the logsumexp over actions is exact, no sampling needed:
    loss = l( Q(s, a) - y ) + alpha * E[ logsumexp_a Q(s, a) - Q(s, a_data) ]
    y = R^(n) + gamma^n Q_target(s', argmax_a' Q(s', a'))          (double DQN)
l is the Huber loss (clip_loss_grad, as in DQN) or the squared error; the target network is a
hard copy every target_update_interval updates. Illegal actions (when the data has masks) are
left out of the logsumexp and of both argmaxes. The policy acts greedily.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.algos.base import (
    Algorithm,
    Count,
    Fraction,
    NonNegative,
    Positive,
    Widths,
    action_values,
    register,
)
from bench.nets import adam, hard_update, init_members, obs_net
from bench.types import Batch, EnvInfo


@dataclass
class DiscreteCQLConfig:
    """Defaults: d3rlpy 2.8.1's DiscreteCQLConfig and its Atari reproduction (learning rate
    6.25e-5, target_update_interval 8000, alpha 1.0); Adam eps 1.5e-4 as DQN's Atari setting."""

    gamma: Fraction = 0.99
    """Discount factor."""
    alpha: NonNegative = 1.0
    """Weight of the conservative penalty."""
    target_update_interval: Count = 8000
    """Hard copy of Q into the target network every this many updates."""
    estimation_step: Count = 1
    """n of the n-step return target."""
    clip_loss_grad: bool = True
    """Huber TD loss (gradient clipped at 1) instead of squared error."""
    lr: Positive = 6.25e-5
    """Adam learning rate (Atari setting)."""
    adam_eps: Positive = 1.5e-4
    """Adam epsilon (Atari setting)."""
    hidden_sizes: Widths = (256, 256)
    """MLP hidden layers for vector observations (images: Nature CNN trunk, then one 512 layer)."""


#: Deltas for tasks far smaller than Atari (CartPole-sized), the same as Discrete BCQ's: a faster
#: target sync and a larger learning rate with the usual Adam epsilon.
PRESETS = {
    "small": {"target_update_interval": 320, "lr": 3e-4, "adam_eps": 1e-8},
    # MinAtar frames (Young and Tian 2019, their DQN: learning rate 0.00025, target network
    # updated every 1,000 updates); the network is chosen by the frame size (MinAtarCNN)
    "minatar": {"target_update_interval": 1000, "lr": 2.5e-4},
}


def masked(q: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return q if mask is None else q.masked_fill(~mask, -math.inf)


def double_dqn_target(ret, discount, q_next_online, q_next_target, next_mask=None):
    """y = R^(n) + gamma^n Q_target(s', argmax_a' Q_online(s', a')): [..., B, A] -> [..., B]."""
    a_next = masked(q_next_online, next_mask).argmax(-1, keepdim=True)
    return ret + discount * q_next_target.gather(-1, a_next).squeeze(-1)


def discrete_cql_penalty(q: torch.Tensor, act: torch.Tensor, mask=None) -> torch.Tensor:
    """E[logsumexp_a Q(s, a) - Q(s, a_data)]: q [..., B, A], act [..., B] -> [...]."""
    lse = torch.logsumexp(masked(q, mask), -1)
    return (lse - q.gather(-1, act.unsqueeze(-1)).squeeze(-1)).mean(-1)


@register
class DiscreteCQL(Algorithm[DiscreteCQLConfig]):
    name = "discrete_cql"
    version = 1  # bump when a change alters the numbers (see Algorithm.version)
    Config = DiscreteCQLConfig
    presets = PRESETS
    action_kinds = ("discrete",)
    source = "Kumar et al. 2020, arXiv:2006.04779; defaults: d3rlpy 2.8.1 DiscreteCQLConfig"
    aliases = {"learning_rate": "lr", "n_steps": "estimation_step", "discount_factor": "gamma"}

    def __init__(self, config: DiscreteCQLConfig, info: EnvInfo, device="cpu", seeds=(0,)):
        super().__init__(config, info, device, seeds)
        self.net = obs_net((self.num_seeds,), info.obs_shape, config.hidden_sizes, info.n_actions)
        init_members(self.seeds, self.net)
        self.net.to(self.device)
        self.target_net = copy.deepcopy(self.net).requires_grad_(False)
        self.optim = adam(self.net.parameters(), config.lr, config.adam_eps)

    def modules(self):
        return {"net": self.net, "target_net": self.target_net}

    def policy_modules(self):
        return {"net": self.net}

    @torch.no_grad()
    def q_value(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return action_values(self.net(obs), act)

    def optimizers(self):
        return {"optim": self.optim}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        c = self.config
        if self.num_updates % c.target_update_interval == 0:  # hard update, first at step 0
            hard_update(self.target_net, self.net)
        self.num_updates += 1
        with torch.no_grad():
            q_next = self.net(batch.next_obs)
            target = double_dqn_target(
                batch.ret, batch.discount, q_next, self.target_net(batch.next_obs), batch.next_mask
            )
        q = self.net(batch.obs)
        q_sa = q.gather(-1, batch.act.unsqueeze(-1)).squeeze(-1)
        td = F.smooth_l1_loss if c.clip_loss_grad else F.mse_loss
        td_loss = td(q_sa, target, reduction="none").mean(-1)
        cql_loss = discrete_cql_penalty(q, batch.act, batch.mask)
        loss = td_loss + c.alpha * cql_loss
        self.optim.zero_grad(set_to_none=True)
        loss.sum().backward()  # the sum over seeds keeps each seed's gradient its own
        self.optim.step()
        return {"loss": loss.detach(), "td_loss": td_loss.detach(), "cql_loss": cql_loss.detach()}

    @torch.no_grad()
    def act(self, obs: torch.Tensor, mask: torch.Tensor | None = None, deterministic: bool = False):
        """Greedy actions among the legal ones."""
        return masked(self.net(obs), mask).argmax(-1)
