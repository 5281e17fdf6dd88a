"""Checks a dataset against the environment it will be evaluated on, before any training.

Every problem is one DatasetError line naming the dataset: shapes and dtypes against the eval
env's spaces, NaN/inf anywhere, actions outside the action space. (Empty datasets, episodes
without a final termination or truncation, and unreadable or incomplete files are caught while
loading, in OfflineData.from_episodes and minari_io.)
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from bench.data.data import OfflineData
from bench.errors import DatasetError


def validate(data: OfflineData, obs_space: gym.Space, act_space: gym.Space, name: str) -> None:
    def fail(problem: str):
        raise DatasetError(f"dataset {name}: {problem}")

    env_shape = tuple(obs_space.shape or ())
    if data.obs_shape != env_shape:
        fail(f"observations have shape {data.obs_shape}, the env's are {env_shape}")
    image_env = np.dtype(obs_space.dtype) == np.uint8
    if image_env != (data.obs.dtype == torch.uint8):
        fail(f"observations are {data.obs.dtype}, the env's are {obs_space.dtype}")
    for field, t in (("observations", data.obs), ("rewards", data.rew), ("actions", data.act)):
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            n = int((~torch.isfinite(t)).sum())
            fail(f"{n} NaN or infinite values in {field}")
    if isinstance(act_space, gym.spaces.Discrete):
        if data.act.is_floating_point() or data.act.dim() != 1:
            fail(
                f"actions are {data.act.dtype} {tuple(data.act.shape[1:])}, the env's are discrete"
            )
        lo, hi = int(data.act.min()), int(data.act.max())
        if lo < act_space.start or hi >= act_space.start + act_space.n:
            fail(f"actions span [{lo}, {hi}], outside the env's {act_space.n} discrete actions")
    elif isinstance(act_space, gym.spaces.Box):
        if tuple(data.act.shape[1:]) != tuple(act_space.shape):
            fail(f"actions have shape {tuple(data.act.shape[1:])}, the env's are {act_space.shape}")
        low = torch.as_tensor(act_space.low, dtype=data.act.dtype)
        high = torch.as_tensor(act_space.high, dtype=data.act.dtype)
        tol = 1e-5 * (1 + torch.maximum(low.abs(), high.abs()))
        outside = ((data.act < low - tol) | (data.act > high + tol)).any(dim=-1)
        if bool(outside.any()):
            fail(
                f"{int(outside.sum())} actions outside the env's bounds [{act_space.low}, {act_space.high}]"
            )
