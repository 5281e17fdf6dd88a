"""A build killed midway leaves no dataset that loads as if whole; the next build starts clean."""

import os
import signal
import subprocess
import sys
import time

from bench.data.minari_io import dataset_exists
from tests.helpers import BENCH, wait_for


def test_killed_build_leaves_nothing_and_the_next_build_is_clean(tmp_path, monkeypatch):
    root = tmp_path / "minari"
    env = {**os.environ, "MINARI_DATASETS_PATH": str(root), "OMP_NUM_THREADS": "1"}
    cmd = [str(BENCH)] if BENCH.exists() else [sys.executable, "-m", "bench.cli"]
    proc = subprocess.Popen(
        cmd + ["datasets", "build", "cartpole-mixed", "--size", "60000", "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    staging = root / ".bench-staging"
    wait_for(lambda: staging.is_dir() and any(staging.iterdir()), "the build's staging folder", 60)
    time.sleep(1.0)  # mid-collection
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    assert not dataset_exists("bench/cartpole-mixed-v0")
    assert any(staging.iterdir())  # the killed build's leftovers
    res = subprocess.run(
        cmd + ["datasets", "build", "cartpole-mixed", "--size", "500", "-q"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert dataset_exists("bench/cartpole-mixed-v0")
    assert not staging.exists()  # stale staging removed, own staging renamed away
