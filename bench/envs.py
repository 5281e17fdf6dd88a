"""Environment construction from a dataset card: the builder and the evaluator use the same one."""

from __future__ import annotations

import gymnasium as gym

from bench.errors import BenchError
from bench.types import EnvSpec


def make_env(env: EnvSpec, stacked: bool = True) -> gym.Env:
    """The card's env: gym.make(id, **kwargs), then AtariPreprocessing when the card has an
    `atari` table, then a frame stack when `frame_stack` > 1 and `stacked` (the agent's view).
    The builder uses stacked=False: datasets store each frame once."""
    if env.id.startswith("ALE/"):
        import ale_py  # ships its ROMs; registering makes ALE/* ids available offline

        gym.register_envs(ale_py)
    try:
        e = gym.make(env.id, **env.kwargs)
        if env.atari is not None:
            e = gym.wrappers.AtariPreprocessing(e, **env.atari)
    except (gym.error.Error, ValueError, TypeError, ImportError) as err:
        raise BenchError(f"cannot make env {env.id}: {type(err).__name__}: {err}") from None
    if stacked and env.frame_stack > 1:
        e = gym.wrappers.FrameStackObservation(e, env.frame_stack)
    return e
