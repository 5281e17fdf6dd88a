"""Randomized Ensembled Double Q-learning (REDQ).

Chen, Wang, Zhou, Ross. "Randomized Ensembled Double Q-Learning: Learning Fast Without a
Model", arXiv:2101.05982, 2021 (Algorithm 1).

An ensemble of N = ensemble_size critics, held as one vectorized module (stacked weights, one
batched matmul per layer). Each critic update draws a fresh random subset M of subset_size
members for the target (Alg. 1, line 6-7):
    a' ~ pi(.|s'),   y = R^(n) + gamma^n ( reduce_{i in M} Q'_i(s', a') - alpha log pi(a'|s') )
reduce is min (target_mode "min", the paper) or mean ("mean"). Every critic regresses on y
(line 8); targets are Polyak-averaged (tau, line 9). The policy is updated once every
actor_delay critic updates with the mean of ALL critics (line 11):
    J_pi = E_s[ alpha log pi(a~|s) - (1/N) sum_i Q_i(s, a~) ],  a~ ~ pi(.|s) reparametrized
alpha is fixed, or auto-tuned towards the target entropy -|A|:
    J_alpha = E[ -log alpha * (log pi(a~|s) + target_entropy) ]
Actions live in [-1, 1] inside the networks (action_scaling) and are mapped to the env's bounds
with action_bound_method clip.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Literal

import torch

from bench.algos.base import (
    Algorithm,
    Count,
    Fraction,
    NonNegative,
    Positive,
    Size,
    Widths,
    register,
)
from bench.errors import BenchError
from bench.nets import MLP, TanhGaussianActor, adam, critic_values, init_members, soft_update
from bench.types import Batch, EnvInfo


@dataclass
class REDQConfig:
    ensemble_size: Size = 10
    """N, the number of critics."""
    subset_size: Size = 2
    """M, critics drawn at random for each target."""
    tau: Fraction = 0.005
    """Polyak rate of the target critics."""
    gamma: Fraction = 0.99
    """Discount factor."""
    alpha: Positive = 0.2
    """Entropy temperature (the starting value when auto_alpha)."""
    auto_alpha: bool = False
    """Tune alpha towards target entropy -|A|."""
    estimation_step: Count = 1
    """n of the n-step return target."""
    actor_delay: Count = 20
    """Critic updates per policy (and alpha) update."""
    target_mode: Literal["min", "mean"] = "min"
    """How the subset's target values are reduced."""
    exploration_noise: NonNegative = 0.1
    """Gaussian sigma added to sampled actions during online collection (unit box)."""
    deterministic_eval: bool = True
    """Evaluate with tanh(mean) instead of sampling."""
    action_bound_method: Literal["clip", "tanh"] = "clip"
    """How actions outside [-1, 1] are bounded before scaling to the env's range."""
    actor_lr: Positive = 1e-3
    """Adam learning rate of the policy."""
    critic_lr: Positive = 1e-3
    """Adam learning rate of the critics."""
    alpha_lr: Positive = 3e-4
    """Adam learning rate of log alpha."""
    hidden_sizes: Widths = (256, 256)
    """MLP hidden layers of the actor and of every critic."""

    def validate(self) -> None:
        if self.subset_size > self.ensemble_size:
            raise BenchError(
                f"redq.subset_size must be at most ensemble_size ({self.ensemble_size}), "
                f"got {self.subset_size}"
            )


def subset_target(q_next: torch.Tensor, subset: torch.Tensor, mode: str) -> torch.Tensor:
    """Reduce the subset's target values: q_next [..., N, B], subset [..., M] member indices
    -> [..., B]."""
    idx = subset.unsqueeze(-1).expand(*subset.shape, q_next.shape[-1])
    q = q_next.gather(-2, idx)
    return q.min(-2).values if mode == "min" else q.mean(-2)


def redq_target(
    ret: torch.Tensor,
    discount: torch.Tensor,
    q_next: torch.Tensor,
    subset: torch.Tensor,
    log_prob_next: torch.Tensor,
    alpha: float | torch.Tensor,
    mode: str,
) -> torch.Tensor:
    """y = R + gamma^n (reduce_{i in M} Q'_i(s', a') - alpha log pi(a'|s')); alpha broadcasts
    against [..., B] (a float, or [..., 1])."""
    return ret + discount * (subset_target(q_next, subset, mode) - alpha * log_prob_next)


