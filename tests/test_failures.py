"""Write failures and concurrency: one-line errors, nothing half-written, nothing lost."""

import errno
import os
import subprocess
import sys

import pandas as pd
import pytest

import bench.results.schema as results_module
from bench.errors import BenchError
from bench.results.store import read_eval
from bench.run.loop import run
from tests.helpers import BENCH, bench, train


def go(results, **kw):
    args = dict(
        algo="bc",
        dataset="cartpole-mixed",
        steps=40,
        eval_every=20,
        eval_episodes=1,
        batch_size=16,
        overrides={"hidden_sizes": "16,16"},
    )
    return train(results, **{**args, **kw})


def disk_full_after(monkeypatch, n_ok: int):
    """Every fsync after the first n_ok raises ENOSPC, as a full disk would."""
    calls = {"n": 0}
    real = os.fsync

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] > n_ok:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(results_module.os, "fsync", fsync)


def test_disk_full_at_the_start_leaves_no_run_directory(tiny_cartpole, tmp_path, monkeypatch):
    disk_full_after(monkeypatch, 0)
    with pytest.raises(BenchError, match="cannot write .*config.json: No space left on device"):
        go(tmp_path)
    assert not any((tmp_path / "runs").iterdir())


def test_disk_full_mid_run_keeps_the_last_complete_state_and_resumes(
    tiny_cartpole, tmp_path, monkeypatch
):
    # config.json, then eval/train/checkpoint at step 20 (2 fsyncs per file: data + folder)
    disk_full_after(monkeypatch, 2 * 4)
    with pytest.raises(BenchError, match="No space left on device"):
        go(tmp_path)
    (run_dir,) = list((tmp_path / "runs").iterdir())
    assert pd.read_parquet(run_dir / "eval.parquet").step.tolist() == [20]
    monkeypatch.undo()
    result = run(resume=run_dir, show_progress=False)
    assert [r["step"] for r in result.eval_rows] == [20, 40]
    assert pd.read_parquet(run_dir / "eval.parquet").step.tolist() == [20, 40]


def test_unwritable_results_dir_is_one_line(tiny_cartpole, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    res = bench(
        "run",
        "--algo",
        "bc",
        "--dataset",
        "cartpole-mixed",
        "--steps",
        5,
        "--results-dir",
        blocker / "results",
    )
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "cannot create run directory" in lines[0]


def test_concurrent_runs_into_one_results_dir_lose_nothing(tiny_cartpole, tmp_path):
    cmd = [str(BENCH)] if BENCH.exists() else [sys.executable, "-m", "bench.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            cmd
            + [
                "run",
                "--algo",
                "bc",
                "--dataset",
                "cartpole-mixed",
                "--seed",
                str(seed),
                "--steps",
                "60",
                "--eval-every",
                "10",
                "--eval-episodes",
                "1",
                "-q",
                "--results-dir",
                str(tmp_path),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(4)
    ]
    for p in procs:
        assert p.wait() == 0, p.stderr.read()
    frames = [pd.read_parquet(d / "eval.parquet") for d in (tmp_path / "runs").iterdir()]
    assert len(frames) == 4
    assert sorted(f.seed.iloc[0] for f in frames) == [0, 1, 2, 3]
    assert all(f.step.tolist() == [10, 20, 30, 40, 50, 60] for f in frames)
    assert len(read_eval(tmp_path)) == 24
