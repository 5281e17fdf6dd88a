"""Implicit Q-Learning (IQL).

Kostrikov, Nair, Levine. "Offline Reinforcement Learning with Implicit Q-Learning",
arXiv:2110.06169, 2021 (Algorithm 1).

Never queries an action outside the dataset. A value network fits an upper expectile of the
target critics' values on the data's actions (Eq. 5):
    L_V = E[ L_2^tau( min_i Q'_i(s, a) - V(s) ) ],  L_2^tau(u) = |tau - 1(u < 0)| u^2
both critics regress on the value of the next state (Eq. 6):
    L_Q = E[ (R^(n) + gamma^n V(s') - Q_i(s, a))^2 ]
and the policy is extracted by advantage-weighted regression (Eq. 7), with the exponentiated
advantage clipped at max_weight:
    L_pi = -E[ min(exp(beta (min_i Q'_i(s, a) - V(s))), max_weight) log pi(a|s) ]
The policy is a Gaussian with a tanh-squashed mean and a state-independent log std, evaluated
by its mean. Target critics are Polyak-averaged (tau). Observations are normalized by the
dataset's mean and std; rewards are scaled by 1000 / (max - min episode return of the dataset),
the scaling the paper uses for locomotion (Appendix B).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from bench.algos.base import (
    Algorithm,
    Count,
    Fraction,
    In,
    NonNegative,
    ObsNormalizer,
    Positive,
    Widths,
    register,
)
from bench.nets import MLP, adam, init_members, soft_update
from bench.types import Batch, EnvInfo


@dataclass
class IQLConfig:
    """Defaults: CORL algorithms/offline/iql.py with its gym-MuJoCo configs
    (configs/offline/iql/*/medium*_v2.yaml: beta 3.0, iql_tau 0.7). Departure: CORL decays the
    actor's learning rate with a cosine schedule over the run's length; here it is constant
    (an algorithm does not know its run's budget)."""

    gamma: Fraction = 0.99
    """Discount factor."""
    tau: Fraction = 0.005
    """Polyak rate of the target critics."""
    expectile: Annotated[float, In("(0, 1)")] = 0.7
    """tau of the expectile loss (Eq. 5); 0.5 is a mean, towards 1 a max over the data's actions."""
    beta: NonNegative = 3.0
    """Inverse temperature of the advantage weights exp(beta * A) (Eq. 7)."""
    max_weight: Positive = 100.0
    """Clip of the exponentiated advantage."""
    normalize: bool = True
    """Normalize observations by the dataset's mean and std (eps 1e-3), when training and acting."""
    normalize_reward: bool = True
    """Scale rewards by 1000 / (max - min episode return) of the dataset."""
    estimation_step: Count = 1
    """n of the n-step return target."""
    actor_lr: Positive = 3e-4
    """Adam learning rate of the policy."""
    critic_lr: Positive = 3e-4
    """Adam learning rate of the critics."""
    value_lr: Positive = 3e-4
    """Adam learning rate of the value network."""
    hidden_sizes: Widths = (256, 256)
    """MLP hidden layers of the policy, the critics and the value network."""


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """L_2^tau(u) = |tau - 1(u < 0)| u^2, averaged over the batch: [..., B] -> [...]."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff.pow(2)).mean(-1)


def awr_weights(adv: torch.Tensor, beta: float, max_weight: float) -> torch.Tensor:
    """min(exp(beta * A), max_weight), no gradient."""
    return torch.exp(beta * adv.detach()).clamp(max=max_weight)


def return_range_scale(returns, scale: float = 1000.0) -> float:
    """scale / (max - min episode return); 1 when the range is empty or not finite."""
    span = float(max(returns) - min(returns)) if len(returns) else 0.0
    return scale / span if span > 0 and math.isfinite(span) else 1.0


class GaussianPolicy(nn.Module):
    """pi(a|s) = N(tanh(f(s)), exp(log_std)^2), log_std a free parameter per action dimension
    (clipped to [-20, 2]); the mean is the evaluation action. [S, B, obs] in."""

    LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0

    def __init__(self, members, obs_dim: int, act_dim: int, hidden_sizes):
        super().__init__()
        self.net = MLP(members, obs_dim, hidden_sizes, act_dim)
        self.log_std = nn.Parameter(torch.zeros(*members, 1, act_dim))

    def mean(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs))

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """log N(a; mean(s), std): [S, B, A] -> [S, B]."""
        log_std = self.log_std.clamp(self.LOG_STD_MIN, self.LOG_STD_MAX)
        z = (act - self.mean(obs)) * torch.exp(-log_std)
        return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


@register
class IQL(Algorithm[IQLConfig]):
    name = "iql"
    version = 1  # bump when a change alters the numbers (see Algorithm.version)
    Config = IQLConfig
    action_kinds = ("continuous",)
    source = (
        "Kostrikov, Nair & Levine 2021, arXiv:2110.06169; defaults: CORL algorithms/offline/iql.py"
    )
    aliases = {"iql_tau": "expectile", "weight_temp": "beta", "exp_adv_max": "max_weight"}

    def __init__(self, config: IQLConfig, info: EnvInfo, device="cpu", seeds=(0,)):
        super().__init__(config, info, device, seeds)
        obs_dim, act_dim, S = info.obs_shape[0], info.act_dim, self.num_seeds
        self.actor = GaussianPolicy((S,), obs_dim, act_dim, config.hidden_sizes)
        self.critics = MLP((S, 2), obs_dim + act_dim, config.hidden_sizes, 1)
        self.value = MLP((S,), obs_dim, config.hidden_sizes, 1)
        init_members(self.seeds, self.actor, self.critics, self.value)
        for m in (self.actor, self.critics, self.value):
            m.to(self.device)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.actor_optim = adam(self.actor.parameters(), config.actor_lr)
        self.critic_optim = adam(self.critics.parameters(), config.critic_lr)
        self.value_optim = adam(self.value.parameters(), config.value_lr)
        self.norm = ObsNormalizer(S, obs_dim, self.device, config.normalize)
        #: the reward scale (1 until fitted on a dataset), per seed
        self.reward_scale = torch.ones(S, device=self.device)

    def fit_dataset(self, data) -> None:
        self.norm.fit(data)
        if self.config.normalize_reward:
            self.reward_scale.fill_(return_range_scale(data.episode_returns()))

    def modules(self):
        return {
            "actor": self.actor,
            "critics": self.critics,
            "critics_target": self.critics_target,
            "value": self.value,
        }

    def policy_modules(self):
        return {"actor": self.actor}

    def q_modules(self):
        return {"critics": self.critics}

    @torch.no_grad()
    def q_value(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """min(Q_1, Q_2)(s, a), back in return units (the critics learn scaled rewards)."""
        x = torch.cat([self.norm(obs), self.action_scale.to_unit(act)], -1)
        return self.critics(x).squeeze(-1).min(1).values / self.reward_scale[:, None]

    def optimizers(self):
        return {"actor": self.actor_optim, "critic": self.critic_optim, "value": self.value_optim}

    def tensors(self):
        return self.norm.tensors() | {"reward_scale": self.reward_scale}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        c = self.config
        self.num_updates += 1
        obs, next_obs = self.norm(batch.obs), self.norm(batch.next_obs)
        act = self.action_scale.to_unit(batch.act)
        # the n-step return is linear in the rewards: scaling it scales every reward
        ret = batch.ret * self.reward_scale[:, None]
        with torch.no_grad():
            next_v = self.value(next_obs).squeeze(-1)
            q_target = self.critics_target(torch.cat([obs, act], -1)).squeeze(-1).min(1).values

        # value: upper expectile of the target critics' values (Eq. 5)
        v = self.value(obs).squeeze(-1)
        adv = q_target - v
        value_loss = expectile_loss(adv, c.expectile)
        self.value_optim.zero_grad(set_to_none=True)
        value_loss.sum().backward()  # the sum over seeds keeps each seed's gradient its own
        self.value_optim.step()

        # critics: regress on R + gamma V(s') (Eq. 6)
        target = ret + batch.discount * next_v
        q = self.critics(torch.cat([obs, act], -1)).squeeze(-1)
        critic_loss = (q - target[:, None]).pow(2).mean(-1).sum(-1)
        self.critic_optim.zero_grad(set_to_none=True)
        critic_loss.sum().backward()
        self.critic_optim.step()
        soft_update(self.critics_target, self.critics, c.tau)

        # policy: advantage-weighted regression (Eq. 7)
        weights = awr_weights(adv, c.beta, c.max_weight)
        actor_loss = -(weights * self.actor.log_prob(obs, act)).mean(-1)
        self.actor_optim.zero_grad(set_to_none=True)
        actor_loss.sum().backward()
        self.actor_optim.step()
        return {
            "value_loss": value_loss.detach(),
            "critic_loss": critic_loss.detach(),
            "actor_loss": actor_loss.detach(),
            "adv_mean": adv.detach().mean(-1),
        }

    @torch.no_grad()
    def act(self, obs: torch.Tensor, mask: torch.Tensor | None = None, deterministic: bool = False):
        """The policy's mean on normalized observations, mapped to the env's bounds."""
        return self.action_scale.from_unit(self.actor.mean(self.norm(obs)))