@register
class REDQ(Algorithm[REDQConfig]):
    name = "redq"
    version = 1  # bump when a change alters the numbers (see Algorithm.version)
    source = "Chen et al. 2021, arXiv:2101.05982; defaults: Tianshou REDQPolicy"
    Config = REDQConfig
    action_kinds = ("continuous",)

    def __init__(self, config: REDQConfig, info: EnvInfo, device="cpu", seeds=(0,)):
        super().__init__(config, info, device, seeds)
        obs_dim, act_dim, S = info.obs_shape[0], info.act_dim, self.num_seeds
        self.actor = TanhGaussianActor((S,), obs_dim, act_dim, config.hidden_sizes)
        self.critics = MLP((S, config.ensemble_size), obs_dim + act_dim, config.hidden_sizes, 1)
        init_members(self.seeds, self.actor, self.critics)
        self.actor.to(self.device)
        self.critics.to(self.device)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.log_alpha = torch.full(
            (S,), math.log(config.alpha), device=self.device, requires_grad=True
        )
        self.target_entropy = -float(act_dim)
        self.actor_optim = adam(self.actor.parameters(), config.actor_lr)
        self.critic_optim = adam(self.critics.parameters(), config.critic_lr)
        self.alpha_optim = adam([self.log_alpha], config.alpha_lr)
        # (actor_loss, alpha_loss) of the latest policy update, per seed
        self.last_actor = torch.zeros(S, 2, device=self.device)

    def modules(self):
        return {"actor": self.actor, "critics": self.critics, "critics_target": self.critics_target}

    def policy_modules(self):
        return {"actor": self.actor}

    def q_modules(self):
        return {"critics": self.critics}

    @torch.no_grad()
    def q_value(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """The ensemble's mean Q_i(s, a) (the paper's estimate in its bias analysis)."""
        return critic_values(self.critics, obs, self.action_scale.to_unit(act)).mean(1)

    def optimizers(self):
        return {"actor": self.actor_optim, "critic": self.critic_optim, "alpha": self.alpha_optim}

    def tensors(self):
        return {"log_alpha": self.log_alpha, "last_actor": self.last_actor}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        c = self.config
        self.num_updates += 1
        alpha = self.log_alpha.exp().detach()[:, None]  # [S, 1]
        act = self.action_scale.to_unit(batch.act)
        with torch.no_grad():
            a_next, logp_next = self.actor(batch.next_obs, self.rng)
            q_next = critic_values(self.critics_target, batch.next_obs, a_next)
            # a random subset of M members per seed (Alg. 1, line 6)
            subset = self.rng.uniform(c.ensemble_size).argsort(-1)[:, : c.subset_size]
            target = redq_target(
                batch.ret, batch.discount, q_next, subset, logp_next, alpha, c.target_mode
            )
        q = critic_values(self.critics, batch.obs, act)
        # each member's MSE, summed over members (independent regressions, Alg. 1 line 8)
        critic_loss = (q - target[:, None]).pow(2).mean(-1).sum(-1)
        self.critic_optim.zero_grad(set_to_none=True)
        critic_loss.sum().backward()  # the sum over seeds keeps each seed's gradient its own
        self.critic_optim.step()
        soft_update(self.critics_target, self.critics, c.tau)

        if self.num_updates % c.actor_delay == 0:
            self.last_actor = self._update_actor(batch.obs, alpha)
        return {
            "actor_loss": self.last_actor[:, 0],
            "critic_loss": critic_loss.detach() / c.ensemble_size,
            "alpha": self.log_alpha.exp().detach(),
            "alpha_loss": self.last_actor[:, 1],
        }

    def _update_actor(self, obs: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """The policy (and alpha) step; [S, 2]: (actor_loss, alpha_loss) per seed."""
        a, logp = self.actor(obs, self.rng)
        q_mean = critic_values(self.critics, obs, a).mean(1)  # (1/N) sum_i Q_i(s, a~)
        actor_loss = (alpha * logp - q_mean).mean(-1)
        self.actor_optim.zero_grad(set_to_none=True)
        actor_loss.sum().backward()
        self.actor_optim.step()
        alpha_loss = torch.zeros_like(actor_loss)
        if self.config.auto_alpha:
            alpha_loss = -(self.log_alpha[:, None] * (logp.detach() + self.target_entropy)).mean(-1)
            self.alpha_optim.zero_grad(set_to_none=True)
            alpha_loss.sum().backward()
            self.alpha_optim.step()
        return torch.stack([actor_loss.detach(), alpha_loss.detach()], -1)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, mask: torch.Tensor | None = None, deterministic: bool = False):
        """Evaluation: tanh(mean) when deterministic_eval, else a policy sample; env bounds."""
        det = deterministic or self.config.deterministic_eval
        a, _ = self.actor(obs, self.act_rng, deterministic=det)
        return self.action_scale.from_unit(a, self.config.action_bound_method)

    @torch.no_grad()
    def explore(self, obs: torch.Tensor) -> torch.Tensor:
        """Online collection: a policy sample plus Gaussian exploration_noise, in env bounds."""
        a, _ = self.actor(obs, self.act_rng)
        noise = self.act_rng.normal(*a.shape[1:])
        return self.action_scale.from_unit(a + self.config.exploration_noise * noise)
