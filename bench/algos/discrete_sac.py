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

import torch
import torch.nn.functional as F
from torch import nn

from bench.algos.base import Algorithm, register
from bench.errors import BenchError
from bench.nets import EnsembleMLP, NatureCNN, adam, is_image, mlp, soft_update
from bench.types import Batch, EnvInfo


@dataclass
class DiscreteSACConfig:
    tau: float = 0.005
    """Polyak rate of the target critics."""
    gamma: float = 0.99
    """Discount factor."""
    alpha: float = 0.2
    """Entropy temperature (the starting value when auto_alpha)."""
    auto_alpha: bool = False
    """Tune alpha towards the target entropy (Eq. 11)."""
    target_entropy_ratio: float = 0.98
    """Target entropy as a fraction of the maximum, log|A| (the paper's 0.98)."""
    estimation_step: int = 1
    """n of the n-step return target."""
    actor_lr: float = 3e-4
    """Adam learning rate of the policy."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics."""
    alpha_lr: float = 3e-4
    """Adam learning rate of log alpha."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """MLP hidden layers of actor and critics (images: Nature CNN trunks)."""
    deterministic_eval: bool = True
    """Evaluate with the most probable action instead of sampling."""

    def validate(self) -> None:
        if self.alpha <= 0 or not 0 < self.tau <= 1 or self.estimation_step < 1:
            raise BenchError("alpha must be > 0, tau in (0, 1], estimation_step >= 1")


def soft_value(
    q_min: torch.Tensor, logits: torch.Tensor, alpha: float | torch.Tensor
) -> torch.Tensor:
    """V(s) = sum_a pi(a|s) (Q(s, a) - alpha log pi(a|s)), exactly from the probabilities."""
    logp = F.log_softmax(logits, dim=-1)
    return (logp.exp() * (q_min - alpha * logp)).sum(-1)


def actor_objective(q_min: torch.Tensor, logits: torch.Tensor, alpha) -> torch.Tensor:
    """J_pi = E_s sum_a pi(a|s) (alpha log pi(a|s) - Q(s, a)) = -E_s V(s)."""
    return -soft_value(q_min, logits, alpha).mean()


def entropy(logits: torch.Tensor) -> torch.Tensor:
    logp = F.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


class CriticPair(nn.Module):
    """Two critics s -> Q(s, .): [2, B, A]. Vector inputs: one 2-member ensemble MLP."""

    def __init__(self, obs_shape, n_actions: int, hidden_sizes):
        super().__init__()
        if is_image(obs_shape):
            self.trunks = nn.ModuleList(NatureCNN(obs_shape[0]) for _ in range(2))
            self.heads = EnsembleMLP(2, NatureCNN.out_dim, (512,), n_actions)
        else:
            self.trunks = None
            self.heads = EnsembleMLP(2, obs_shape[0], hidden_sizes, n_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.trunks is None:
            return self.heads(obs)
        return self.heads(torch.stack([t(obs) for t in self.trunks]))


@register
class DiscreteSAC(Algorithm):
    name = "discrete_sac"
    Config = DiscreteSACConfig
    action_kinds = ("discrete",)

    def __init__(self, config: DiscreteSACConfig, info: EnvInfo, device="cpu", seed: int = 0):
        super().__init__(config, info, device, seed)
        torch.manual_seed(seed)
        A = info.n_actions
        if is_image(info.obs_shape):
            self.actor = nn.Sequential(
                NatureCNN(info.obs_shape[0]), mlp(NatureCNN.out_dim, (512,), A)
            )
        else:
            self.actor = mlp(info.obs_shape[0], config.hidden_sizes, A)
        self.actor.to(self.device)
        self.critics = CriticPair(info.obs_shape, A, config.hidden_sizes).to(self.device)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.log_alpha = torch.tensor(
            math.log(config.alpha), device=self.device, requires_grad=True
        )
        self.target_entropy = config.target_entropy_ratio * math.log(A)
        self.actor_optim = adam(self.actor.parameters(), config.actor_lr)
        self.critic_optim = adam(self.critics.parameters(), config.critic_lr)
        self.alpha_optim = adam([self.log_alpha], config.alpha_lr)

    def modules(self):
        return {"actor": self.actor, "critics": self.critics, "critics_target": self.critics_target}

    def policy_modules(self):
        return {"actor": self.actor}

    def optimizers(self):
        return {"actor": self.actor_optim, "critic": self.critic_optim, "alpha": self.alpha_optim}

    def tensors(self):
        return {"log_alpha": self.log_alpha}

    def update(self, batch: Batch) -> dict[str, float]:
        c = self.config
        self.num_updates += 1
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():  # y = R + gamma^n V'(s')
            q_next = self.critics_target(batch.next_obs).min(0).values
            logits_next = self.actor(batch.next_obs)
            if batch.next_mask is not None:
                logits_next = logits_next.masked_fill(~batch.next_mask, -1e9)
            target = batch.ret + batch.discount * soft_value(q_next, logits_next, alpha)
        q = self.critics(batch.obs)  # [2, B, A]
        q_sa = q.gather(2, batch.act.view(1, -1, 1).expand(2, -1, 1)).squeeze(2)
        critic1_loss = F.mse_loss(q_sa[0], target)
        critic2_loss = F.mse_loss(q_sa[1], target)
        self.critic_optim.zero_grad(set_to_none=True)
        (critic1_loss + critic2_loss).backward()
        self.critic_optim.step()

        logits = self.actor(batch.obs)
        if batch.mask is not None:
            logits = logits.masked_fill(~batch.mask, -1e9)
        actor_loss = actor_objective(q.detach().min(0).values, logits, alpha)
        self.actor_optim.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optim.step()

        alpha_loss = torch.zeros((), device=self.device)
        if c.auto_alpha:  # J_alpha = -log alpha * (target entropy - H), Eq. 11
            h = entropy(logits.detach()).mean()
            alpha_loss = -self.log_alpha * (self.target_entropy - h)
            self.alpha_optim.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_optim.step()
        soft_update(self.critics_target, self.critics, c.tau)
        stats = torch.stack(
            [actor_loss, critic1_loss, critic2_loss, self.log_alpha.exp(), alpha_loss]
        ).tolist()
        names = ("actor_loss", "critic1_loss", "critic2_loss", "alpha", "alpha_loss")
        return dict(zip(names, stats, strict=True))

    @torch.no_grad()
    def act(self, obs: torch.Tensor, mask: torch.Tensor | None = None, deterministic: bool = False):
        """Evaluation: the most probable action (deterministic_eval), else a sample of pi(.|s)."""
        logits = self.actor(obs)
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf"))
        if deterministic or self.config.deterministic_eval:
            return logits.argmax(-1)
        return torch.multinomial(F.softmax(logits, dim=-1), 1, generator=self.generator).squeeze(1)

    @torch.no_grad()
    def explore(self, obs: torch.Tensor) -> torch.Tensor:
        """Online collection: a sample of pi(.|s)."""
        probs = F.softmax(self.actor(obs), dim=-1)
        return torch.multinomial(probs, 1, generator=self.generator).squeeze(1)
