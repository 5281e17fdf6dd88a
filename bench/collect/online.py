"""Online training, used to build behavior policies for datasets (never for benchmarking).

The same algorithm classes as offline: only the data source differs. The agent collects with
exploration (algo.explore) into a replay buffer and makes `utd` updates per environment step
(the update-to-data ratio, G in the REDQ paper). Every eval_every steps it is evaluated
(deterministic policy) and its policy networks are saved with the returns, so dataset cards
can pick e.g. an expert and a medium checkpoint. The replay buffer is saved as each episode's
reset seed and actions: replaying those through the env rebuilds it exactly (the envs used
here are deterministic given seed and actions).
"""

from __future__ import annotations

import dataclasses
import io
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from bench.algos import get_algorithm
from bench.algos.base import REGISTRY, Algorithm, resolve_config
from bench.data.safe_load import load_torch, plain
from bench.envs import make_env
from bench.errors import BenchError
from bench.evaluate import algorithm_returns
from bench.progress import progress_bar
from bench.results.schema import atomic_write_bytes, atomic_write_json
from bench.seeding import env_seed, seed_everything, stream_seed
from bench.types import Batch, EnvInfo, EnvSpec

#: Online training resets episode k with env_seed("online", seed, k) and evaluates on
#: env_seed("online_eval", seed, i): ranges of their own in the seed plan (bench.seeding).
#: Bounds of the options (checked before anything is made or written).
MAX_SEED = 2**31 - 1
MAX_STEPS = 10**8
MAX_UTD = 1000
MAX_THREADS = 1024


@dataclass
class OnlineSpec:
    algo: str
    env: str
    steps: int
    utd: int = 1
    seed: int = 0
    batch_size: int = 256
    start_steps: int = 1000
    eval_every: int = 1000
    eval_episodes: int = 10
    preset: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    out: Path = Path("behaviors")


class ReplayBuffer:
    """Preallocated numpy arrays of one-step transitions, sampled with a seeded torch generator."""

    def __init__(self, capacity: int, obs_shape, act_shape, act_dtype, seed: int):
        self.obs = np.zeros((capacity, *obs_shape), np.float32)
        self.next_obs = np.zeros((capacity, *obs_shape), np.float32)
        self.act = np.zeros((capacity, *act_shape), act_dtype)
        self.rew = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, np.float32)
        self.size = 0
        self.generator = torch.Generator().manual_seed(stream_seed("online", seed))

    def add(self, obs, act, rew, next_obs, terminated) -> None:
        i = self.size
        self.obs[i], self.act[i], self.rew[i] = obs, act, rew
        self.next_obs[i], self.terminated[i] = next_obs, float(terminated)
        self.size += 1

    def sample(self, batch_size: int, gamma: float, device) -> Batch:
        idx = torch.randint(self.size, (batch_size,), generator=self.generator).numpy()
        t = lambda x: torch.as_tensor(x[idx], device=device)[None]  # noqa: E731 - [1, B]: one seed
        act = t(self.act)
        return Batch(
            obs=t(self.obs),
            act=act.long() if act.dtype in (torch.int32, torch.int64) else act,
            ret=t(self.rew),
            next_obs=t(self.next_obs),
            discount=gamma * (1.0 - t(self.terminated)),
        )


#: Policy file layout. 2: networks with a leading seed dimension of 1 (bench.nets).
POLICY_FORMAT = 2


def policy_file_payload(algo: Algorithm, spec: OnlineSpec, step: int, returns: np.ndarray) -> dict:
    space = algo.info.action_space
    return {
        "format": POLICY_FORMAT,
        "algo": algo.name,
        "config": dataclasses.asdict(algo.config),
        "env": spec.env,
        "obs_shape": list(algo.info.obs_shape),
        "action_space": {"n": int(space.n)}
        if isinstance(space, gym.spaces.Discrete)
        else {"low": space.low.tolist(), "high": space.high.tolist()},  # type: ignore[attr-defined]
        "step": step,
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "policy": {k: m.state_dict() for k, m in algo.policy_modules().items()},
        "command": "bench " + shlex.join(sys.argv[1:]),
    }


