"""Running the real `bench` console script in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(sys.executable).parent / "bench"


def bench(*args, env_extra=None, timeout=300) -> subprocess.CompletedProcess:
    cmd = [str(BENCH)] if BENCH.exists() else [sys.executable, "-m", "bench.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run(
        cmd + [str(a) for a in args], capture_output=True, text=True, env=env, timeout=timeout
    )


def train(results_dir, *, show_progress=False, on_eval=None, **options):
    """One run in this process: RunOptions(**options) into results_dir."""
    from bench.run.config import RunOptions
    from bench.run.loop import run

    opts = RunOptions(**options)
    return run(opts, show_progress=show_progress, on_eval=on_eval, results_dir=Path(results_dir))
