"""Batch-Constrained deep Q-learning (BCQ), continuous actions.

Fujimoto, Meger, Precup. "Off-Policy Deep Reinforcement Learning without Exploration",
arXiv:1812.02900, 2019 (Algorithm 1).

A conditional VAE G(a|s) models the behavior's actions; a perturbation model xi_phi(s, a)
nudges its samples within [-phi, phi] (phi = Phi in the paper, in unit action space); two
critics are trained with the clipped double-Q mix (Eq. 13):
    y = R^(n) + gamma^n max_{a_j} [ lmbda min_i Q'_i(s', a_j) + (1 - lmbda) max_i Q'_i(s', a_j) ]
over num_sampled_action actions a_j = a~_j + xi'(s', a~_j), a~_j ~ G(.|s'). The VAE loss is
reconstruction plus KL (Eq. 28-30 of the appendix; half-weighted KL as in the reference):
    vae_loss = ||a - D(s, z)||^2 + 1/2 KL(N(mu, sigma) || N(0, 1)),  z = mu + sigma * eps
The perturbation model maximizes Q_1(s, a~ + xi(s, a~)) (Eq. 11). Acting (Eq. 10) samples
forward_sampled_times actions per state and takes the best under Q_1, for the whole batch of
observations at once. Targets of critics and actor are Polyak-averaged (tau).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from torch import nn

from bench.algos.base import (
    MAX_WIDTH,
    Algorithm,
    Count,
    Fraction,
    In,
    NonNegative,
    Positive,
    Size,
    Widths,
    register,
)
from bench.nets import MLP, adam, critic_values, init_members, soft_update
from bench.seeding import SeedStreams
from bench.types import Batch, EnvInfo


@dataclass
class BCQConfig:
    gamma: Fraction = 0.99
    """Discount factor."""
    tau: Fraction = 0.005
    """Polyak rate of the target critics and perturbation actor."""
    lmbda: Fraction = 0.75
    """lambda of the clipped double-Q mix (Eq. 13)."""
    phi: NonNegative = 0.05
    """Phi: the perturbation's bound, as a fraction of the action range (unit box)."""
    num_sampled_action: Size = 10
    """VAE samples per next state for the target."""
    forward_sampled_times: Size = 100
    """VAE samples per state when acting."""
    estimation_step: Count = 1
    """n of the n-step return target."""
    action_scaling: bool = True
    """Networks act in [-1, 1]; actions are mapped to the env's bounds."""
    action_bound_method: Literal["clip", "tanh"] = "clip"
    """How actions are bounded before scaling."""
    actor_lr: Positive = 1e-3
    """Adam learning rate of the perturbation model (the reference's D4RL example)."""
    critic_lr: Positive = 1e-3
    """Adam learning rate of the critics."""
    vae_lr: Positive = 1e-3
    """Adam learning rate of the VAE."""
    hidden_sizes: Widths = (256, 256)
    """MLP hidden layers of the perturbation model and critics."""
    vae_hidden_sizes: Widths = (512, 512)
    """MLP hidden layers of the VAE's encoder and decoder."""
    latent_dim: Annotated[int, In(f"0..{MAX_WIDTH}")] = 0
    """VAE latent size; 0 means 2 * action dimension (the reference's choice)."""


