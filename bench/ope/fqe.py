"""Fitted Q Evaluation (Le, Voloshin and Yue, "Batch Policy Learning under Constraints", ICML
2019), as used for offline policy selection by Paine et al. ("Hyperparameter Selection for
Offline Reinforcement Learning", 2020, arXiv:2007.09055).

For a fixed policy pi, regress Q on the dataset toward the policy's Bellman target:

    y = r + gamma * (1 - terminal) * Q'(s', pi(s'))                          (FQE target)
    L(theta) = E_(s,a,r,s')~D [ (Q_theta(s, a) - y)^2 ]      (or the Huber loss of the error)
    Q' <- Q every target_update_interval updates (hard copy)

and estimate the policy's value as the mean over the dataset's initial states

    V_hat(pi) = E_(s0 in D) [ Q(s0, pi(s0)) ]                                (the estimate)

Many candidates at once: the candidate is the member dimension of the Q network (bench.nets),
each with its own initialization and batch stream, so C candidates are one training of stacked
networks. pi(s) is each candidate's deterministic action, computed once for every observation
of the dataset. Defaults follow d3rlpy's FQEConfig (lr 1e-4, batch 100, target copy every 100).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.algos.base import ObsNormalizer
from bench.errors import BenchError
from bench.nets import MLP, ActionScale, adam, hard_update, init_members, is_image, obs_net
from bench.progress import progress_bar
from bench.seeding import SeedStreams

#: FQE's implementation version, in every estimate's settings (the selection table's settings
#: column): bump it when a change alters FQE's numbers
FQE_VERSION = 1
#: FQE's seeds: candidate i of FQE seed k uses SEED_STRIDE * k + i.
SEED_STRIDE = 1_000_000
#: The regression losses FQE can fit with.
LOSSES = ("mse", "huber")


@dataclass
class FQEConfig:
    gamma: float = 0.99
    """gamma, the discount of the estimated value (the evaluations record returns at 0.99)."""
    lr: float = 1e-4
    """Adam learning rate of Q."""
    batch_size: int = 100
    """Transitions per update, per candidate."""
    target_update_interval: int = 100
    """Hard copy of Q into Q' every this many updates."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """MLP of Q for vector observations (stacked frames: the Nature CNN and one 512 layer)."""
    steps: int = 10_000
    """Updates of every candidate's Q."""
    seed: int = 0
    """k: candidate i is initialized and sampled from seed SEED_STRIDE * k + i."""
    loss: str = "mse"
    """The regression loss: "mse", the squared error of the equation above, or "huber" (the
    error squared and halved within 1, linear beyond), which d3rlpy's DiscreteFQE uses."""

    def validate(self) -> None:
        if not 0.0 <= self.gamma < 1.0:
            raise BenchError(f"FQE gamma must be in [0, 1), got {self.gamma}")
        for name in ("batch_size", "target_update_interval", "steps"):
            if getattr(self, name) < 1:
                raise BenchError(f"FQE {name} must be positive, got {getattr(self, name)}")
        if not self.lr > 0:
            raise BenchError(f"FQE lr must be positive, got {self.lr}")
        if self.loss not in LOSSES:
            raise BenchError(f"FQE loss must be one of: {', '.join(LOSSES)}; got '{self.loss}'")


