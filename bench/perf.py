"""`bench perf`: training and acting throughput, FLOPs per update, and the matmul roofline.

For each case (algorithm x shape x batch size x seeds trained together x threads):
- updates/s of the job and seed-updates/s (updates/s x S), including batch sampling from an
  in-memory dataset, after warm-up, median of `repeats` timed windows;
- FLOPs of one (vectorized) update, counted by torch's FlopCounterMode (matmuls and
  convolutions);
- the roofline: the same matmul/convolution calls that one update makes (recorded with their
  exact shapes and replayed alone, back to back) timed on this machine. Achieved GFLOP/s
  divided by the roofline's GFLOP/s says how close the update is to pure dense-math time;
- peak memory per seed: on CUDA the allocator's peak over an update; on the CPU the training
  state (networks, gradients, optimizer moments) plus the peak of the tensors one update holds
  alive at once (counted by a dispatch mode), divided by S.
Acting: env steps/s of each algorithm's evaluation policy on 10 envs per seed, all seeds' envs
stepped together (one act() per step), and for bcq the speed-up of one batched act() over a
loop that acts on one observation at a time.
"""

from __future__ import annotations

import functools
import math
import os
import statistics
import tempfile
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from bench.algos import REGISTRY
from bench.algos.base import resolve_config
from bench.data.data import OfflineData, Sampler
from bench.errors import BenchError
from bench.run.precision import with_precision
from bench.types import EnvInfo, EnvSpec

DISCRETE_VEC = ((4,), gym.spaces.Discrete(2))  # CartPole-shaped
CONTINUOUS_VEC = ((11,), gym.spaces.Box(-np.ones(3, np.float32), np.ones(3, np.float32)))  # Hopper
ATARI = ((4, 84, 84), gym.spaces.Discrete(4))  # Breakout-shaped, Nature CNN
#: MinAtar Breakout-shaped: 4 object channels on 10 x 10, 3 actions (the minimal set), its CNN
MINATAR = ((4, 10, 10), gym.spaces.Discrete(3))


#: Bounds of `bench perf`'s options (checked before anything runs).
MAX_REPEATS = 1000
MAX_MIN_TIME = 600.0
MAX_THREADS = 1024
MEMORY_SIZE_RANGE = (1_000, 10_000_000)
#: Disk bytes per transition of the synthetic Atari dataset (an 84x84 uint8 frame, HDF5 and
#: Minari's episode overhead): 1M transitions take ~7.1 GB.
SYNTHETIC_BYTES_PER_TRANSITION = 7_100
#: Memory the loading process takes per transition: the frame (84x84 bytes) and 10% more
#: (measured: peak RSS 1.03-1.08 x the frame bytes; README "Performance").
LOAD_BYTES_PER_TRANSITION = 7_800
#: The loading process's own memory (python, torch, minari) beside the frames.
LOAD_BASE_BYTES = 1 << 30
#: Memory per seed of training, in multiples of its networks' parameter bytes: the networks
#: with their targets, gradients and Adam moments (README "Many seeds in one process" measures
#: 4-6x: bcq 16-25 MiB per seed for 3.7 MiB of parameters, Atari discrete_bcq 85 for 25).
SEED_PARAM_FACTOR = 6
#: ... plus the tensors an update holds, per transition of its batch and per seed.
SEED_SAMPLE_BYTES = {"vector": 8 << 10, "atari": 320 << 10, "minatar": 32 << 10}


