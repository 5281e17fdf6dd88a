"""D4RL HDF5 files <-> Minari datasets.

The D4RL layout: flat arrays observations [N, ...], actions [N, ...], rewards [N], terminals [N],
timeouts [N] and, in newer files, next_observations [N, ...]. An episode ends at a terminal or a
timeout; the file's last transition ends the last episode (stored as truncated).

Episodes in Minari hold T+1 observations. The final one is next_observations[last] when the file
has them. Without them: after a terminal the final observation is never bootstrapped from, so
the last observation is repeated; after a timeout the next observation is unknown, so that last
transition is dropped. Import then export is exact for files with next_observations.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np

from bench.data.minari_io import (
    alive,
    check_free_space,
    is_disk_full,
    minari_root,
    open_dataset,
    staged_dataset,
)
from bench.errors import DatasetError, one_line
from bench.results.schema import check_target_file

REQUIRED = ("observations", "actions", "rewards", "terminals")

#: D4RL reference returns (d4rl/infos.py, identical for v0/v1/v2), by env family.
D4RL_REFS = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
}


def d4rl_refs(env_id: str) -> tuple[float, float, str] | None:
    family = env_id.split("-")[0].lower()
    if family in D4RL_REFS:
        lo, hi = D4RL_REFS[family]
        return lo, hi, f"D4RL infos.py ({family}, v2 references; evaluated on {env_id})"
    return None


#: Keys holding one value per transition (a trailing axis of size 1 is squeezed).
PER_STEP = ("rewards", "terminals", "timeouts")


def read_d4rl(path: Path) -> dict[str, np.ndarray]:
    """The D4RL arrays of `path`; anything that is not a file of numeric arrays with one row
    per transition is one DatasetError line."""
    path = Path(path)
    if path.is_dir():
        raise DatasetError(f"{path}: is a folder, not an HDF5 file")
    if not path.exists():
        raise DatasetError(f"no such file: {path}")
    if not path.is_file():  # a FIFO would block h5py forever, a device reads garbage
        raise DatasetError(f"{path}: not a regular file, not an HDF5 file")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in REQUIRED if k not in f]
            if missing:
                raise DatasetError(f"{path}: missing D4RL keys {', '.join(missing)}")
            keys = [k for k in (*REQUIRED, "timeouts", "next_observations") if k in f]
            for k in keys:
                _check_array(path, k, f[k])
            _check_memory(path, sum(f[k].size * f[k].dtype.itemsize for k in keys))
            arrays = {k: f[k][()] for k in keys}
    except OSError as e:
        raise DatasetError(f"{path}: cannot be read as HDF5 ({one_line(e)})") from None
    n = len(arrays["observations"])
    if n == 0:
        raise DatasetError(f"{path}: no transitions (empty dataset)")
    bad = [k for k, v in arrays.items() if len(v) != n]
    if bad:
        raise DatasetError(f"{path}: {', '.join(bad)} do not have {n} rows like observations")
    for k in PER_STEP:
        v = arrays.get(k)
        if v is None:
            continue
        if v.ndim == 2 and v.shape[1] == 1:
            arrays[k] = v = v[:, 0]  # (N, 1): one value per transition all the same
        if v.ndim != 1:
            raise DatasetError(
                f"{path}: {k} has shape {v.shape}; expected one value per transition ({n},)"
            )
        if k != "rewards" and v.dtype != bool and not ((v == 0) | (v == 1)).all():
            row = int(np.flatnonzero(~((v == 0) | (v == 1)))[0])
            raise DatasetError(f"{path}: {k} must be 0 or 1 (row {row} holds {v[row]})")
    arrays.setdefault("timeouts", np.zeros(n, bool))
    return arrays


#: Memory an import takes, in multiples of the file's arrays: the arrays read, the episodes cut
#: from them (observations copied with each episode's final one) and Minari's write buffers.
IMPORT_MEMORY_FACTOR = 3


def _check_memory(path: Path, array_bytes: int) -> None:
    """The arrays a file declares can be read and imported in the memory available (a small
    file can declare terabytes: HDF5 stores unwritten chunks as nothing)."""
    from bench.data.minari_io import free_memory_bytes, with_margin

    need = with_margin(array_bytes * IMPORT_MEMORY_FACTOR)
    free = free_memory_bytes()
    if need > free:
        raise DatasetError(
            f"{path}: its arrays take {array_bytes / 2**20:,.0f} MiB; reading and importing them "
            f"needs ~{need / 2**20:,.0f} MiB of memory, {free / 2**20:,.0f} MiB available"
        )


def _check_array(path: Path, key: str, obj) -> None:
    """One key of the file: a dataset (not a group) of numbers with a row per transition."""
    if not isinstance(obj, h5py.Dataset):
        raise DatasetError(f"{path}: {key} is an HDF5 {type(obj).__name__.lower()}, not an array")
    if obj.ndim < 1:
        raise DatasetError(f"{path}: {key} is a scalar, not an array with a row per transition")
    kind = obj.dtype.kind
    if kind not in "biuf":  # bool, signed/unsigned integers, floats
        raise DatasetError(f"{path}: {key} holds {obj.dtype} values, not numbers")


def _first_non_finite(a: np.ndarray, chunk: int = 1 << 16) -> int | None:
    """Row of the first NaN/inf in `a` (None if none), in chunks: no full-size temporary."""
    if a.dtype.kind != "f":
        return None
    for start in range(0, len(a), chunk):
        ok = np.isfinite(a[start : start + chunk].reshape(min(chunk, len(a) - start), -1))
        if not ok.all():
            return start + int(np.flatnonzero(~ok.all(axis=1))[0])
    return None


def _first_beyond_float32(a: np.ndarray, chunk: int = 1 << 16) -> int | None:
    """Row of the first finite value that float32 cannot hold (it would load as inf)."""
    if a.dtype.kind != "f" or a.dtype.itemsize <= 4:
        return None
    top = np.finfo(np.float32).max
    for start in range(0, len(a), chunk):
        big = np.abs(a[start : start + chunk].reshape(min(chunk, len(a) - start), -1)) > top
        if big.any():
            return start + int(np.flatnonzero(big.any(axis=1))[0])
    return None


#: Actions may exceed a Box's bounds by this much (float32 rounding of clipped values).
ACTION_TOLERANCE = 1e-5


def check_against_env(path: Path, arrays: dict[str, np.ndarray], env, env_id: str) -> None:
    """The arrays fit the env: observation shape, actions in the action space, observations and
    rewards finite. Discrete actions stored as integral floats or (N, 1) become (N,) integers."""
    obs_space, act_space = env.observation_space, env.action_space
    if obs_space.shape is None:
        raise DatasetError(
            f"{path}: {env_id} has a {type(obs_space).__name__} observation space; "
            "D4RL files hold flat arrays (Box or Discrete spaces)"
        )
    for k in ("observations", "next_observations"):
        if k in arrays and arrays[k].shape[1:] != tuple(obs_space.shape):
            raise DatasetError(
                f"{path}: {k} have shape {arrays[k].shape[1:]} per step, but {env_id} "
                f"observes {tuple(obs_space.shape)}"
            )
    for k in ("observations", "next_observations", "rewards"):
        if k in arrays and (row := _first_non_finite(arrays[k])) is not None:
            raise DatasetError(f"{path}: {k} hold NaN or inf (first at row {row})")
    for k in ("observations", "next_observations", "rewards", "actions"):
        if k in arrays and (row := _first_beyond_float32(arrays[k])) is not None:
            raise DatasetError(
                f"{path}: {k} hold values beyond float32's range, which training reads them in "
                f"(first at row {row})"
            )
    act = arrays["actions"]
    if isinstance(act_space, gym.spaces.Discrete):
        if act.ndim == 2 and act.shape[1] == 1:
            act = act[:, 0]
        if act.ndim != 1:
            raise DatasetError(
                f"{path}: actions have shape {act.shape[1:]} per step, but {env_id} takes one "
                f"discrete action"
            )
        if act.dtype.kind == "f":
            if (row := _first_non_finite(act)) is not None:
                raise DatasetError(f"{path}: actions hold NaN or inf (first at row {row})")
            if not np.array_equal(act, np.round(act)):
                row = int(np.flatnonzero(act != np.round(act))[0])
                raise DatasetError(
                    f"{path}: actions must be integers for {env_id}'s discrete actions "
                    f"(row {row} holds {act[row]})"
                )
        lo, hi = int(act_space.start), int(act_space.start + act_space.n)
        outside = (act < lo) | (act >= hi)
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise DatasetError(
                f"{path}: actions must be in [{lo}, {hi}) for {env_id} (row {row} holds {act[row]})"
            )
        arrays["actions"] = act.astype(np.int64)
    elif isinstance(act_space, gym.spaces.Box):
        if act.shape[1:] != act_space.shape:
            raise DatasetError(
                f"{path}: actions have shape {act.shape[1:]} per step, but {env_id} takes "
                f"{act_space.shape}"
            )
        if (row := _first_non_finite(act)) is not None:
            raise DatasetError(f"{path}: actions hold NaN or inf (first at row {row})")
        flat = act.reshape(len(act), -1)
        low, high = act_space.low.reshape(-1), act_space.high.reshape(-1)
        low = low - ACTION_TOLERANCE * np.maximum(1.0, np.abs(low))
        high = high + ACTION_TOLERANCE * np.maximum(1.0, np.abs(high))
        outside = np.asarray(((flat < low) | (flat > high)).any(axis=1))
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise DatasetError(
                f"{path}: actions outside {env_id}'s action bounds [{one_line(act_space.low)}, "
                f"{one_line(act_space.high)}] (first at row {row}: {one_line(act[row])})"
            )
    else:
        raise DatasetError(
            f"{path}: {env_id} has a {type(act_space).__name__} action space; D4RL files hold "
            "Box or Discrete actions"
        )


def check_refs(ref_min: float, ref_max: float) -> None:
    """Reference returns that normalize scores: finite, ref_max above ref_min."""
    if not (math.isfinite(ref_min) and math.isfinite(ref_max)):
        raise DatasetError(
            f"--ref-min and --ref-max must be finite numbers (got {ref_min}, {ref_max})"
        )
    if ref_max <= ref_min:
        raise DatasetError(
            f"--ref-max ({ref_max:g}) must be greater than --ref-min ({ref_min:g}): scores are "
            "normalized by ref_max - ref_min"
        )


def split_episodes(a: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Flat D4RL arrays -> Minari episode buffers (T+1 observations each), whole-array slicing."""
    n = len(a["observations"])
    term = a["terminals"].astype(bool)
    tout = a["timeouts"].astype(bool)
    ends = np.flatnonzero(term | tout)
    if len(ends) == 0 or ends[-1] != n - 1:
        ends = np.append(ends, n - 1)  # the file's end closes the last episode
    starts = np.concatenate([[0], ends[:-1] + 1])
    nxt = a.get("next_observations")
    episodes = []
    for s, e in zip(starts, ends, strict=True):
        stop = e + 1
        if nxt is not None:
            final = nxt[e]
        elif term[e]:
            final = a["observations"][e]  # never bootstrapped from
        else:  # timeout or file end without next_observations: drop the unknown last step
            stop, final = e, a["observations"][e]
        if stop <= s:
            continue
        t = term[s:stop].copy()
        tr = ~t
        tr[:-1] = False  # every episode ends with a termination or a truncation
        t[:-1] = False
        episodes.append(
            {
                "observations": np.concatenate([a["observations"][s:stop], final[None]]),
                "actions": a["actions"][s:stop],
                "rewards": a["rewards"][s:stop],
                "terminations": t,
                "truncations": tr,
            }
        )
    return episodes


