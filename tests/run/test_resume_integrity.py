"""A resume continues its own run or refuses: another seed's or run's checkpoint, an edited
config.json, a renamed run; tables lost since the last checkpoint are written again; Ctrl-C is
one line and resumable; a damaged results folder is an error in `bench check`, not a pass/fail."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest

from tests.helpers import BENCH, bench, train, wait_for

SMALL = dict(
    algo="bc",
    dataset="cartpole-mixed",
    steps=40,
    eval_every=20,
    eval_episodes=1,
    batch_size=16,
    overrides={"hidden_sizes": "16,16"},
)


class Stop(Exception):
    pass


def stopped_run(results, seed):
    """A run stopped right after its first evaluation (checkpoint at step 20)."""

    def stop(row):
        raise Stop

    with pytest.raises(Stop):
        train(results, seed=seed, on_eval=stop, **SMALL)
    return next(d for d in (results / "runs").iterdir() if f"__s{seed}__" in d.name)


@pytest.fixture
def two_seeds(tiny_cartpole, tmp_path):
    return stopped_run(tmp_path, 0), stopped_run(tmp_path, 1)


def refused(run_dir, message):
    res = bench("run", "--resume", run_dir, "-q")
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, res.stderr
    assert message in res.stderr, res.stderr


def test_another_seeds_checkpoint_is_refused(two_seeds):
    a, b = two_seeds
    shutil.copy(b / "checkpoint.pt", a / "checkpoint.pt")
    refused(a, "does not belong to this run")


def test_a_checkpoint_without_its_fingerprint_is_refused(two_seeds):
    import torch

    a, _ = two_seeds
    state = torch.load(a / "checkpoint.pt", weights_only=True)
    del state["fingerprint"]
    torch.save(state, a / "checkpoint.pt")
    refused(a, "does not belong to this run")


def test_an_edited_seed_or_run_id_is_refused(two_seeds):
    a, b = two_seeds
    cfg = json.loads((a / "config.json").read_text())
    (a / "config.json").write_text(json.dumps(cfg | {"seed": 5}))
    refused(a, "the file was edited")
    cfg_b = json.loads((b / "config.json").read_text())
    (b / "config.json").write_text(json.dumps(cfg_b | {"run_id": "elsewhere"}))
    refused(b, "config.json names another run")


def test_tables_lost_since_the_checkpoint_are_written_again(two_seeds):
    a, _ = two_seeds
    (a / "eval.parquet").write_bytes(b"garbage")
    (a / "train.parquet").unlink()
    (a / ".eval.parquet.x1y2.tmp").write_bytes(b"left by a kill -9")
    res = bench("run", "--resume", a, "-q")
    assert res.returncode == 0, res.stderr
    assert pd.read_parquet(a / "eval.parquet").step.tolist() == [20, 40]
    assert (a / "train.parquet").is_file() and not list(a.glob(".*.tmp"))


def test_check_reports_a_damaged_results_folder_instead_of_failing_rows(two_seeds, tmp_path):
    a, _ = two_seeds
    from tests.analysis.fake_runs import make_run

    make_run(tmp_path / "ok", "bc", "ds", 0, [50])
    base = tmp_path / "base.parquet"
    assert (
        bench("check", "--baseline", base, "--results", tmp_path / "ok", "--update").returncode == 0
    )
    (a / "eval.parquet").write_bytes(b"garbage")
    res = bench("check", "--baseline", base, "--results", a.parent.parent)
    assert res.returncode == 2 and "eval.parquet" in res.stderr, res.stdout + res.stderr


def test_ctrl_c_is_one_line_and_the_run_resumes(tiny_cartpole, tmp_path):
    args = [
        "run",
        "--algo",
        "bc",
        "--dataset",
        "cartpole-mixed",
        "--steps",
        "3000",
        "--eval-every",
        "100",
        "--eval-episodes",
        "1",
        "--batch-size",
        "16",
        "--results-dir",
        str(tmp_path),
        "-q",
    ]
    cmd = [str(BENCH)] if BENCH.exists() else [sys.executable, "-m", "bench.cli"]
    # as from a terminal: SIGINT at its default, whatever this test process inherited (a child
    # started with SIGINT ignored keeps ignoring it, and Python then never raises Ctrl-C)
    proc = subprocess.Popen(
        cmd + args,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    wait_for(lambda: list(tmp_path.glob("runs/*/checkpoint.pt")), "the run's first checkpoint")
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.strip().splitlines() == ["bench: interrupted"], err
    (run_dir,) = (tmp_path / "runs").iterdir()
    res = bench("run", "--resume", run_dir, "-q")
    assert res.returncode == 0, res.stderr
    assert pd.read_parquet(run_dir / "eval.parquet").step.tolist() == list(range(100, 3001, 100))


def test_a_sweep_into_an_unwritable_results_folder_is_one_line(tiny_cartpole, tmp_path):
    (tmp_path / "a-file").write_text("")
    res = bench(
        "sweep",
        "--algo",
        "bc",
        "--dataset",
        "cartpole-mixed",
        "--seeds",
        "0",
        "--steps",
        "20",
        "--results-dir",
        tmp_path / "a-file" / "r",
        "-q",
    )
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, res.stdout + res.stderr
    assert "cannot write results to" in res.stderr
