"""Behavior cloning: supervised imitation of the dataset's actions, the floor every offline
algorithm must beat (e.g. Fujimoto et al. 2019, arXiv:1812.02900, use it as a baseline).

Discrete actions: pi(.|s) = softmax(f(s)), loss = cross-entropy -log pi(a|s).
Continuous actions: a_hat = tanh(f(s)) in the unit box, loss = ||a_hat - a||^2 (mean squared error).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.algos.base import Algorithm, Fraction, Positive, Widths, register
from bench.nets import adam, init_members, obs_net
from bench.types import Batch, EnvInfo


@dataclass
class BCConfig:
    lr: Positive = 1e-3
    """Adam learning rate."""
    hidden_sizes: Widths = (256, 256)
    """MLP hidden layers (images: Nature CNN trunk, then one 512 layer)."""
    gamma: Fraction = 0.99
    """Unused by the loss; kept so every algorithm reports its discount."""


def bc_discrete_loss(logits: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """Cross-entropy: logits [..., B, A], act [..., B] -> mean over the batch [...]."""
    return -F.log_softmax(logits, -1).gather(-1, act.unsqueeze(-1)).squeeze(-1).mean(-1)


def bc_continuous_loss(pred_unit: torch.Tensor, act_unit: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the batch and the action dimensions: [..., B, A] -> [...]."""
    return (pred_unit - act_unit).pow(2).mean((-2, -1))


@register
class BC(Algorithm[BCConfig]):
    name = "bc"
    version = 1  # bump when a change alters the numbers (see Algorithm.version)
    source = "behavior cloning (the baseline of Fujimoto et al. 2019, arXiv:1812.02900)"
    Config = BCConfig

    def __init__(self, config: BCConfig, info: EnvInfo, device="cpu", seeds=(0,)):
        super().__init__(config, info, device, seeds)
        out = info.n_actions if info.discrete else info.act_dim
        self.net = obs_net((self.num_seeds,), info.obs_shape, config.hidden_sizes, out)
        init_members(self.seeds, self.net)
        self.net.to(self.device)
        self.optim = adam(self.net.parameters(), config.lr)

    def modules(self):
        return {"net": self.net}

    def optimizers(self):
        return {"optim": self.optim}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.num_updates += 1
        out = self.net(batch.obs)
        if self.info.discrete:
            loss = bc_discrete_loss(out, batch.act)
        else:
            loss = bc_continuous_loss(torch.tanh(out), self.action_scale.to_unit(batch.act))
        self.optim.zero_grad(set_to_none=True)
        loss.sum().backward()  # seeds' losses are independent: the sum keeps each gradient
        self.optim.step()
        return {"loss": loss.detach()}

    @torch.no_grad()
    def act(self, obs: torch.Tensor, mask: torch.Tensor | None = None, deterministic: bool = False):
        """The most likely action (discrete) or the predicted action (continuous)."""
        out = self.net(obs)
        if self.info.discrete:
            if mask is not None:
                out = out.masked_fill(~mask, float("-inf"))
            return out.argmax(-1)
        return self.action_scale.from_unit(torch.tanh(out))