def check_options(repeats: int, min_time: float, threads: list[int], sizes: list[int]) -> None:
    """Refuse out-of-range options up front, one line each; and memory sizes whose synthetic
    dataset would not fit in the temp folder (each is written, measured and deleted in turn),
    with the margin every disk check keeps, or whose loading would not fit in memory."""
    if not 1 <= repeats <= MAX_REPEATS:
        raise BenchError(f"--repeats must be between 1 and {MAX_REPEATS} (got {repeats})")
    if not (math.isfinite(min_time) and 0 < min_time <= MAX_MIN_TIME):
        raise BenchError(
            f"--min-time must be a number of seconds in (0, {MAX_MIN_TIME:g}] (got {min_time})"
        )
    if not threads:
        raise BenchError("--threads needs at least one thread count, e.g. 1,2")
    for t in threads:
        if not 1 <= t <= MAX_THREADS:
            raise BenchError(f"--threads: each count must be between 1 and {MAX_THREADS} (got {t})")
    lo, hi = MEMORY_SIZE_RANGE
    for n in sizes:
        if not lo <= n <= hi:
            raise BenchError(
                f"--memory-sizes: each size must be between {lo:,} and {hi:,} transitions "
                f"(got {n:,})"
            )
    if sizes:
        from bench.data.minari_io import free_bytes, free_memory_bytes, with_margin

        folder = Path(tempfile.gettempdir())
        need = with_margin(max(sizes) * SYNTHETIC_BYTES_PER_TRANSITION)
        free = free_bytes(folder)
        if free < need:
            raise BenchError(
                f"--memory-sizes {max(sizes):,} needs ~{need / 2**20:,.0f} MiB in the temp "
                f"folder {folder} for its synthetic dataset (margin included), "
                f"{free / 2**20:,.0f} MiB free (set TMPDIR elsewhere or give smaller sizes)"
            )
        need = with_margin(max(sizes) * LOAD_BYTES_PER_TRANSITION) + LOAD_BASE_BYTES
        free = free_memory_bytes()
        if free < need:
            raise BenchError(
                f"--memory-sizes {max(sizes):,} needs ~{need / 2**20:,.0f} MiB of memory to "
                f"load, {free / 2**20:,.0f} MiB available; give smaller sizes"
            )


#: Memory of one worker process before it trains (python, torch, the env libraries).
WORKER_BYTES = 512 << 20


def card_shape(card) -> str:
    """'atari' for a card whose observations are frames (the Nature CNN), 'minatar' for MinAtar's
    object channels (its small CNN), else 'vector'."""
    if card.env.id.startswith("MinAtar/"):
        return "minatar"
    if card.env.atari is not None or card.env.frame_stack > 1:
        return "atari"
    from bench.data.minari_io import dataset_exists, open_dataset

    if dataset_exists(card.minari_id):
        try:
            shape = open_dataset(card.minari_id).observation_space.shape
        except BenchError:
            return "vector"  # unreadable: loading it says so
        return "atari" if shape is not None and len(shape) >= 2 else "vector"
    return "vector"


def seed_bytes(algo: str, config, shape: str, batch_size: int) -> int:
    """Estimated peak memory of one seed of `algo` with this config: its networks built once
    (one seed, on perf's spaces of that shape) times SEED_PARAM_FACTOR, plus the batch."""
    cls = REGISTRY[algo]
    obs, space = Case(algo, shape, batch_size).spaces()
    built = cls(config, EnvInfo(obs, space), torch.device("cpu"), [0])
    params = sum(
        p.numel() * p.element_size() for m in built.modules().values() for p in m.parameters()
    )
    return SEED_PARAM_FACTOR * params + batch_size * SEED_SAMPLE_BYTES[shape]


def free_memory_on(device: str) -> tuple[int, str]:
    """(bytes free, how to say it): a GPU's free memory, or what the kernel can give this
    process on the CPU."""
    from bench.data.minari_io import free_memory_bytes

    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.mem_get_info(dev)[0], f"free on {dev}"
    return free_memory_bytes(), "available"


def check_job_memory(jobs: list[tuple[int, int]], what: str, device: str = "cpu") -> None:
    """Jobs that run at once, each (bytes per seed, seeds trained together), fit in the memory
    available (a worker process each on the CPU): refused before anything trains, not killed by
    the kernel midway. `what` says which option to change."""
    from bench.data.minari_io import with_margin

    dev = torch.device(device)
    base = 0 if dev.type == "cuda" else WORKER_BYTES
    need = with_margin(sum(base + per_seed * n for per_seed, n in jobs))
    free, where = free_memory_on(device)
    if need > free:
        seeds = sum(n for _, n in jobs)
        per_seed = max(b for b, _ in jobs)
        raise BenchError(
            f"{len(jobs)} job(s) at once training {seeds:,} seed(s) need ~{need / 2**20:,.0f} "
            f"MiB (up to {per_seed / 2**20:,.1f} MiB per seed), {free / 2**20:,.0f} MiB {where}; "
            f"{what}"
        )


