"""Soft Actor-Critic for discrete actions (Discrete SAC).

Christodoulou. "Soft Actor-Critic for Discrete Action Settings", arXiv:1910.07207, 2019.

With a discrete policy the expectations over actions are exact sums, no sampling:
    V(s')   = sum_a pi(a|s') [ min_i Q'_i(s', a) - alpha log pi(a|s') ]        (Eq. 3/10)
    y       = R^(n) + gamma^n V(s')                                 (critic target)
    J_Q_i   = E[ (Q_i(s, a) - y)^2 ],  i = 1, 2                     (critic losses)
    J_pi    = E_s[ sum_a pi(a|s) ( alpha log pi(a|s) - min_i Q_i(s, a) ) ]   (Eq. 12)
    J_alpha = E_s[ -log alpha * ( -H(pi(.|s)) + H_target ) ]  when auto-tuned  (Eq. 11)
The paper sets the target entropy H_target = 0.98 * log|A| (98% of the maximum entropy); it is
the target_entropy_ratio below. Targets use Polyak-averaged critic copies (tau).
The two critics are one vectorized 2-member ensemble.
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
    Positive,
    Widths,
    action_values,
    register,
)
from bench.nets import (
    MLP,
    MinAtarCNN,
    NatureCNN,
    adam,
    frame_trunk,
    init_members,
    is_image,
    obs_net,
    soft_update,
)
from bench.types import Batch, EnvInfo


@dataclass
class DiscreteSACConfig:
    tau: Annotated[float, In("(0, 1]")] = 0.005
    """Polyak rate of the target critics."""
    gamma: Fraction = 0.99
    """Discount factor."""
    alpha: Positive = 0.2
    """Entropy temperature (the starting value when auto_alpha)."""
    auto_alpha: bool = False
    """Tune alpha towards the target entropy (Eq. 11)."""
    target_entropy_ratio: Fraction = 0.98
    """Target entropy as a fraction of the maximum, log|A| (the paper's 0.98)."""
    estimation_step: Count = 1
    """n of the n-step return target."""
    actor_lr: Positive = 3e-4
    """Adam learning rate of the policy."""
    critic_lr: Positive = 3e-4
    """Adam learning rate of the critics."""
    alpha_lr: Positive = 3e-4
    """Adam learning rate of log alpha."""
    hidden_sizes: Widths = (256, 256)
    """MLP hidden layers of actor and critics (images: Nature CNN trunks)."""
    deterministic_eval: bool = True
    """Evaluate with the most probable action instead of sampling."""


def soft_value(
    q_min: torch.Tensor, logits: torch.Tensor, alpha: float | torch.Tensor
) -> torch.Tensor:
    """V(s) = sum_a pi(a|s) (Q(s, a) - alpha log pi(a|s)), exactly from the probabilities."""
    logp = F.log_softmax(logits, dim=-1)
    return (logp.exp() * (q_min - alpha * logp)).sum(-1)


def actor_objective(q_min: torch.Tensor, logits: torch.Tensor, alpha) -> torch.Tensor:
    """J_pi = E_s sum_a pi(a|s) (alpha log pi(a|s) - Q(s, a)) = -E_s V(s): [..., B, A] -> [...]."""
    return -soft_value(q_min, logits, alpha).mean(-1)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    logp = F.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


class CriticPair(nn.Module):
    """Two critics per seed, s -> Q(s, .): [S, B, *obs] -> [S, 2, B, A], as one (S, 2) ensemble
    (images: a Nature CNN trunk per critic, as one grouped convolution)."""

    def __init__(self, num_seeds: int, obs_shape, n_actions: int, hidden_sizes):
        super().__init__()
        members = (num_seeds, 2)
        self.trunks: NatureCNN | MinAtarCNN | None
        if is_image(obs_shape):
            trunks = frame_trunk(members, obs_shape)
            self.trunks = trunks
            self.heads = MLP(members, trunks.out_dim, (trunks.head,), n_actions)
        else:
            self.trunks = None
            self.heads = MLP(members, obs_shape[0], hidden_sizes, n_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.heads(obs if self.trunks is None else self.trunks(obs))


@register
class DiscreteSAC(Algorithm[DiscreteSACConfig]):
    name = "discrete_sac"
    version = 1  # bump when a change alters the numbers (see Algorithm.version)
    source = "Christodoulou 2019, arXiv:1910.07207; defaults: Tianshou DiscreteSACPolicy"
    Config = DiscreteSACConfig
    action_kinds = ("discrete",)

    def __init__(self, config: DiscreteSACConfig, info: EnvInfo, device="cpu", seeds=(0,)):
        super().__init__(config, info, device, seeds)
        A, S = info.n_actions, self.num_seeds
        self.actor = obs_net((S,), info.obs_shape, config.hidden_sizes, A)
        self.critics = CriticPair(S, info.obs_shape, A, config.hidden_sizes)
        init_members(self.seeds, self.actor, self.critics)
        self.actor.to(self.device)
        self.critics.to(self.device)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.log_alpha = torch.full(
            (S,), math.log(config.alpha), device=self.device, requires_grad=True
        )
        self.target_entropy = config.target_entropy_ratio * math.log(A)
        self.actor_optim = adam(self.actor.parameters(), config.actor_lr)
        self.critic_optim = adam(self.critics.parameters(), config.critic_lr)
        self.alpha_optim = adam([self.log_alpha], config.alpha_lr)

    def modules(self):
        return {"actor": self.actor, "critics": self.critics, "critics_target": self.critics_target}

    def policy_modules(self):
        return {"actor": self.actor}

    def q_modules(self):
        return {"critics": self.critics}

    @torch.no_grad()
    def q_value(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """min over the two critics of Q_i(s, a), as in the targets."""
        return action_values(self.critics(obs).min(1).values, act)

    def optimizers(self):
        return {"actor": self.actor_optim, "critic": self.critic_optim, "alpha": self.alpha_optim}

    def tensors(self):
        return {"log_alpha": self.log_alpha}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        c = self.config
        self.num_updates += 1
        alpha = self.log_alpha.exp().detach()[:, None, None]  # [S, 1, 1]
        with torch.no_grad():  # y = R + gamma^n V'(s')
            q_next = self.critics_target(batch.next_obs).min(1).values
            logits_next = self.actor(batch.next_obs)
            if batch.next_mask is not None:
                logits_next = logits_next.masked_fill(~batch.next_mask, -1e9)
            target = batch.ret + batch.discount * soft_value(q_next, logits_next, alpha)
        q = self.critics(batch.obs)  # [S, 2, B, A]
        S, _, B, _ = q.shape
        q_sa = q.gather(-1, batch.act.view(S, 1, B, 1).expand(S, 2, B, 1)).squeeze(-1)
        critic_losses = (q_sa - target[:, None]).pow(2).mean(-1)  # [S, 2]
        self.critic_optim.zero_grad(set_to_none=True)
        critic_losses.sum().backward()  # sums over critics and seeds: each gradient its own
        self.critic_optim.step()

        logits = self.actor(batch.obs)
        if batch.mask is not None:
            logits = logits.masked_fill(~batch.mask, -1e9)
        actor_loss = actor_objective(q.detach().min(1).values, logits, alpha)
        self.actor_optim.zero_grad(set_to_none=True)
        actor_loss.sum().backward()
        self.actor_optim.step()

        alpha_loss = torch.zeros_like(actor_loss)
        if c.auto_alpha:  # J_alpha = -log alpha * (target entropy - H), Eq. 11
            h = entropy(logits.detach()).mean(-1)
            alpha_loss = -self.log_alpha * (self.target_entropy - h)
            self.alpha_optim.zero_grad(set_to_none=True)
            alpha_loss.sum().backward()
            self.alpha_optim.step()
        soft_update(self.critics_target, self.critics, c.tau)
        return {
            "actor_loss": actor_loss.detach(),
            "critic1_loss": critic_losses[:, 0].detach(),
            "critic2_loss": critic_losses[:, 1].detach(),
            "alpha": self.log_alpha.exp().detach(),
            "alpha_loss": alpha_loss.detach(),
        }

    def _sample(self, logits: torch.Tensor) -> torch.Tensor:
        """A sample of softmax(logits) per row (Gumbel-max), from the seeds' acting streams."""
        gumbel = -torch.log(-torch.log(self.act_rng.uniform(*logits.shape[1:]).clamp_min(1e-20)))
        return (logits + gumbel).argmax(-1)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, mask: torch.Tensor | None = None, deterministic: bool = False):
        """Evaluation: the most probable action (deterministic_eval), else a sample of pi(.|s)."""
        logits = self.actor(obs)
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf"))
        if deterministic or self.config.deterministic_eval:
            return logits.argmax(-1)
        return self._sample(logits)

    @torch.no_grad()
    def explore(self, obs: torch.Tensor) -> torch.Tensor:
        """Online collection: a sample of pi(.|s)."""
        return self._sample(self.actor(obs))
