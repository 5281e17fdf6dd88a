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


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; else what platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: str = "cpu") -> dict:
    """What the run ran on: the CPU model and cores, and the GPU's name on a CUDA device."""
    import os

    out = {"cpu": cpu_model(), "cores": os.cpu_count()}
    if device.startswith("cuda"):
        import torch

        out["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return out


def provenance(threads: int, device: str = "cpu") -> dict:
    return {
        "versions": versions(),
        "git_sha": git_sha(),
        "threads": threads,
        "hardware": hardware(device),
        "started_utc": dt.datetime.now(dt.UTC).isoformat(),
    }