def check_seed_memory(cases: list[Case], device: str) -> None:
    """The largest case (S seeds trained together) fits in the memory of the device: refused
    up front, not killed by the kernel after minutes of measuring."""
    worst = max(cases, key=lambda c: _case_bytes(c) * c.seeds, default=None)
    if worst is not None:
        check_job_memory(
            [(_case_bytes(worst), worst.seeds)],
            f"give fewer --seeds than {worst.seeds} ({worst.algo}, {worst.shape}, "
            f"batch {worst.batch_size})",
            device,
        )


@functools.cache
def _case_bytes(case: Case) -> int:
    return seed_bytes(case.algo, resolve_config(REGISTRY[case.algo]), case.shape, case.batch_size)


@dataclass(frozen=True)
class Case:
    algo: str
    shape: str  # "vector", "atari" or "minatar"
    batch_size: int
    seeds: int = 1  # S, seeds trained together
    precision: str = "fp32"  # of the update (bench.run.precision)

    def spaces(self):
        if self.shape == "atari":
            return ATARI
        if self.shape == "minatar":
            return MINATAR
        discrete = "discrete" in REGISTRY[self.algo].action_kinds
        return DISCRETE_VEC if discrete else CONTINUOUS_VEC


#: Batch sizes of the vector cases by default; the Atari and MinAtar CNNs run at their
#: protocols' 32.
BATCH_SIZES = (32, 256)
ATARI_BATCH = 32


def default_cases(
    seeds: Sequence[int] = (1,), batch_sizes=BATCH_SIZES, precisions=("fp32",)
) -> list[Case]:
    cases = []
    for name in sorted(REGISTRY):
        for b in batch_sizes:
            cases += [Case(name, "vector", b, s, p) for s in seeds for p in precisions]
    cases += [
        Case(name, frames, ATARI_BATCH, s, p)
        for frames in ("atari", "minatar")
        for name in ("discrete_bcq", "discrete_cql")
        for s in seeds
        for p in precisions
    ]
    return cases


def synthetic_data(obs_shape, space, n: int, seed: int = 0, device="cpu") -> OfflineData:
    """n random transitions in episodes of 200 (values do not matter for speed)."""
    rng = np.random.default_rng(seed)
    episodes = []
    for start in range(0, n, 200):
        T = min(200, n - start)
        if len(obs_shape) == 3:
            obs = rng.integers(0, 256, (T + 1, *obs_shape), dtype=np.uint8)
        else:
            obs = rng.standard_normal((T + 1, *obs_shape)).astype(np.float32)
        if isinstance(space, gym.spaces.Discrete):
            act = rng.integers(space.n, size=T)
        else:
            act = rng.uniform(space.low, space.high, (T, *space.shape)).astype(np.float32)
        term = np.zeros(T, bool)
        trunc = np.zeros(T, bool)
        trunc[-1] = True
        episodes.append(
            {
                "observations": obs,
                "actions": act,
                "rewards": rng.standard_normal(T),
                "terminations": term,
                "truncations": trunc,
            }
        )
    return OfflineData.from_episodes(episodes, device)


class MatmulRecorder(TorchDispatchMode):
    """Records every matmul / convolution call (op and arguments) made inside it."""

    OPS = {
        torch.ops.aten.mm.default,
        torch.ops.aten.addmm.default,
        torch.ops.aten.bmm.default,
        torch.ops.aten.baddbmm.default,
        torch.ops.aten.convolution.default,
        torch.ops.aten.convolution_backward.default,
    }

    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.OPS:
            self.calls.append((func, args, kwargs))
        return func(*args, **kwargs)