def import_d4rl(
    path: Path,
    env_id: str,
    minari_id: str,
    ref_min=None,
    ref_max=None,
    force: bool = False,
    exclusive: bool = True,
):
    """Write a D4RL HDF5 file as a Minari dataset (staged, renamed into place when whole).

    The file is read and checked against the env (shapes, action space, finite values) before
    anything is written: a refused file leaves the Minari root as it was. exclusive: a dataset
    another process imported under this id meanwhile is not replaced (ids that name the content,
    as `bench run FILE` gives, pass False: the other import wrote the same data)."""
    import minari
    from minari.data_collector import EpisodeBuffer

    from bench.envs import make_env
    from bench.errors import BenchError
    from bench.types import EnvSpec

    arrays = read_d4rl(Path(path))
    if ref_min is None or ref_max is None:
        known = d4rl_refs(env_id)
        if known is None:
            raise DatasetError(
                f"{path}: no reference scores known for {env_id}; give --ref-min and --ref-max"
            )
        ref_min, ref_max, source = known
    else:
        source = "given at import (--ref-min / --ref-max)"
    check_refs(float(ref_min), float(ref_max))
    try:
        env = make_env(EnvSpec(env_id))
    except BenchError as e:
        raise DatasetError(one_line(e)) from None
    try:
        check_against_env(Path(path), arrays, env, env_id)
        # Minari stores every array once plus each episode's final observation: at most the
        # file's bytes, with observations twice when the file has no next_observations
        need = sum(v.nbytes for v in arrays.values())
        if "next_observations" not in arrays:
            need += arrays["observations"].nbytes
        check_free_space(minari_root(), need)
        episodes = split_episodes(arrays)
        if not episodes:
            raise DatasetError(
                f"{path}: no transitions left to import: every episode is one step that ends in "
                "a timeout, whose next observation is unknown without next_observations"
            )
        file_end_open = not (arrays["terminals"][-1] or arrays["timeouts"][-1])
        buffers = [EpisodeBuffer(id=i, **ep) for i, ep in enumerate(episodes)]
        with staged_dataset(minari_id, force, exclusive), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*author_email.*")
            ds = minari.create_dataset_from_buffers(
                dataset_id=minari_id,
                buffer=buffers,
                env=env,
                eval_env=env.spec,
                algorithm_name="imported from D4RL HDF5",
                author="bench",
                code_permalink=f"bench datasets import {Path(path).name}",
                ref_min_score=float(ref_min),
                ref_max_score=float(ref_max),
                description=f"imported from {Path(path).name}",
            )
            ds.storage.update_metadata(
                {
                    "bench_ref_source": source,
                    "bench_d4rl_next_observations": "next_observations" in arrays,
                    "bench_d4rl_open_end": bool(file_end_open),
                }
            )
    except OSError as e:  # the estimate fell short (or the disk filled meanwhile), or worse
        if is_disk_full(e):
            raise DatasetError(
                f"{path}: no space left in the Minari root {minari_root()}"
            ) from None
        raise DatasetError(
            f"{path}: cannot write {minari_id} into the Minari root {minari_root()} "
            f"({one_line(e.strerror or e)})"
        ) from None
    finally:
        env.close()
    return open_dataset(minari_id)


