"""Behavior cloning for discrete actions, as a plugin: cross-entropy -log pi(a|s)."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.algos.base import Algorithm, Fraction, Positive, Widths
from bench.nets import adam, init_members, obs_net


@dataclass
class TinyConfig:
    lr: Positive = 1e-3
    """Adam learning rate."""
    hidden_sizes: Widths = (64,)
    """MLP hidden layers."""
    gamma: Fraction = 0.99
    """Discount (every bench algorithm reports one; unused by the loss)."""


class TinyBC(Algorithm):
    name = "tiny_bc"
    action_kinds = ("discrete",)
    source = "a plugin: behavior cloning for discrete actions"
    Config = TinyConfig

    def __init__(self, config, info, device="cpu", seeds=(0,)):
        super().__init__(config, info, device, seeds)
        self.net = obs_net((self.num_seeds,), info.obs_shape, config.hidden_sizes, info.n_actions)
        init_members(self.seeds, self.net)
        self.net.to(self.device)
        self.optim = adam(self.net.parameters(), config.lr)

    def modules(self):
        return {"net": self.net}

    def optimizers(self):
        return {"optim": self.optim}

    def update(self, batch):
        self.num_updates += 1
        logp = F.log_softmax(self.net(batch.obs), -1)
        loss = -logp.gather(-1, batch.act.unsqueeze(-1)).squeeze(-1).mean(-1)  # [S]
        self.optim.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.optim.step()
        return {"loss": loss.detach()}

    @torch.no_grad()
    def act(self, obs, mask=None, deterministic=False):
        out = self.net(obs)
        if mask is not None:
            out = out.masked_fill(~mask, float("-inf"))
        return out.argmax(-1)


class Misnamed(TinyBC):
    name = "not_its_entry_point"