def _fresh(x):
    return torch.randn_like(x) if isinstance(x, torch.Tensor) and x.is_floating_point() else x


def roofline_seconds(calls: list[tuple], repeats: int, sync=lambda: None) -> float:
    """Median time of replaying the recorded matmul/conv calls back to back (new operands)."""
    replay = [(f, [_fresh(a) for a in args], kw) for f, args, kw in calls]

    def once():
        for f, args, kw in replay:
            f(*args, **kw)

    return _median_time(once, warmup=3, repeats=repeats, min_time=0.3, sync=sync)


def _median_time(
    fn: Callable[[], None],
    warmup: int,
    repeats: int,
    min_time: float,
    sync: Callable[[], None] = lambda: None,
) -> float:
    """Seconds per call: median over `repeats` windows of at least min_time each (sync() ends
    each window: a GPU's queued work counts)."""
    for _ in range(warmup):
        fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    per_call = max(time.perf_counter() - t0, 1e-6)
    n = max(1, int(min_time / per_call))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        samples.append((time.perf_counter() - t0) / n)
    return statistics.median(samples)


class PeakLiveBytes(TorchDispatchMode):
    """The peak bytes of tensor storage that ops inside it hold alive at once (CPU tensors)."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._refs: dict[int, int] = {}  # storage pointer -> live tensors on it
        self._seen: set[int] = set()

    def _release(self, ptr: int, nbytes: int) -> None:
        self._refs[ptr] -= 1
        if not self._refs[ptr]:
            del self._refs[ptr]
            self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, list | tuple) else (out,):
            if not isinstance(t, torch.Tensor) or id(t) in self._seen:
                continue
            storage = t.untyped_storage()
            ptr, nbytes = storage.data_ptr(), storage.nbytes()
            if not nbytes:
                continue
            if ptr not in self._refs:
                self._refs[ptr] = 0
                self.live += nbytes
                self.peak = max(self.peak, self.live)
            self._refs[ptr] += 1
            self._seen.add(id(t))
            weakref.finalize(t, self._release, ptr, nbytes)
            weakref.finalize(t, self._seen.discard, id(t))
        return out


def state_bytes(algo) -> int:
    """Networks (targets included), their gradients, optimizer moments and other tensors."""
    total = 0
    for m in algo.modules().values():
        for p in m.parameters():
            total += p.numel() * p.element_size() * (2 if p.requires_grad else 1)
    for opt in algo.optimizers().values():
        for st in opt.state.values():
            total += sum(
                v.numel() * v.element_size() for v in st.values() if isinstance(v, torch.Tensor)
            )
    return total


def measure_case(
    case: Case, threads: int, repeats: int = 3, min_time: float = 1.0, device: str = "cpu"
) -> dict:
    torch.set_num_threads(threads)
    obs_shape, space = case.spaces()
    cls = REGISTRY[case.algo]
    seeds = list(range(case.seeds))
    dev = torch.device(device)
    algo = cls(resolve_config(cls), EnvInfo(obs_shape, space), dev, seeds)
    n = 10_000 if case.shape == "atari" else 100_000
    data = synthetic_data(obs_shape, space, n, device=dev)
    gamma, nstep, _ = algo.nstep()
    data.compute_nstep(gamma, nstep)
    sampler = Sampler(data, case.batch_size, seeds)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    update = with_precision(algo.update, case.precision, dev)

    def step():
        update(sampler.sample())

    sec = _median_time(step, warmup=20, repeats=repeats, min_time=min_time, sync=sync)
    batch = sampler.sample()
    flops = FlopCounterMode(display=False)
    with flops:
        update(batch)
    recorder = MatmulRecorder()
    with recorder:
        update(batch)
    roof = roofline_seconds(recorder.calls, repeats, sync)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        update(sampler.sample())
        peak = torch.cuda.max_memory_allocated(dev)
    else:
        tracker = PeakLiveBytes()
        with tracker:
            update(sampler.sample())
        peak = state_bytes(algo) + tracker.peak
    total = flops.get_total_flops()
    return {
        **asdict(case),
        "threads": threads,
        "device": str(dev),
        "updates_per_s": 1.0 / sec,
        "seed_updates_per_s": case.seeds / sec,
        "mflop_per_update": total / 1e6,
        "achieved_gflops": total / sec / 1e9,
        "roofline_gflops": total / roof / 1e9,
        "roofline_fraction": roof / sec,
        "peak_mib_per_seed": peak / case.seeds / 2**20,
    }


def measure_acting(
    threads: int,
    repeats: int = 3,
    seeds: int = 1,
    device: str = "cpu",
    names: list[str] | None = None,
) -> list[dict]:
    """Env steps/s of each algorithm's evaluation policy, 10 envs per seed for `seeds` seeds
    stepped together, and bcq's batched act() against a loop over single observations."""
    from bench.evaluate import algorithm_returns

    torch.set_num_threads(threads)
    rows = []
    envs = {"discrete": EnvSpec("CartPole-v1"), "continuous": EnvSpec("Pendulum-v1")}
    dev = torch.device(device)
    for name in names or sorted(REGISTRY):
        cls = REGISTRY[name]
        kind = cls.action_kinds[0]
        probe = gym.make(envs[kind].id)
        info = EnvInfo(probe.observation_space.shape or (), probe.action_space)
        algo = cls(resolve_config(cls), info, dev, list(range(seeds)))
        calls = 0
        act = algo.act

        def counting(obs, mask=None, deterministic=False, act=act):
            nonlocal calls
            calls += 1
            return act(obs, mask, deterministic)

        algo.act = counting  # type: ignore[method-assign]  # counts the calls of this one
        t0 = time.perf_counter()
        algorithm_returns(algo, envs[kind], 10, [1000 * s for s in range(seeds)])
        elapsed = time.perf_counter() - t0
        algo.act = act  # type: ignore[method-assign]
        rows.append(
            {
                "algo": name,
                "env": envs[kind].id,
                "threads": threads,
                "seeds": seeds,
                "envs": 10 * seeds,
                "device": str(dev),
                "env_steps_per_s": 10 * seeds * calls / elapsed,
            }
        )
        if name == "bcq" and seeds == 1:
            obs = torch.as_tensor(
                np.stack([probe.observation_space.sample() for _ in range(10)]),
                dtype=torch.float32,
                device=dev,
            )[None]

            def batched_act(a=algo, o=obs) -> None:
                a.act(o)

            def looped_act(a=algo, o=obs) -> None:
                for i in range(o.shape[1]):
                    a.act(o[:, i : i + 1])

            batched = _median_time(batched_act, 3, repeats, 0.3)
            looped = _median_time(looped_act, 3, repeats, 0.3)
            rows[-1]["batched_vs_loop_speedup"] = looped / batched
    return rows