def load_policy(path: Path, device="cpu", seed: int = 0) -> Algorithm:
    """An algorithm whose policy networks come from a saved behavior-policy file. The file is
    read with torch.load(weights_only=True): one that holds anything but tensors and plain
    values is refused unread (unpickling it could run code); nothing else is ever unpickled."""
    payload = load_torch(path, "policy file", map_location=device)
    if not isinstance(payload, dict) or payload.get("format") != POLICY_FORMAT:
        raise BenchError(
            f"policy file {path} was saved by an older bench (networks without a seed "
            "dimension); train it again with `bench behavior train`"
        )
    try:
        cls = get_algorithm(payload["algo"])
        types = {f.name: f.type for f in dataclasses.fields(cls.Config)}
        config = cls.Config(
            **{
                k: tuple(v) if isinstance(v, list) and "tuple" in str(types[k]) else v
                for k, v in payload["config"].items()
            }
        )
        space_d = payload["action_space"]
        space = (
            gym.spaces.Discrete(space_d["n"])
            if "n" in space_d
            else gym.spaces.Box(
                np.array(space_d["low"], np.float32), np.array(space_d["high"], np.float32)
            )
        )
        algo = cls(config, EnvInfo(tuple(payload["obs_shape"]), space), device, [seed])
        for k, m in algo.policy_modules().items():
            m.load_state_dict(payload["policy"][k])
    except BenchError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        why = " ".join(f"{type(e).__name__}: {e}".split())[:200]
        raise BenchError(
            f"policy file {path} is not a behavior policy bench can load ({why})"
        ) from None
    return algo


@dataclass
class OnlineResult:
    records: list[dict]  # one per saved checkpoint: step, return_mean, return_std, file
    buffer: ReplayBuffer


def check_threads(threads: int | None) -> None:
    if threads is not None and not 1 <= threads <= MAX_THREADS:
        raise BenchError(f"--threads must be between 1 and {MAX_THREADS} (got {threads})")


def check_spec(spec: OnlineSpec) -> None:
    """Refuse options that cannot make a useful run, one line each, before anything starts."""
    for name in ("steps", "utd", "batch_size", "eval_every", "eval_episodes"):
        if getattr(spec, name) <= 0:
            raise BenchError(f"--{name.replace('_', '-')} must be positive")
    if not 0 <= spec.seed <= MAX_SEED:
        raise BenchError(f"--seed must be between 0 and {MAX_SEED} (got {spec.seed})")
    if spec.steps > MAX_STEPS:
        raise BenchError(f"--steps must be at most {MAX_STEPS:,} (got {spec.steps:,})")
    if spec.utd > MAX_UTD:
        raise BenchError(f"--utd must be at most {MAX_UTD} (got {spec.utd})")
    if spec.start_steps < 0:
        raise BenchError(f"--start-steps must be 0 or more (got {spec.start_steps})")
    if spec.eval_every > spec.steps:
        raise BenchError(
            f"--eval-every ({spec.eval_every:,}) is more than --steps ({spec.steps:,}): no "
            "policy would ever be evaluated or saved"
        )
    if not can_train_online(get_algorithm(spec.algo)):
        raise BenchError(
            f"algorithm '{spec.algo}' cannot train online (it has no exploration policy); "
            f"choose one of: {', '.join(online_algorithms())}"
        )


def can_train_online(cls: type[Algorithm]) -> bool:
    """Whether cls collects its own data: it defines an exploration policy (explore)."""
    return cls.explore is not Algorithm.explore


def online_algorithms() -> list[str]:
    return sorted(name for name, cls in REGISTRY.items() if can_train_online(cls))


def _rmdir_empty(folders: list[Path]) -> None:
    """Remove each folder (deepest first) that is empty; never raise."""
    for d in folders:
        try:
            d.rmdir()
        except OSError:
            pass


def make_out_folder(out: Path) -> list[Path]:
    """Create the output folder (and its parents), one line when it cannot be created or
    written; returns the folders it created (deepest first), removed again here when the
    folder proves unwritable."""
    out = Path(out)
    missing = []
    probe = out.absolute()
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _rmdir_empty(missing)
        why = "it is a file" if out.is_file() else " ".join(str(e.strerror or e).split())
        raise BenchError(f"cannot create the output folder {out}: {why}") from None
    if not os.access(out, os.W_OK):
        _rmdir_empty(missing)
        raise BenchError(f"cannot write to the output folder {out}: not writable")
    return missing


