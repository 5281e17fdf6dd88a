"""TD3+BC: TD3 with a behavior-cloning term in the actor loss.

Fujimoto, Gu. "A Minimalist Approach to Offline Reinforcement Learning", arXiv:2106.06860, 2021.

Critics (TD3, Fujimoto et al. 2018): two critics regress on the clipped double-Q target with
target policy smoothing,
    a' = clip(pi'(s') + clip(eps, -c, c), -1, 1),  eps ~ N(0, sigma^2)   (sigma = policy_noise,
    y  = R^(n) + gamma^n min_i Q'_i(s', a')                               c = noise_clip)
The actor is updated once every policy_freq critic updates (Eq. 3 of the paper):
    pi = argmax_pi E[ lambda Q_1(s, pi(s)) - (pi(s) - a)^2 ],  lambda = alpha / mean|Q_1(s, pi(s))|
with lambda computed on the batch and not differentiated; the targets of actor and critics
are Polyak-averaged (tau) on the same steps. States are normalized by the dataset's mean and
standard deviation (Sec. 5), the same normalization applied when acting.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from bench.algos.base import (
    Algorithm,
    Count,
    Fraction,
    NonNegative,
    ObsNormalizer,
    Positive,
    Widths,
    register,
)
from bench.nets import MLP, adam, critic_values, init_members, soft_update
from bench.types import Batch, EnvInfo


@dataclass
class TD3BCConfig:
    """Defaults: CORL algorithms/offline/td3_bc.py (TrainConfig), the file behind CORL's
    gym-MuJoCo tables; the same values as the paper's Table 5."""

    gamma: Fraction = 0.99
    """Discount factor."""
    tau: Fraction = 0.005
    """Polyak rate of the target actor and critics."""
    alpha: NonNegative = 2.5
    """alpha of lambda = alpha / mean|Q|: weight of the RL term against behavior cloning."""
    policy_noise: NonNegative = 0.2
    """sigma of the target policy smoothing noise (unit action box)."""
    noise_clip: NonNegative = 0.5
    """c: the smoothing noise is clipped to [-c, c]."""
    policy_freq: Count = 2
    """Critic updates per actor (and target) update."""
    normalize: bool = True
    """Normalize observations by the dataset's mean and std (eps 1e-3), when training and acting."""
    estimation_step: Count = 1
    """n of the n-step return target."""
    actor_lr: Positive = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: Positive = 3e-4
    """Adam learning rate of the critics."""
    hidden_sizes: Widths = (256, 256)
    """MLP hidden layers of the actor and of both critics."""


def td3_target(ret, discount, q1_next, q2_next) -> torch.Tensor:
    """y = R^(n) + gamma^n min(Q'_1, Q'_2) (0 after a termination): [..., B]."""
    return ret + discount * torch.minimum(q1_next, q2_next)


def smoothed_action(a_next: torch.Tensor, noise: torch.Tensor, sigma: float, clip: float):
    """Target policy smoothing: clip(a' + clip(sigma * eps, -c, c), -1, 1) in the unit box."""
    return (a_next + (sigma * noise).clamp(-clip, clip)).clamp(-1.0, 1.0)


def td3_bc_actor_loss(q: torch.Tensor, pi: torch.Tensor, act: torch.Tensor, alpha: float):
    """(actor_loss, bc_loss, lambda) over a batch: q [..., B], pi and act [..., B, A] -> [...].

    actor_loss = -lambda mean(Q) + mean((pi - a)^2),  lambda = alpha / mean|Q| (no gradient)."""
    lmbda = alpha / q.abs().mean(-1).detach()
    bc_loss = (pi - act).pow(2).mean((-2, -1))
    return -lmbda * q.mean(-1) + bc_loss, bc_loss, lmbda