def export_d4rl(dataset, path: Path) -> None:
    """A Minari dataset -> the D4RL flat layout (with next_observations). A target inside the
    dataset's own folder (its data file, say) is refused: the export would replace it."""
    own = Path(dataset.storage.data_path).resolve().parent
    target = Path(path).resolve()
    if target == own or own in target.parents:
        raise DatasetError(
            f"cannot write {path}: it is inside the folder of dataset {dataset.id} ({own}), "
            "which the export reads; write it elsewhere"
        )
    meta = dataset.storage.metadata
    try:
        eps = list(dataset.storage.get_episodes(dataset.episode_indices))
        for e in eps:
            for k in ("observations", "actions", "rewards", "terminations", "truncations"):
                if not isinstance(e[k], np.ndarray):  # a Dict/Tuple space: not the D4RL layout
                    raise DatasetError(
                        f"dataset {dataset.id}: {k} are not flat arrays ({type(e[k]).__name__}); "
                        "the D4RL layout holds Box or Discrete data only"
                    )
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        raise DatasetError(
            f"dataset {dataset.id}: cannot be read ({type(e).__name__}: {one_line(e)[:300]})"
        ) from None
    if not eps:
        raise DatasetError(f"dataset {dataset.id}: no transitions (empty dataset)")
    timeouts = np.concatenate([e["truncations"] for e in eps]).astype(bool)
    if meta.get("bench_d4rl_open_end"):
        timeouts[-1] = False  # the original file ended without a flag
    arrays = {
        "observations": np.concatenate([e["observations"][:-1] for e in eps]),
        "actions": np.concatenate([e["actions"] for e in eps]),
        "rewards": np.concatenate([e["rewards"] for e in eps]),
        "terminals": np.concatenate([e["terminations"] for e in eps]).astype(bool),
        "timeouts": timeouts,
    }
    if meta.get("bench_d4rl_next_observations", True):
        arrays["next_observations"] = np.concatenate([e["observations"][1:] for e in eps])
    write_hdf5(arrays, Path(path))


