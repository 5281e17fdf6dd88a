"""Resume after SIGKILL: one row per evaluation, no duplicates or gaps, and the same scores as an
uninterrupted run with the same seed."""

import os
import random
import signal
import subprocess
import sys
import time

import pandas as pd

from tests.helpers import BENCH, bench

ARGS = [
    "run", "--algo", "discrete_bcq", "--dataset", "cartpole-mixed", "--seed", "5",
    "--steps", "1500", "--eval-every", "50", "--eval-episodes", "2", "--batch-size", "16",
    "--set", "hidden_sizes=32,32", "--quiet",
]  # fmt: skip
COLS = ["step", "return_mean", "return_std", "episodes", "normalized_score"]


def stats_without_speed(t: pd.DataFrame) -> pd.DataFrame:
    return t[t.metric != "updates_per_s"][["step", "metric", "value"]].reset_index(drop=True)


def run_dir_of(results):
    (d,) = list((results / "runs").iterdir())
    return d


def test_kill_at_a_random_moment_then_resume_matches_an_uninterrupted_run(tiny_cartpole, tmp_path):
    args = [*ARGS, "--final-episodes", "10"]  # the final evaluation is resumed too
    ref = bench(*args, "--results-dir", tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr
    expected = pd.read_parquet(run_dir_of(tmp_path / "ref") / "eval.parquet")
    assert expected.step.tolist() == list(range(50, 1501, 50))

    results = tmp_path / "killed"
    cmd = [str(BENCH)] if BENCH.exists() else [sys.executable, "-m", "bench.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        cmd + args + ["--results-dir", str(results)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and not list(results.glob("runs/*/checkpoint.pt")):
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.8))  # somewhere after the first checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = run_dir_of(results)
    killed_at = len(pd.read_parquet(run_dir / "eval.parquet"))
    assert 1 <= killed_at < len(expected), killed_at  # the kill did interrupt the run

    res = bench("run", "--resume", run_dir, "--quiet")
    assert res.returncode == 0, res.stderr
    got = pd.read_parquet(run_dir / "eval.parquet")
    assert got.step.tolist() == list(range(50, 1501, 50)), (killed_at, got.step.tolist())
    pd.testing.assert_frame_equal(got[COLS], expected[COLS])
    final = pd.read_parquet(run_dir_of(tmp_path / "ref") / "final.parquet")
    assert final.episodes.tolist() == [10] and final.step.tolist() == [1500]
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "final.parquet")[COLS], final[COLS])
    # training stats too, apart from the speed column
    a = pd.read_parquet(run_dir_of(tmp_path / "ref") / "train.parquet")
    pd.testing.assert_frame_equal(
        stats_without_speed(pd.read_parquet(run_dir / "train.parquet")), stats_without_speed(a)
    )


def test_resume_of_a_finished_run_changes_nothing(tiny_cartpole, tmp_path):
    assert bench(*ARGS, "--steps", "100", "--results-dir", tmp_path).returncode == 0
    run_dir = run_dir_of(tmp_path)
    before = pd.read_parquet(run_dir / "eval.parquet")
    res = bench("run", "--resume", run_dir, "--quiet")
    assert res.returncode == 0, res.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "eval.parquet"), before)


def test_resume_of_a_missing_or_foreign_directory_is_one_line(tmp_path):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "config.json").write_text("{}")
    for d in (tmp_path / "missing", tmp_path / "foreign"):
        res = bench("run", "--resume", d)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "not a bench run directory" in res.stderr
