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

import os
import warnings
from pathlib import Path

import h5py
import numpy as np

from bench.data.minari_io import (
    check_free_space,
    is_disk_full,
    minari_root,
    open_dataset,
    staged_dataset,
)
from bench.errors import DatasetError

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


def read_d4rl(path: Path) -> dict[str, np.ndarray]:
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in REQUIRED if k not in f]
            if missing:
                raise DatasetError(f"{path}: missing D4RL keys {', '.join(missing)}")
            keys = [*REQUIRED, "timeouts", "next_observations"]
            arrays = {k: f[k][()] for k in keys if k in f}
    except OSError as e:
        raise DatasetError(f"{path}: cannot be read as HDF5 ({e})") from None
    n = len(arrays["observations"])
    if n == 0:
        raise DatasetError(f"{path}: no transitions (empty dataset)")
    bad = [k for k, v in arrays.items() if len(v) != n]
    if bad:
        raise DatasetError(f"{path}: {', '.join(bad)} do not have {n} rows like observations")
    arrays.setdefault("timeouts", np.zeros(n, bool))
    return arrays


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
    path: Path, env_id: str, minari_id: str, ref_min=None, ref_max=None, force: bool = False
):
    """Write a D4RL HDF5 file as a Minari dataset (staged, renamed into place when whole)."""
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

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
    try:
        env = gym.make(env_id)
    except gym.error.Error as e:
        raise DatasetError(f"cannot make env {env_id}: {e}") from None
    # Minari stores every array once plus each episode's final observation: at most the
    # file's bytes, with observations twice when the file has no next_observations
    need = sum(v.nbytes for v in arrays.values())
    if "next_observations" not in arrays:
        need += arrays["observations"].nbytes
    check_free_space(minari_root(), need)
    episodes = split_episodes(arrays)
    file_end_open = not (arrays["terminals"][-1] or arrays["timeouts"][-1])
    buffers = [EpisodeBuffer(id=i, **ep) for i, ep in enumerate(episodes)]
    try:
        with staged_dataset(minari_id, force), warnings.catch_warnings():
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
    except OSError as e:  # the estimate fell short (or the disk filled meanwhile)
        if not is_disk_full(e):
            raise
        raise DatasetError(f"{path}: no space left in the Minari root {minari_root()}") from None
    finally:
        env.close()
    return open_dataset(minari_id)


def export_d4rl(dataset, path: Path) -> None:
    """A Minari dataset -> the D4RL flat layout (with next_observations)."""
    meta = dataset.storage.metadata
    eps = list(dataset.storage.get_episodes(dataset.episode_indices))
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
    target is untouched."""
    path = Path(path)
    folder = path.absolute().parent
    if not folder.is_dir():
        raise DatasetError(f"cannot write {path}: folder {folder} does not exist")
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
        raise DatasetError(f"cannot write {path}: {e}") from None
    finally:
        tmp.unlink(missing_ok=True)
