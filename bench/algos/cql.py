"""Conservative Q-Learning (CQL), continuous actions: CQL(H) on top of SAC.

Kumar, Zhou, Tucker, Levine. "Conservative Q-Learning for Offline Reinforcement Learning",
arXiv:2006.04779, 2020 (Eq. 4, Appendix F).

Each of the two critics adds to its TD error (y = R^(n) + gamma^n min_i Q'_i(s', a'),
a' ~ pi(.|s')) the conservative penalty
    cql_alpha * ( cql_temp * logsumexp_a( Q(s, a) / cql_temp ) - Q(s, a_data) )
with the logsumexp over actions estimated by importance sampling (Appendix F): cql_n_actions
actions each from the uniform distribution on [-1, 1]^A, from pi(.|s) and from pi(.|s'), all
valued at s, each weighted by its sampling density:
    logsumexp_a Q(s, a) ~ logsumexp_j [ Q(s, a_j) - log mu(a_j) ],  log mu_unif = A log(1/2)
(the constant log of the sample count is dropped, as in the authors' code). With cql_lagrange,
the weight becomes alpha' * cql_alpha and alpha' >= 0 is tuned by dual gradient ascent so that the
penalty's gap stays near cql_target_action_gap (Eq. 30):
    max_{alpha'} alpha' cql_alpha (gap(Q) - cql_target_action_gap)
The policy is SAC's (Haarnoja et al. 2018), J_pi = E[alpha log pi(a~|s) - min_i Q_i(s, a~)], with
automatic entropy tuning towards -|A|. Observations are normalized by the dataset's statistics.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from bench.algos.base import (
    Algorithm,
    Count,
    Fraction,
    NonNegative,
    ObsNormalizer,
    Positive,
    Real,
    Size,
    Widths,
    register,
)
from bench.errors import BenchError
from bench.nets import MLP, TanhGaussianActor, adam, critic_values, init_members, soft_update
from bench.types import Batch, EnvInfo


@dataclass
class CQLConfig:
    """Defaults: CORL algorithms/offline/cql.py (TrainConfig) for gym-MuJoCo. Departures: layers
    use torch's default initialization (CORL: orthogonal, last layer scaled by 1e-2), no
    behavior-cloning warm-up (CORL's bc_steps is 0 for gym-MuJoCo too), cql_max_target_backup
    is not offered."""

    gamma: Fraction = 0.99
    """Discount factor."""
    tau: Fraction = 0.005
    """Polyak rate of the target critics (soft_target_update_rate)."""
    cql_alpha: NonNegative = 10.0
    """Weight of the conservative penalty (alpha in Eq. 4)."""
    cql_n_actions: Size = 10
    """Actions sampled per state from each of the three proposals (uniform, pi(s), pi(s'))."""
    cql_importance_sample: bool = True
    """Weight sampled actions by their densities (Appendix F); else a plain logsumexp that
    includes Q(s, a_data)."""
    cql_temp: Positive = 1.0
    """Temperature of the logsumexp."""
    cql_lagrange: bool = False
    """Tune the penalty's weight alpha' by dual gradient ascent towards cql_target_action_gap."""
    cql_target_action_gap: Real = -1.0
    """The gap the Lagrange version keeps the penalty at (threshold tau of Eq. 30)."""
    cql_clip_diff_min: Real | None = None
    """Lower clip of the penalty's gap per state (none: unclipped)."""
    cql_clip_diff_max: Real | None = None
    """Upper clip of the penalty's gap per state (none: unclipped)."""
    auto_alpha: bool = True
    """SAC's automatic entropy tuning towards -|A| (use_automatic_entropy_tuning)."""
    alpha_multiplier: NonNegative = 1.0
    """SAC's alpha = alpha_multiplier * exp(log alpha); log alpha starts at 0."""
    backup_entropy: bool = False
    """Subtract alpha log pi(a'|s') in the TD target (SAC's soft backup)."""
    normalize: bool = True
    """Normalize observations by the dataset's mean and std (eps 1e-3), when training and acting."""
    estimation_step: Count = 1
    """n of the n-step return target."""
    actor_lr: Positive = 3e-5
    """Adam learning rate of the policy (policy_lr)."""
    critic_lr: Positive = 3e-4
    """Adam learning rate of the critics (qf_lr)."""
    alpha_lr: Positive = 3e-5
    """Adam learning rate of SAC's log alpha (CORL: policy_lr)."""
    cql_alpha_lr: Positive = 3e-4
    """Adam learning rate of log alpha' (cql_lagrange; CORL: qf_lr)."""
    hidden_sizes: Widths = (256, 256, 256)
    """MLP hidden layers of the policy and of both critics."""

    def validate(self) -> None:
        lo, hi = self.cql_clip_diff_min, self.cql_clip_diff_max
        if lo is not None and hi is not None and lo > hi:
            raise BenchError("cql_clip_diff_min must not exceed cql_clip_diff_max")


def cql_logsumexp(
    q_rand: torch.Tensor,
    q_next: torch.Tensor,
    q_cur: torch.Tensor,
    q_data: torch.Tensor,
    logp_next: torch.Tensor,
    logp_cur: torch.Tensor,
    act_dim: int,
    temp: float,
    importance_sample: bool,
) -> torch.Tensor:
    """temp * logsumexp(Q / temp) over the sampled actions: q_* [..., B, N] (q_data [..., B],
    logp_* [..., B, N]) -> [..., B].

    Importance sampled (Appendix F): Q(s, a_j) - log mu(a_j), with mu the uniform density on
    [-1, 1]^A for random actions and pi's own density for the policy's. Otherwise the samples'
    values as they are, with Q(s, a_data) among them."""
    if importance_sample:
        log_uniform = act_dim * math.log(0.5)
        cat = torch.cat([q_rand - log_uniform, q_next - logp_next, q_cur - logp_cur], -1)
    else:
        cat = torch.cat([q_rand, q_data.unsqueeze(-1), q_next, q_cur], -1)
    return temp * torch.logsumexp(cat / temp, -1)


def cql_gap(lse: torch.Tensor, q_data: torch.Tensor, lo: float | None, hi: float | None):
    """The penalty's gap logsumexp - Q(s, a_data), clipped per state, averaged over the batch:
    [..., B] -> [...]."""
    gap = lse - q_data
    if lo is not None or hi is not None:
        gap = gap.clamp(lo, hi)
    return gap.mean(-1)


@register
class CQL(Algorithm[CQLConfig]):
    name = "cql"
    version = 1  # bump when a change alters the numbers (see Algorithm.version)
    Config = CQLConfig
    action_kinds = ("continuous",)
    source = "Kumar et al. 2020, arXiv:2006.04779; defaults: CORL algorithms/offline/cql.py"
    aliases = {  # CORL's, d3rlpy's and Tianshou's names
        "policy_lr": "actor_lr",
        "qf_lr": "critic_lr",
        "soft_target_update_rate": "tau",
        "conservative_weight": "cql_alpha",
        "cql_weight": "cql_alpha",
        "n_action_samples": "cql_n_actions",
        "num_repeat_actions": "cql_n_actions",
        "with_lagrange": "cql_lagrange",
        "lagrange_threshold": "cql_target_action_gap",
        "use_automatic_entropy_tuning": "auto_alpha",
    }

    def __init__(self, config: CQLConfig, info: EnvInfo, device="cpu", seeds=(0,)):
        super().__init__(config, info, device, seeds)
        obs_dim, act_dim, S = info.obs_shape[0], info.act_dim, self.num_seeds
        # CORL's policy starts narrow: log sigma offset by -1
        self.actor = TanhGaussianActor(
            (S,), obs_dim, act_dim, config.hidden_sizes, log_std_offset=-1.0
        )
        self.critics = MLP((S, 2), obs_dim + act_dim, config.hidden_sizes, 1)
        init_members(self.seeds, self.actor, self.critics)
        self.actor.to(self.device)
        self.critics.to(self.device)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.log_alpha = torch.zeros(S, device=self.device, requires_grad=True)
        self.log_alpha_cql = torch.ones(S, device=self.device, requires_grad=True)
        self.target_entropy = -float(act_dim)
        self.actor_optim = adam(self.actor.parameters(), config.actor_lr)
        self.critic_optim = adam(self.critics.parameters(), config.critic_lr)
        self.alpha_optim = adam([self.log_alpha], config.alpha_lr)
        self.alpha_cql_optim = adam([self.log_alpha_cql], config.cql_alpha_lr)
        self.norm = ObsNormalizer(S, obs_dim, self.device, config.normalize)

    def fit_dataset(self, data) -> None:
        self.norm.fit(data)

    def modules(self):
        return {"actor": self.actor, "critics": self.critics, "critics_target": self.critics_target}

    def policy_modules(self):
        return {"actor": self.actor}

    def q_modules(self):
        return {"critics": self.critics}

    @torch.no_grad()
    def q_value(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """min(Q_1, Q_2)(s, a), as in the policy objective."""
        obs, act = self.norm(obs), self.action_scale.to_unit(act)
        return critic_values(self.critics, obs, act).min(1).values

    def optimizers(self):
        return {
            "actor": self.actor_optim,
            "critic": self.critic_optim,
            "alpha": self.alpha_optim,
            "alpha_cql": self.alpha_cql_optim,
        }

    def tensors(self):
        return self.norm.tensors() | {
            "log_alpha": self.log_alpha,
            "log_alpha_cql": self.log_alpha_cql,
        }

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        c = self.config
        self.num_updates += 1
        obs, next_obs = self.norm(batch.obs), self.norm(batch.next_obs)
        act = self.action_scale.to_unit(batch.act)
        S, B, A = act.shape
        N = c.cql_n_actions

        # SAC policy and temperature, on the critics before this step's update
        alpha = (c.alpha_multiplier * self.log_alpha.exp()).detach()[:, None]  # [S, 1]
        a_new, logp = self.actor(obs, self.rng)
        actor_loss = (alpha * logp - critic_values(self.critics, obs, a_new).min(1).values).mean(-1)
        alpha_loss = -(self.log_alpha[:, None] * (logp.detach() + self.target_entropy)).mean(-1)

        with torch.no_grad():
            a_next, logp_next = self.actor(next_obs, self.rng)
            q_next = critic_values(self.critics_target, next_obs, a_next).min(1).values
            if c.backup_entropy:
                q_next = q_next - alpha * logp_next
            target = batch.ret + batch.discount * q_next
            # the penalty's proposals, cql_n_actions per state each, all valued at s
            obs_rep = obs.repeat_interleave(N, 1)  # [S, B*N, obs]
            a_rand = 2.0 * self.rng.uniform(B * N, A) - 1.0
            a_cur, logp_cur = self.actor(obs_rep, self.rng)
            a_nxt, logp_nxt = self.actor(next_obs.repeat_interleave(N, 1), self.rng)

        # one critic pass over the data's actions and the 3N proposals of every state
        x = torch.cat(
            [
                torch.cat([obs, act], -1),
                torch.cat([obs_rep.repeat(1, 3, 1), torch.cat([a_rand, a_nxt, a_cur], 1)], -1),
            ],
            1,
        )
        q_all = self.critics(x).squeeze(-1)  # [S, 2, B + 3BN]
        q_data = q_all[..., :B]
        q_rand, q_nxt, q_cur = q_all[..., B:].view(S, 2, 3, B, N).unbind(2)
        lse = cql_logsumexp(
            q_rand,
            q_nxt,
            q_cur,
            q_data,
            logp_nxt.view(S, 1, B, N),
            logp_cur.view(S, 1, B, N),
            A,
            c.cql_temp,
            c.cql_importance_sample,
        )
        gap = cql_gap(lse, q_data, c.cql_clip_diff_min, c.cql_clip_diff_max)  # [S, 2]
        td_loss = (q_data - target[:, None]).pow(2).mean(-1)  # [S, 2]
        if c.cql_lagrange:
            alpha_cql = self.log_alpha_cql.exp().clamp(0.0, 1e6) * c.cql_alpha  # [S]
            penalty = alpha_cql.detach()[:, None] * (gap - c.cql_target_action_gap)
            # dual ascent on alpha': maximize alpha' (gap - target gap), the gap held fixed
            alpha_cql_loss = -(alpha_cql[:, None] * (gap.detach() - c.cql_target_action_gap))
            alpha_cql_loss = alpha_cql_loss.mean(-1)
        else:
            alpha_cql = torch.full((S,), c.cql_alpha, device=self.device)
            penalty = c.cql_alpha * gap
        critic_loss = (td_loss + penalty).sum(-1)

        if c.auto_alpha:
            self.alpha_optim.zero_grad(set_to_none=True)
            alpha_loss.sum().backward()  # the sum over seeds keeps each seed's gradient its own
            self.alpha_optim.step()
        self.actor_optim.zero_grad(set_to_none=True)
        actor_loss.sum().backward()
        self.actor_optim.step()
        self.critic_optim.zero_grad(set_to_none=True)  # drops the actor loss's critic gradients
        critic_loss.sum().backward()
        self.critic_optim.step()
        if c.cql_lagrange:
            self.alpha_cql_optim.zero_grad(set_to_none=True)
            alpha_cql_loss.sum().backward()
            self.alpha_cql_optim.step()
        soft_update(self.critics_target, self.critics, c.tau)
        return {
            "actor_loss": actor_loss.detach(),
            "critic_loss": td_loss.detach().sum(-1),
            "cql_loss": gap.detach().mean(-1),
            "alpha": alpha[:, 0],
            "alpha_cql": alpha_cql.detach(),
        }

    @torch.no_grad()
    def act(self, obs: torch.Tensor, mask: torch.Tensor | None = None, deterministic: bool = False):
        """tanh of the policy's mean on normalized observations, mapped to the env's bounds."""
        a, _ = self.actor(self.norm(obs), deterministic=True)
        return self.action_scale.from_unit(a)