# ---------------------------------------------------------------------- Atari loading memory
_LOAD_PROBE = """
import json, sys, time
import minari, torch
from bench.data.data import OfflineData

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

ds = minari.load_dataset(sys.argv[1])
base = rss("VmRSS:")
t0 = time.perf_counter()
data = OfflineData.from_minari(ds, frame_stack=4)
data.compute_nstep(0.99, 1)
data.gather(torch.arange(32))
print(json.dumps({"load_s": time.perf_counter() - t0, "rss_delta": rss("VmHWM:") - base,
                  "frame_bytes": data.obs.numel() * data.obs.element_size(),
                  "transitions": len(data)}))
"""


#: Runs write_synthetic_atari in a child process: an HDF5 crash (it aborts rather than raising
#: when the disk fills) ends the child, never bench, which then removes the temp folder.
_WRITE_PROBE = """
import sys
from bench.errors import BenchError
from bench.perf import write_synthetic_atari
try:
    write_synthetic_atari(sys.argv[1], int(sys.argv[2]))
except BenchError as e:
    print(e, file=sys.stderr)
    sys.exit(2)
"""
#: Prefix of the temp folders of the memory measurement (its pid follows, then a random part).
TEMP_PREFIX = "bench-perf-pid"


def synthetic_id(n: int) -> str:
    """The Minari id of the synthetic Atari dataset of n transitions (written, then loaded)."""
    return f"perf/atari-synthetic-{n}-v0"