def write_hdf5(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Write arrays as HDF5 datasets: free space checked first, then a temp file in the target
    folder renamed into place when whole; on any failure the temp file is removed and the
    target is untouched. Temp files that killed writers left for the same target are removed
    first."""
    path = Path(path)
    folder = path.absolute().parent
    check_target_file(path, DatasetError)
    _remove_stale_temp_files(folder, path.name)
    check_free_space(folder, sum(v.nbytes for v in arrays.values()))
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    try:
        with h5py.File(tmp, "w") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v)
        tmp.replace(path)
    except OSError as e:
        if is_disk_full(e):
            raise DatasetError(f"cannot write {path}: no space left in {folder}") from None
        raise DatasetError(f"cannot write {path}: {one_line(e.strerror or e)}") from None
    finally:
        _unlink_quietly(tmp)


def _unlink_quietly(path: Path) -> None:
    """Remove a file if it is there; never raise (a read-only file system refuses even the
    removal of a file that does not exist, and the error being reported matters more)."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _remove_stale_temp_files(folder: Path, name: str) -> None:
    """Delete `.NAME.<pid>.tmp` files whose writer no longer runs (killed mid-export)."""
    prefix = f".{name}."
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for p in entries:
        pid = p.name[len(prefix) : -len(".tmp")]
        if p.name.startswith(prefix) and p.name.endswith(".tmp") and pid.isdigit():
            if int(pid) != os.getpid() and not alive(int(pid)):
                _unlink_quietly(p)