class VAE(nn.Module):
    """Conditional VAE: encode (s, a) -> (mu, sigma); decode (s, z) -> a in [-1, 1].
    Per seed: [S, B, ...] in, [S, B, ...] out; the noise comes from the seeds' streams."""

    LOG_STD_MIN, LOG_STD_MAX = -4.0, 15.0

    def __init__(self, members, obs_dim: int, act_dim: int, hidden, latent_dim: int):
        super().__init__()
        self.encoder = MLP(members, obs_dim + act_dim, hidden, 2 * latent_dim)
        self.decoder = MLP(members, obs_dim + latent_dim, hidden, act_dim)
        self.latent_dim = latent_dim

    def forward(self, obs, act, rng: SeedStreams):
        """(reconstruction, mu, sigma)."""
        mu, log_std = self.encoder(torch.cat([obs, act], -1)).chunk(2, -1)
        std = log_std.clamp(self.LOG_STD_MIN, self.LOG_STD_MAX).exp()
        z = mu + std * rng.normal(*std.shape[1:])
        return self.decode(obs, rng, z), mu, std

    def decode(self, obs, rng: SeedStreams, z=None):
        """Decode; without z, sample z ~ N(0, 1) clipped to [-0.5, 0.5] (the paper's choice)."""
        if z is None:
            z = rng.normal(*obs.shape[1:-1], self.latent_dim).clamp(-0.5, 0.5)
        return torch.tanh(self.decoder(torch.cat([obs, z], -1)))


class Perturbation(nn.Module):
    """xi_phi(s, a): a + phi * tanh(f(s, a)), clipped to [-1, 1]."""

    def __init__(self, members, obs_dim: int, act_dim: int, hidden, phi: float):
        super().__init__()
        self.net = MLP(members, obs_dim + act_dim, hidden, act_dim)
        self.phi = phi

    def forward(self, obs, act):
        return (act + self.phi * torch.tanh(self.net(torch.cat([obs, act], -1)))).clamp(-1.0, 1.0)


def vae_loss_terms(recon, act, mu, std) -> tuple[torch.Tensor, torch.Tensor]:
    """(reconstruction MSE, KL(N(mu, std) || N(0, 1))), each averaged over the batch and the
    action or latent dimensions: [..., B, d] -> [...]."""
    recon_loss = (recon - act).pow(2).mean((-2, -1))
    kl = (-torch.log(std) + (std.pow(2) + mu.pow(2)) / 2 - 0.5).mean((-2, -1))
    return recon_loss, kl


def clipped_double_q(q1: torch.Tensor, q2: torch.Tensor, lmbda: float) -> torch.Tensor:
    """Eq. 13: lmbda * min(q1, q2) + (1 - lmbda) * max(q1, q2)."""
    return lmbda * torch.minimum(q1, q2) + (1 - lmbda) * torch.maximum(q1, q2)


def bcq_continuous_target(ret, discount, q1, q2, lmbda: float) -> torch.Tensor:
    """q1, q2: [..., B, K] target values of K sampled next actions -> y [..., B] (max over K)."""
    return ret + discount * clipped_double_q(q1, q2, lmbda).max(-1).values