@register
class TD3BC(Algorithm[TD3BCConfig]):
    name = "td3_bc"
    version = 1  # bump when a change alters the numbers (see Algorithm.version)
    Config = TD3BCConfig
    action_kinds = ("continuous",)
    source = "Fujimoto & Gu 2021, arXiv:2106.06860; defaults: CORL algorithms/offline/td3_bc.py"
    aliases = {  # d3rlpy's TD3PlusBCConfig names
        "target_smoothing_sigma": "policy_noise",
        "target_smoothing_clip": "noise_clip",
        "update_actor_interval": "policy_freq",
    }

    def __init__(self, config: TD3BCConfig, info: EnvInfo, device="cpu", seeds=(0,)):
        super().__init__(config, info, device, seeds)
        obs_dim, act_dim, S = info.obs_shape[0], info.act_dim, self.num_seeds
        self.actor = MLP((S,), obs_dim, config.hidden_sizes, act_dim)  # tanh applied in pi()
        self.critics = MLP((S, 2), obs_dim + act_dim, config.hidden_sizes, 1)
        init_members(self.seeds, self.actor, self.critics)
        self.actor.to(self.device)
        self.critics.to(self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.actor_optim = adam(self.actor.parameters(), config.actor_lr)
        self.critic_optim = adam(self.critics.parameters(), config.critic_lr)
        self.norm = ObsNormalizer(S, obs_dim, self.device, config.normalize)
        # (actor_loss, bc_loss) of the latest actor update, per seed
        self.last_actor = torch.zeros(S, 2, device=self.device)

    def fit_dataset(self, data) -> None:
        self.norm.fit(data)

    def modules(self):
        return {
            "actor": self.actor,
            "actor_target": self.actor_target,
            "critics": self.critics,
            "critics_target": self.critics_target,
        }

    def policy_modules(self):
        return {"actor": self.actor}

    def q_modules(self):
        return {"critics": self.critics}

    @torch.no_grad()
    def q_value(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Q_1(s, a), the critic the actor maximizes (Eq. 3)."""
        return critic_values(self.critics, self.norm(obs), self.action_scale.to_unit(act))[:, 0]

    def optimizers(self):
        return {"actor": self.actor_optim, "critic": self.critic_optim}

    def tensors(self):
        return self.norm.tensors() | {"last_actor": self.last_actor}

    def pi(self, actor, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic policy in the unit box: tanh(f(s))."""
        return torch.tanh(actor(obs))

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        c = self.config
        self.num_updates += 1
        obs, next_obs = self.norm(batch.obs), self.norm(batch.next_obs)
        act = self.action_scale.to_unit(batch.act)
        with torch.no_grad():
            noise = self.rng.normal(*act.shape[1:])
            a_next = smoothed_action(
                self.pi(self.actor_target, next_obs), noise, c.policy_noise, c.noise_clip
            )
            q_next = critic_values(self.critics_target, next_obs, a_next)
            target = td3_target(batch.ret, batch.discount, q_next[:, 0], q_next[:, 1])
        q = critic_values(self.critics, obs, act)
        critic_loss = (q - target[:, None]).pow(2).mean(-1).sum(-1)  # MSE of Q_1 plus of Q_2
        self.critic_optim.zero_grad(set_to_none=True)
        critic_loss.sum().backward()  # the sum over seeds keeps each seed's gradient its own
        self.critic_optim.step()

        if self.num_updates % c.policy_freq == 0:  # delayed actor and target updates
            pi = self.pi(self.actor, obs)
            q1 = self.critics.member(torch.cat([obs, pi], -1), 0).squeeze(-1)
            actor_loss, bc_loss, _ = td3_bc_actor_loss(q1, pi, act, c.alpha)
            self.actor_optim.zero_grad(set_to_none=True)
            actor_loss.sum().backward()
            self.actor_optim.step()
            soft_update(self.critics_target, self.critics, c.tau)
            soft_update(self.actor_target, self.actor, c.tau)
            self.last_actor = torch.stack([actor_loss.detach(), bc_loss.detach()], -1)
        return {
            "actor_loss": self.last_actor[:, 0],
            "critic_loss": critic_loss.detach(),
            "q_mean": q.detach()[:, 0].mean(-1),
            "bc_loss": self.last_actor[:, 1],
        }

    @torch.no_grad()
    def act(self, obs: torch.Tensor, mask: torch.Tensor | None = None, deterministic: bool = False):
        """The deterministic policy on normalized observations, mapped to the env's bounds."""
        return self.action_scale.from_unit(self.pi(self.actor, self.norm(obs)))