def train_online(spec: OnlineSpec, show_progress: bool = True) -> OnlineResult:
    """Train online, saving evaluated policy checkpoints and the replay record to spec.out."""
    check_spec(spec)
    cls = get_algorithm(spec.algo)
    config = resolve_config(cls, spec.preset, spec.overrides)
    env_spec = EnvSpec(spec.env)
    env = make_env(env_spec)
    info = EnvInfo(env.observation_space.shape or (), env.action_space)
    seed_everything(spec.seed)
    algo = cls(config, info, "cpu", [spec.seed])
    gamma, n, _ = algo.nstep()
    if n != 1:
        raise BenchError("online training uses one-step targets: set estimation_step=1")
    buffer = ReplayBuffer(
        spec.steps, info.obs_shape, env.action_space.shape, env.action_space.dtype, spec.seed
    )
    env.action_space.seed(stream_seed("online", spec.seed, 1))  # the start steps' actions
    created = make_out_folder(spec.out)
    try:
        return _train(spec, env, env_spec, algo, buffer, gamma, show_progress)
    except BaseException:
        _rmdir_empty(created)  # a run stopped before its first checkpoint leaves no folder
        raise


def _train(spec, env, env_spec, algo, buffer, gamma, show_progress) -> OnlineResult:
    episodes: list[dict] = []  # reset seed and actions of every episode, for exact replay
    episode = 0
    ep_seed = env_seed("online", spec.seed, episode)
    obs, _ = env.reset(seed=ep_seed)
    episodes.append({"seed": ep_seed, "actions": []})
    records: list[dict] = []
    ep_return, last_return = 0.0, float("nan")
    with progress_bar(f"{spec.algo} online on {spec.env}", spec.steps, show_progress) as (
        advance,
        describe,
    ):
        for t in range(1, spec.steps + 1):
            if t <= spec.start_steps:
                action = env.action_space.sample()
            else:
                obs_t = torch.as_tensor(obs, dtype=torch.float32)[None, None]  # one seed, one env
                action = algo.explore(obs_t)[0, 0].numpy()
            next_obs, rew, term, trunc, _ = env.step(action)
            buffer.add(obs, action, rew, next_obs, term)
            episodes[-1]["actions"].append(np.asarray(action).tolist())
            ep_return += float(rew)
            obs = next_obs
            if term or trunc:
                last_return, ep_return = ep_return, 0.0
                episode += 1
                ep_seed = env_seed("online", spec.seed, episode)
                obs, _ = env.reset(seed=ep_seed)
                episodes.append({"seed": ep_seed, "actions": []})
            if t > spec.start_steps and buffer.size >= spec.batch_size:
                for _ in range(spec.utd):
                    algo.update(buffer.sample(spec.batch_size, gamma, algo.device))
            advance(1)
            if t % spec.eval_every == 0:
                returns = algorithm_returns(
                    algo, env_spec, spec.eval_episodes, [env_seed("online_eval", spec.seed)]
                )[0]
                file = spec.out / f"{spec.algo}_{env_spec.id}_step{t}.pt"
                buf = io.BytesIO()
                torch.save(plain(policy_file_payload(algo, spec, t, returns)), buf)
                atomic_write_bytes(file, buf.getvalue())
                records.append(
                    {
                        "step": t,
                        "return_mean": float(returns.mean()),
                        "return_std": float(returns.std()),
                        "file": file.name,
                    }
                )
                atomic_write_json(spec.out / "checkpoints.json", records)
                _save_replay(spec.out / "replay.npz", episodes, t)
                describe(
                    f"{spec.algo} online on {spec.env} [eval {returns.mean():.0f}, "
                    f"train episode {last_return:.0f}]"
                )
    return OnlineResult(records, buffer)


def _save_replay(path: Path, episodes: list[dict], steps: int) -> None:
    """Episodes' reset seeds, lengths and concatenated actions (the last may be unfinished)."""
    eps = [e for e in episodes if e["actions"]]
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        seeds=np.array([e["seed"] for e in eps], np.int64),
        lengths=np.array([len(e["actions"]) for e in eps], np.int64),
        actions=np.concatenate([np.asarray(e["actions"], np.float32) for e in eps]),
        steps=np.int64(steps),
    )
    atomic_write_bytes(path, buf.getvalue())
