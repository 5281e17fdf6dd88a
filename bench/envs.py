"""Environment construction from a dataset card: the builder and the evaluator use the same one."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np

from bench.errors import BenchError
from bench.types import EnvSpec

#: MinAtar's games (Young and Tian 2019), registered as MinAtar/<Game>-v0 (all 6 actions) and
#: -v1 (the game's minimal set) by the optional `minatar` package (GPL-3.0: `bench[minatar]`).
MINATAR_PREFIX = "MinAtar/"


def make_env(env: EnvSpec, stacked: bool = True) -> gym.Env:
    """The card's env: gym.make(id, **kwargs), then AtariPreprocessing when the card has an
    `atari` table, then a frame stack when `frame_stack` > 1 and `stacked` (the agent's view).
    MinAtar envs see their object channels as [C, 10, 10] uint8 frames (MinAtarFrames).
    The builder uses stacked=False: datasets store each frame once."""
    if env.id.startswith("ALE/"):
        import ale_py  # ships its ROMs; registering makes ALE/* ids available offline

        gym.register_envs(ale_py)
    if env.id.startswith(MINATAR_PREFIX):
        _register_minatar(env.id)
    try:
        e = gym.make(env.id, **env.kwargs)
        if env.atari is not None:
            e = gym.wrappers.AtariPreprocessing(e, **env.atari)
    except (gym.error.Error, ValueError, TypeError, ImportError) as err:
        raise BenchError(f"cannot make env {env.id}: {type(err).__name__}: {err}") from None
    if env.id.startswith(MINATAR_PREFIX):
        e = MinAtarFrames(e)
    if stacked and env.frame_stack > 1:
        e = gym.wrappers.FrameStackObservation(e, env.frame_stack)
    return e


def _register_minatar(env_id: str) -> None:
    """MinAtar's ids, registered once (gymnasium 1.x loads no plugins by itself)."""
    if env_id in gym.registry:
        return
    if importlib.util.find_spec("minatar") is None:
        raise BenchError(
            f"env {env_id} needs the optional MinAtar package (GPL-3.0, not installed by "
            "default): pip install 'bench[minatar]'"
        )
    import minatar.gym

    if f"{MINATAR_PREFIX}Breakout-v1" not in gym.registry:
        minatar.gym.register_envs()


class MinAtarFrames(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """A MinAtar env as bench's image envs look: its [10, 10, C] boolean object channels as
    [C, 10, 10] uint8 frames of 0 and 1 (channels first, as the CNNs and the datasets take them).

    A reset also clears MinAtar's sticky-action memory (the action repeated with probability
    sticky_action_prob), which MinAtar keeps across episodes: without it an episode's first step
    would depend on the previous episode, and an episode could not be replayed from its seed and
    actions alone."""

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)  # so that Minari can record the env spec
        gym.ObservationWrapper.__init__(self, env)
        h, w, c = env.observation_space.shape or (0, 0, 0)
        self.observation_space = gym.spaces.Box(0, 1, (c, h, w), np.uint8)

    def reset(self, **kwargs):  # the caller's seed and options, passed on
        self.env.unwrapped.game.last_action = 0  # type: ignore[attr-defined]  # a MinAtar env
        seed = kwargs.get("seed")
        if seed is not None and not 0 <= seed < 2**32:
            # MinAtar seeds a legacy RandomState (32 bits): a wider seed is hashed down
            # (SeedSequence), the same number on every machine
            kwargs["seed"] = int(np.random.SeedSequence(seed).generate_state(1)[0])
        return super().reset(**kwargs)

    def observation(self, observation):
        return np.ascontiguousarray(np.moveaxis(observation, -1, 0), dtype=np.uint8)