class FQE:
    """Q functions of C candidate policies, trained together on one dataset."""

    def __init__(self, config: FQEConfig, data, info, device, candidates: list[int]):
        """candidates: the candidates' indices (they pick each one's seed, so a candidate's
        estimate does not depend on which others train beside it)."""
        config.validate()
        self.config, self.data, self.info = config, data, info
        self.device = torch.device(device)
        C = len(candidates)
        self.seeds = [SEED_STRIDE * config.seed + i for i in candidates]
        obs_shape = data.obs_shape
        if info.discrete:  # Q(s, .) for every action, as the algorithms' discrete critics
            self.q = obs_net((C,), obs_shape, config.hidden_sizes, int(info.action_space.n))
            self.action_scale = None
        else:  # Q([s | a]) with a in the unit box
            self.q = MLP((C,), obs_shape[0] + info.action_space.shape[0], config.hidden_sizes, 1)
            self.action_scale = ActionScale(
                info.action_space.low, info.action_space.high, self.device
            )
        init_members(self.seeds, self.q)
        self.q.to(self.device)
        self.q_target = self._copy()
        self.optim = adam(self.q.parameters(), config.lr)
        self.norm = ObsNormalizer(C, obs_shape[0], self.device, enabled=not is_image(obs_shape))
        self.norm.fit(data)
        self.streams = SeedStreams(self.seeds, self.device, "fqe")

    def _copy(self):
        target = copy.deepcopy(self.q)
        target.requires_grad_(False)
        return target

    def values(self, net, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Q(s, a): obs [C, B, *obs], act [C, B] or [C, B, act_dim] -> [C, B]."""
        obs = obs if obs.dtype == torch.uint8 else self.norm(obs.float())
        if self.action_scale is None:
            return net(obs).gather(-1, act.long().unsqueeze(-1)).squeeze(-1)
        return net(torch.cat([obs, self.action_scale.to_unit(act)], -1)).squeeze(-1)

    def fit(self, pi_rows: torch.Tensor, show_progress: bool = False, title: str = "FQE") -> list:
        """Train on the dataset; pi_rows [C, n_obs(, act_dim)] is each candidate's action at
        every obs row. Returns the mean loss per candidate of the last 100 updates."""
        c, d = self.config, self.data
        C, B, N = len(self.seeds), c.batch_size, len(d)
        members = torch.arange(C, device=self.device)[:, None]
        losses = torch.zeros(C, device=self.device)
        with progress_bar(title, c.steps, show_progress) as (advance, _):
            for step in range(c.steps):
                if step % c.target_update_interval == 0:
                    hard_update(self.q_target, self.q)
                idx = self.streams.integers(N, B)  # [C, B], each candidate's own stream
                rows = d.obs_index[idx]
                obs = d.observations(rows.reshape(-1)).view(C, B, *d.obs_shape)
                nxt = d.observations((rows + 1).reshape(-1)).view(C, B, *d.obs_shape)
                with torch.no_grad():  # y = r + gamma (1 - terminal) Q'(s', pi(s'))
                    q_next = self.values(self.q_target, nxt, pi_rows[members, rows + 1])
                    y = d.rew[idx].float() + c.gamma * (~d.terminated[idx]).float() * q_next
                err = self.values(self.q, obs, d.act[idx]) - y
                if c.loss == "huber":
                    loss = F.smooth_l1_loss(err, torch.zeros_like(err), reduction="none")
                else:
                    loss = err.pow(2)
                loss = loss.mean(-1)  # [C]
                self.optim.zero_grad(set_to_none=True)
                loss.sum().backward()  # candidates' losses are independent: each its gradient
                self.optim.step()
                if step >= c.steps - 100:
                    losses += loss.detach()
                if (step + 1) % 100 == 0 or step + 1 == c.steps:
                    advance(100 if (step + 1) % 100 == 0 else c.steps % 100)
        return (losses / min(100, c.steps)).tolist()

    @torch.no_grad()
    def estimate(self, s0_rows: torch.Tensor, pi_rows: torch.Tensor) -> torch.Tensor:
        """V_hat = mean over initial states of Q(s0, pi(s0)), per candidate: [C]."""
        C, total = len(self.seeds), torch.zeros(len(self.seeds), device=self.device)
        members = torch.arange(C, device=self.device)[:, None]
        for i in range(0, len(s0_rows), 4096):
            r = s0_rows[i : i + 4096]
            obs = self.data.observations(r)
            q = self.values(self.q, obs.expand(C, *obs.shape), pi_rows[members, r[None]])
            total += q.sum(1)
        return total / len(s0_rows)


def settings(config: FQEConfig) -> str:
    """The FQE settings that decide an estimate, its version first, as one line (stored with
    the results)."""
    fields = {"version": FQE_VERSION} | dataclasses.asdict(config)
    return " ".join(f"{k}={v}" for k, v in fields.items())


def settings_version(text: str) -> int | None:
    """The FQE version a settings line records (None: written before FQE had a version)."""
    first = str(text).split(" ", 1)[0]
    name, _, value = first.partition("=")
    return int(value) if name == "version" and value.isdigit() else None
