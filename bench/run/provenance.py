"""Where a run came from: package versions, the git commit, the host's threads and start time.
Recorded in config.json beside the run identity; never part of its key."""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from importlib import metadata as importlib_metadata
from pathlib import Path

PACKAGES = (
    "bench",
    "torch",
    "numpy",
    "gymnasium",
    "minari",
    "ale-py",
    "mujoco",
    "pandas",
    "pyarrow",
)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def git_sha() -> str | None:
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def provenance(threads: int) -> dict:
    return {
        "versions": versions(),
        "git_sha": git_sha(),
        "threads": threads,
        "started_utc": dt.datetime.now(dt.UTC).isoformat(),
    }
