"""Learned behaviors that act the same on every CPU.

A float32 network's last bits depend on the CPU's kernels (AVX2, AVX-512, AMX: different
summation orders and fused operations), and a simulator amplifies them: two machines that
build the same card from the same checkpoint would collect different datasets. So a behavior
checkpoint acts through ExactPolicy:

- the policy networks run in float64 (cross-CPU differences near 1e-16 relative);
- the acting noise eps is drawn in float64 from numpy's own generator (bench.seeding), not
  torch's;
- the action (unit box [-1, 1]) or the logits are rounded to a grid of ACTION_GRID, eleven
  orders of magnitude coarser than those differences, before anything reaches the env.

Two machines then disagree on an action only when a float64 value lands within about 1e-16
of a grid boundary: about 1e-12 per action dimension, or 1e-6 for a million-step build of
six-dimensional actions. The content hash a card records (bench.data.identity) catches it
if it ever happens.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from bench.errors import DatasetError
from bench.nets import TanhGaussianActor

#: The rounding grid of actions in the unit box (and of logits): 2^-12, exact in float32.
ACTION_GRID = 2.0**-12


def to_grid(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest multiple of ACTION_GRID (ties to even)."""
    return torch.round(x / ACTION_GRID) * ACTION_GRID


class ExactPolicy:
    """The acting networks of a loaded algorithm (one seed), in float64, acting on a numpy
    batch: tanh-Gaussian actors (REDQ: a = tanh(mu + sigma eps), Haarnoja et al. 2018 Eq. 21)
    or logits actors (Discrete SAC: a ~ softmax(logits))."""

    def __init__(self, algo, deterministic: bool, noise: np.random.Generator):
        modules = algo.policy_modules()
        if set(modules) != {"actor"}:
            raise DatasetError(
                f"a '{algo.name}' checkpoint cannot act as a behavior: it has no single actor"
            )
        self.actor = copy.deepcopy(modules["actor"]).double().eval()
        self.deterministic, self.noise = deterministic, noise
        self.gaussian = isinstance(self.actor, TanhGaussianActor)
        self.space = algo.info.action_space
        if self.gaussian:  # the env's box, as the algorithm's ActionScale maps it
            low = np.asarray(self.space.low, np.float64)
            high = np.asarray(self.space.high, np.float64)
            self.mid, self.half = (high + low) / 2, (high - low) / 2

    @torch.no_grad()
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(obs, dtype=np.float64))[None]  # [1 seed, n, obs]
        if self.gaussian:
            return self._continuous(x)
        return self._discrete(x)

    def _continuous(self, x: torch.Tensor) -> np.ndarray:
        mu, log_std = self.actor.distribution(x)
        u = mu[0]
        if not self.deterministic:
            eps = torch.from_numpy(self.noise.standard_normal(u.shape))
            u = u + log_std[0].exp() * eps
        unit = to_grid(torch.tanh(u)).clamp(-1.0, 1.0).numpy()  # on the grid, in [-1, 1]
        return (self.mid + self.half * unit).astype(self.space.dtype)

    def _discrete(self, x: torch.Tensor) -> np.ndarray:
        logits = to_grid(self.actor(x)[0])  # [n, A]
        if self.deterministic:
            return logits.argmax(-1).numpy().astype(np.int64)  # first maximum on a tie
        cdf = torch.softmax(logits, -1).cumsum(-1).numpy()
        u = self.noise.random(len(cdf))[:, None] * cdf[:, -1:]
        return np.minimum((cdf <= u).sum(-1), cdf.shape[1] - 1).astype(np.int64)
