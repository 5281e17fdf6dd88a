"""Checkpoints (taken at every evaluation) and the run lock.

A checkpoint holds everything a resume needs: networks, optimizers, counters, the seed's random
streams (the sampler's and the algorithm's), the rows written so far, and the run's id and
fingerprint (key and seed), so a checkpoint of another run, configuration or seed is refused.
A job of S seeds writes one checkpoint per seed, each that seed's slice ([1, ...] networks),
exactly what a one-seed job writes; a resumed job stacks the slices again.

The lock: a running run holds an exclusive flock on <run_dir>/.lock. The kernel drops it when
the process ends, however it ends (kill -9 included), so "locked" means "a live process is
writing this run": a sweep or a resume never writes a run another process is still writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
from pathlib import Path
from typing import Any

import torch

from bench.data.safe_load import load_torch, plain
from bench.errors import BenchError
from bench.results.schema import atomic_write_bytes
from bench.seeding import stack_seeds

LOCK_FILE = ".lock"


#: Checkpoint layout. 2: one seed's slice of a job (networks [1, ...], per-seed random streams).
FORMAT = 2


def save_checkpoint(
    path: Path,
    run_id: str,
    fingerprint: str,
    state: dict,
    step: int,
    elapsed: float,
    eval_rows: list[dict],
    train_rows: list[dict],
) -> None:
    """One seed's checkpoint: state = {"algo": ..., "sampler": ...}, that seed's slice. It holds
    only tensors and plain values (numpy values are converted), so it loads with weights_only."""
    buf = io.BytesIO()
    torch.save(
        plain(
            {
                "format": FORMAT,
                "run_id": run_id,
                "fingerprint": fingerprint,
                "algo": state["algo"],
                "sampler": state["sampler"],
                "step": step,
                "elapsed_s": elapsed,
                "eval_rows": eval_rows,
                "train_rows": train_rows,
            }
        ),
        buf,
    )
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(run_dir: Path, fingerprint: str, steps: int) -> dict[str, Any] | None:
    """The last checkpoint of run_dir (None if it has none); one error line if it is unreadable
    or does not belong to this run (another run's, another seed's, or edited)."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        return None
    try:
        state = load_torch(path, "checkpoint", map_location=None)  # tensors where saved
    except BenchError as e:
        raise BenchError(f"--resume {run_dir}: {e}") from None
    try:
        ok = (
            isinstance(state, dict)
            and state.get("fingerprint") == fingerprint
            and state.get("run_id") == Path(run_dir).name
            and isinstance(state.get("step"), int)
            and 0 < state["step"] <= steps
            and all(k in state for k in ("algo", "eval_rows", "train_rows"))
            and all(r.get("run_id") == state["run_id"] for r in state["eval_rows"])
        )
    except (AttributeError, TypeError):  # rows that are not dicts: an edited file
        ok = False
    if not ok:
        raise BenchError(
            f"--resume {run_dir}: checkpoint.pt does not belong to this run (edited or foreign)"
        )
    if state.get("format") != FORMAT:
        raise BenchError(
            f"--resume {run_dir}: checkpoint.pt was written by an older bench (before seeds "
            "trained together) and cannot continue here; start a new run"
        )
    return state


def stack_checkpoints(states: list[dict]) -> dict:
    """The seeds' checkpoints (all at one step) -> the job's: states stacked on the seed
    dimension, rows kept per seed."""
    try:
        job = stack_seeds([{"algo": st["algo"], "sampler": st["sampler"]} for st in states])
    except ValueError as e:
        raise BenchError(f"the runs' checkpoints cannot share a job ({e})") from None
    return job | {
        "step": states[0]["step"],
        "elapsed_s": max(float(st["elapsed_s"]) for st in states),
        "eval_rows": [st["eval_rows"] for st in states],
        "train_rows": [st["train_rows"] for st in states],
    }


def restore(state: dict, algo, sampler) -> None:
    try:
        algo.load_state_dict(state["algo"])
        sampler.load_state_dict(state["sampler"])
    except (KeyError, RuntimeError, TypeError, ValueError, IndexError) as e:
        raise BenchError(f"checkpoint.pt does not fit this run ({type(e).__name__}: {e})") from None


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold the run's lock while the body runs; refuse when another live process holds it."""
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise BenchError(f"cannot lock run {run_dir}: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BenchError(
                f"run {run_dir} is being written by another process (still running)"
            ) from None
        yield
    finally:
        os.close(fd)


def is_locked(run_dir: Path) -> bool:
    """Whether a live process is writing run_dir now."""
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def remove_stale_temp_files(run_dir: Path) -> None:
    """Temp files of atomic writes that a killed process left (`.<name>.*.tmp`). Called with the
    run's lock held, so no live writer owns them."""
    for tmp in Path(run_dir).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