@register
class BCQ(Algorithm[BCQConfig]):
    name = "bcq"
    version = 1  # bump when a change alters the numbers (see Algorithm.version)
    source = "Fujimoto, Meger & Precup 2019, arXiv:1812.02900; defaults: Tianshou BCQPolicy"
    Config = BCQConfig
    action_kinds = ("continuous",)

    def __init__(self, config: BCQConfig, info: EnvInfo, device="cpu", seeds=(0,)):
        super().__init__(config, info, device, seeds)
        obs_dim, act_dim, S = info.obs_shape[0], info.act_dim, self.num_seeds
        latent = config.latent_dim or 2 * act_dim
        self.vae = VAE((S,), obs_dim, act_dim, config.vae_hidden_sizes, latent)
        self.actor = Perturbation((S,), obs_dim, act_dim, config.hidden_sizes, config.phi)
        # critic and critic2 of each seed as one 2-member ensemble
        self.critics = MLP((S, 2), obs_dim + act_dim, config.hidden_sizes, 1)
        init_members(self.seeds, self.vae, self.actor, self.critics)
        for m in (self.vae, self.actor, self.critics):
            m.to(self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.vae_optim = adam(self.vae.parameters(), config.vae_lr)
        self.actor_optim = adam(self.actor.parameters(), config.actor_lr)
        self.critic_optim = adam(self.critics.parameters(), config.critic_lr)

    def modules(self):
        return {
            "vae": self.vae,
            "actor": self.actor,
            "actor_target": self.actor_target,
            "critics": self.critics,
            "critics_target": self.critics_target,
        }

    def policy_modules(self):
        return {"vae": self.vae, "actor": self.actor, "critics": self.critics}

    @torch.no_grad()
    def q_value(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Q_1(s, a), the critic that picks among the perturbed samples."""
        return critic_values(self.critics, obs, self._unit(act))[:, 0]

    def optimizers(self):
        return {"vae": self.vae_optim, "actor": self.actor_optim, "critic": self.critic_optim}

    def _unit(self, act: torch.Tensor) -> torch.Tensor:
        return self.action_scale.to_unit(act) if self.config.action_scaling else act

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        c = self.config
        self.num_updates += 1
        obs, act = batch.obs, self._unit(batch.act)

        # VAE: reconstruction + KL / 2
        recon, mu, std = self.vae(obs, act, self.rng)
        recon_loss, kl = vae_loss_terms(recon, act, mu, std)
        vae_loss = recon_loss + kl / 2
        self.vae_optim.zero_grad(set_to_none=True)
        vae_loss.sum().backward()  # sums over seeds keep each seed's gradient its own
        self.vae_optim.step()

        # critics: clipped double-Q over K sampled next actions (Eq. 13)
        with torch.no_grad():
            S, B, K = obs.shape[0], obs.shape[1], c.num_sampled_action
            next_rep = batch.next_obs.repeat_interleave(K, 1)  # [S, B*K, obs]
            a_next = self.actor_target(next_rep, self.vae.decode(next_rep, self.rng))
            q_next = critic_values(self.critics_target, next_rep, a_next).view(S, 2, B, K)
            target = bcq_continuous_target(
                batch.ret, batch.discount, q_next[:, 0], q_next[:, 1], c.lmbda
            )
        q = critic_values(self.critics, obs, act)
        critic1_loss = (q[:, 0] - target).pow(2).mean(-1)
        critic2_loss = (q[:, 1] - target).pow(2).mean(-1)
        self.critic_optim.zero_grad(set_to_none=True)
        (critic1_loss + critic2_loss).sum().backward()
        self.critic_optim.step()

        # perturbation model: maximize Q_1(s, a~ + xi(s, a~)) (Eq. 11)
        sampled = self.vae.decode(obs, self.rng).detach()
        perturbed = self.actor(obs, sampled)
        actor_loss = -self.critics.member(torch.cat([obs, perturbed], -1), 0).mean((-2, -1))
        self.actor_optim.zero_grad(set_to_none=True)
        actor_loss.sum().backward()
        self.actor_optim.step()

        soft_update(self.critics_target, self.critics, c.tau)
        soft_update(self.actor_target, self.actor, c.tau)
        stats = (actor_loss, critic1_loss, critic2_loss, vae_loss)
        names = ("actor_loss", "critic1_loss", "critic2_loss", "vae_loss")
        return {k: v.detach() for k, v in zip(names, stats, strict=True)}

    @torch.no_grad()
    def act(self, obs: torch.Tensor, mask: torch.Tensor | None = None, deterministic: bool = False):
        """Eq. 10 for the whole batch: sample K actions per state, perturb, keep the best Q_1.

        The samples come from the seeds' acting streams; deterministic=True restarts fresh
        streams per call, so the same observations always give the same actions."""
        rng = SeedStreams(self.seeds, self.device, "act-fixed") if deterministic else self.act_rng
        S, N, K = obs.shape[0], obs.shape[1], self.config.forward_sampled_times
        rep = obs.repeat_interleave(K, 1)  # [S, N*K, obs]
        cand = self.actor(rep, self.vae.decode(rep, rng))
        q1 = self.critics.member(torch.cat([rep, cand], -1), 0).view(S, N, K)
        pick = q1.argmax(-1)[..., None, None].expand(S, N, 1, cand.shape[-1])
        best = cand.view(S, N, K, -1).gather(2, pick).squeeze(2)
        if not self.config.action_scaling:
            return best
        return self.action_scale.from_unit(best, self.config.action_bound_method)
