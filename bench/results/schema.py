"""The tidy results schema, atomic writes, and reading runs back.

results/runs/<run_id>/
    config.json      resolved config, dataset id + metadata hash, package versions, git sha
    eval.parquet     one row per evaluation (EVAL_SCHEMA): the learning curve
    final.parquet    the final evaluation of the last policy (EVAL_SCHEMA, one row), when the run
                     has one (final_episodes > 0): more episodes, env seeds of its own
    train.parquet    one row per (logged step, metric) (TRAIN_SCHEMA)
    checkpoint.pt    the final algorithm state
    policies/        the acting (and Q) weights of every evaluated policy (bench.run.policies)
Every file is written to a temporary name in the same folder, fsynced, then renamed: a reader
never sees a half-written file and a killed run never leaves one.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.errors import BenchError

EVAL_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("key", pa.string()),  # the run configuration's key (RunConfig.key(): seeds share it)
        ("algo", pa.string()),
        ("dataset", pa.string()),
        ("seed", pa.int64()),
        ("step", pa.int64()),  # number of gradient updates done when evaluated
        ("wall_time_s", pa.float64()),  # seconds since the run started
        ("return_mean", pa.float64()),  # raw (undiscounted) episode return, mean over episodes
        ("return_std", pa.float64()),
        ("episodes", pa.int64()),
        ("ref_min", pa.float64()),
        ("ref_max", pa.float64()),
        ("ref_source", pa.string()),
        ("normalized_score", pa.float64()),  # 100 * (return_mean - ref_min) / (ref_max - ref_min)
        # sum_t gamma^t r_t at gamma = bench.evaluate.EVAL_DISCOUNT (0.99), mean over episodes:
        # the true value offline estimates are compared with (null in older tables)
        ("discounted_return_mean", pa.float64()),
        # seconds this evaluation took (its episodes only), so that a run's wall time splits
        # into updates and evaluation (null in older tables)
        ("eval_time_s", pa.float64()),
    ]
)

#: The final evaluation's table in a run directory (EVAL_SCHEMA).
FINAL_TABLE = "final.parquet"

TRAIN_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("step", pa.int64()),
        ("metric", pa.string()),  # e.g. loss, q_loss, i_loss, reg_loss, updates_per_s
        ("value", pa.float64()),  # mean over the updates since the previous logged step
    ]
)


def check_target_file(path: Path, error: type[BenchError] = BenchError) -> None:
    """A file about to be written by a rename over it: its folder exists and is writable, and
    the path is no folder and no special file (renaming over /dev/null would replace the
    device). One `error` line otherwise, before any work."""
    path = Path(path)
    folder = path.absolute().parent
    if path.is_dir():
        raise error(f"cannot write {path}: it is a folder")
    if path.exists() and not path.is_file():
        raise error(f"cannot write {path}: it is not a regular file")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise error(f"cannot write {path}: {folder} {what}")
    if not os.access(folder, os.W_OK):
        raise error(f"cannot write {path}: folder {folder} is not writable")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, fsync, rename over `path`, fsync the folder.

    An OS error (disk full, read-only or missing folder) leaves `path` as it was and becomes
    one BenchError line."""
    try:
        _atomic_write(Path(path), data)
    except OSError as e:
        raise BenchError(f"cannot write {path}: {e.strerror or e}") from None


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results are meant to be shared and read
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(
        path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()
    )


def atomic_write_table(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    table = pa.Table.from_pylist(rows, schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write_bytes(path, buf.getvalue())


def runs_dir(results_dir: Path) -> Path:
    return Path(results_dir) / "runs"
