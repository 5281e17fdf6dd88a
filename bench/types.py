"""The shared vocabulary of bench: what an environment is (EnvSpec), what an algorithm knows of
it (EnvInfo), and one training batch (Batch). Imports nothing of bench, so every layer can."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch


@dataclass(frozen=True)
class EnvSpec:
    """The environment a dataset was collected on and is evaluated on."""

    id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: gymnasium AtariPreprocessing kwargs (frame skip, 84x84 grayscale, no-op starts), when the
    #: env is an Atari game; the env itself must then be made with frameskip=1.
    atari: dict[str, Any] | None = None
    #: Observations the agent sees stack this many consecutive frames (FrameStackObservation,
    #: padded at reset with the first frame). Datasets store each frame once; the loader
    #: gathers the same stacks at sample time.
    frame_stack: int = 1


@dataclass(frozen=True)
class EnvInfo:
    """What an algorithm needs to know about the task: observation shape and action space."""

    obs_shape: tuple[int, ...]
    action_space: gym.Space

    @property
    def discrete(self) -> bool:
        return isinstance(self.action_space, gym.spaces.Discrete)

    @property
    def n_actions(self) -> int:
        assert isinstance(self.action_space, gym.spaces.Discrete)
        return int(self.action_space.n)

    @property
    def box(self) -> gym.spaces.Box:
        """The continuous action space (its bounds)."""
        assert isinstance(self.action_space, gym.spaces.Box)
        return self.action_space

    @property
    def act_dim(self) -> int:
        return int(np.prod(self.box.shape))


@dataclass(frozen=True)
class Batch:
    """One training batch. Fixed fields; shapes in the comments (S = seeds trained together,
    B = batch size; a batch of the dataset itself, before the sampler stacks seeds, has no S)."""

    obs: torch.Tensor  # [S, B, *obs_shape]
    act: torch.Tensor  # [S, B] long (discrete) or [S, B, act_dim] float
    ret: torch.Tensor  # [S, B] n-step discounted reward sum
    next_obs: torch.Tensor  # [S, B, *obs_shape] the bootstrap observation s_{t+m}
    discount: torch.Tensor  # [S, B] gamma^m, 0 where the episode terminated in between
    mask: torch.Tensor | None = None  # [S, B, A] bool: legal actions at s_t, when the data has them
    next_mask: torch.Tensor | None = None  # [S, B, A] bool: legal actions at s_{t+m}

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        """fn applied to every tensor field (absent fields stay None)."""
        return dataclasses.replace(
            self, **{k: fn(v) for k, v in vars(self).items() if v is not None}
        )