def write_synthetic_atari(root, n: int, episode_len: int = 1000, seed: int = 0) -> str:
    """A Minari dataset (HDF5, lossless) of n random 84x84 frames in episodes of episode_len,
    written episode by episode into the Minari root `root`; returns its id. The free space is
    watched: before each episode, what is left to write (and the margin) must still fit, else
    one BenchError line, before HDF5 meets a full disk."""
    import os

    import minari
    from minari.data_collector import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    from bench.data.minari_io import SPACE_MARGIN_BYTES, free_bytes

    minari_id = synthetic_id(n)
    path = os.path.join(root, minari_id, "data")
    os.makedirs(path, exist_ok=True)
    obs_space = gym.spaces.Box(0, 255, (84, 84), np.uint8)
    storage = MinariStorage.new(
        path, obs_space, gym.spaces.Discrete(4), data_format="hdf5", jpeg_encoding=False
    )
    rng = np.random.default_rng(seed)
    for start in range(0, n, episode_len):
        left = (n - start) * SYNTHETIC_BYTES_PER_TRANSITION + SPACE_MARGIN_BYTES
        if (free := free_bytes(root)) < left:
            raise BenchError(
                f"the temp folder {root} is filling up ({free / 2**20:,.0f} MiB free, "
                f"~{left / 2**20:,.0f} MiB still to write): stopped before it is full"
            )
        T = min(episode_len, n - start)
        trunc = [False] * T
        trunc[-1] = True
        storage.update_episodes(
            [
                EpisodeBuffer(
                    id=start // episode_len,
                    observations=rng.integers(0, 256, (T + 1, 84, 84), np.uint8),
                    actions=rng.integers(0, 4, T).tolist(),
                    rewards=[0.0] * T,
                    terminations=[False] * T,
                    truncations=trunc,
                )
            ]
        )
    storage.update_metadata({"dataset_id": minari_id, "minari_version": minari.__version__})
    return minari_id


def _child(code: str, args: list[str], env: dict, what: str) -> str:
    """Run `python -c code args` and return its stdout; a failure (an error, a crash, a kill by
    the kernel) is one BenchError line."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env
    )
    if out.returncode != 0:
        rc = out.returncode
        how = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
        last = (out.stderr.strip().splitlines() or [""])[-1].strip()
        raise BenchError(f"{what} failed ({how}){': ' + last if last else ''}")
    return out.stdout


def measure_atari_memory(n: int) -> dict:
    """Load n Atari transitions (frames stored once, stacks of 4 at sample time) in a fresh
    process: peak RSS beyond the process before loading, against the raw frame bytes. The
    synthetic dataset is written by another child process into a temp folder that is removed
    whatever happens (an error, a crash of either child, Ctrl-C)."""
    import json
    import shutil

    from bench.data.minari_io import remove_orphans

    base = tempfile.gettempdir()
    remove_orphans(Path(base), TEMP_PREFIX)
    try:
        root = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=base)
    except OSError as e:
        raise BenchError(f"cannot write in the temp folder {base}: {e.strerror or e}") from None
    try:
        env = {**os.environ, "MINARI_DATASETS_PATH": root, "OMP_NUM_THREADS": "1"}
        _child(
            _WRITE_PROBE,
            [root, str(n)],
            env,
            f"--memory-sizes {n:,}: writing the synthetic dataset",
        )
        minari_id = synthetic_id(n)
        out = _child(_LOAD_PROBE, [minari_id], env, f"--memory-sizes {n:,}: loading it")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    try:
        r = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchError(f"--memory-sizes {n:,}: the loading process printed no result") from None
    return {**r, "rss_over_frames": r["rss_delta"] / r["frame_bytes"]}
