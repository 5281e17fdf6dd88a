"""Jobs of several seeds: each seed writes the run directory a one-seed run writes, with the
same rows; a killed job resumes to exactly the rows of an uninterrupted one, for every seed."""

import json

import pandas as pd

from tests.helpers import NO_FINAL, bench, killed_at

BASE = [
    *NO_FINAL,
    "--algo",
    "discrete_bcq",
    "--dataset",
    "cartpole-mixed",
    "--steps",
    "600",
    "--eval-every",
    "50",
    "--eval-episodes",
    "2",
    "--batch-size",
    "16",
    "--set",
    "hidden_sizes=32,32",
    "--quiet",
]
COLS = ["seed", "step", "return_mean", "return_std", "episodes", "normalized_score", "key"]


def tables(results) -> dict[int, tuple[pd.DataFrame, pd.DataFrame]]:
    """seed -> (eval table, train table without the speed column)."""
    out = {}
    for d in sorted((results / "runs").iterdir()):
        cfg = json.loads((d / "config.json").read_text())
        ev = pd.read_parquet(d / "eval.parquet")[COLS].reset_index(drop=True)
        tr = pd.read_parquet(d / "train.parquet")
        tr = tr[tr.metric != "updates_per_s"][["step", "metric", "value"]].reset_index(drop=True)
        assert cfg["seed"] not in out
        out[cfg["seed"]] = (ev, tr)
    return out


def test_a_job_of_three_seeds_writes_what_three_one_seed_runs_write(tiny_cartpole, tmp_path):
    res = bench("run", *BASE, "--seeds", "0-2", "--results-dir", tmp_path / "job")
    assert res.returncode == 0, res.stderr
    job = tables(tmp_path / "job")
    assert sorted(job) == [0, 1, 2]
    assert len({t[0].key.iloc[0] for t in job.values()}) == 1  # one configuration
    res = bench("run", *BASE, "--seeds", "0-2", "--no-vectorize", "--results-dir", tmp_path / "one")
    assert res.returncode == 0, res.stderr
    alone = tables(tmp_path / "one")
    for seed in (0, 1, 2):
        pd.testing.assert_frame_equal(job[seed][0], alone[seed][0])
        pd.testing.assert_frame_equal(job[seed][1], alone[seed][1], rtol=1e-5)
    # a one-seed checkpoint holds that seed's slice: the same layout as a one-seed job's
    import torch

    ckpts = {}
    for name in ("job", "one"):
        d = sorted((tmp_path / name / "runs").iterdir())[1]
        ckpts[name] = torch.load(d / "checkpoint.pt", weights_only=True)["algo"]
    a, b = ckpts["job"]["modules"]["net"], ckpts["one"]["modules"]["net"]
    assert a.keys() == b.keys()
    assert all(a[k].shape == b[k].shape and a[k].shape[0] == 1 for k in a)


def test_kill_a_job_then_resume_gives_the_uninterrupted_rows_for_every_seed(
    tiny_cartpole, tmp_path
):
    args = [*BASE, "--seeds", "4,7,9"]
    ref = bench("run", *args, "--results-dir", tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr
    expected = tables(tmp_path / "ref")

    results = tmp_path / "killed"
    # the 5th checkpoint write: seeds 4 and 7 have their second checkpoint, seed 9 its first
    killed_at("checkpoint.pt:5:after", "run", *args, "--results-dir", results)
    dirs = sorted((results / "runs").iterdir())
    done = [len(pd.read_parquet(d / "eval.parquet")) for d in dirs]
    assert sorted(done) == [1, 2, 2], done  # eval.parquet is written before checkpoint.pt

    # one resume for all: seeds checkpointed at one step continue together (a kill between the
    # seeds' checkpoint writes leaves two steps: each continues as its own job)
    res = bench("run", *[a for d in dirs for a in ("--resume", d)], "--quiet")
    assert res.returncode == 0, res.stderr
    got = tables(results)
    for seed in (4, 7, 9):
        pd.testing.assert_frame_equal(got[seed][0], expected[seed][0])
        pd.testing.assert_frame_equal(got[seed][1], expected[seed][1])


def test_runs_of_different_configurations_cannot_resume_as_one_job(tiny_cartpole, tmp_path):
    assert (
        bench("run", *BASE, "--steps", "100", "--seeds", "0", "--results-dir", tmp_path).returncode
        == 0
    )
    assert (
        bench(
            "run",
            *BASE,
            "--steps",
            "100",
            "--eval-every",
            "25",
            "--seeds",
            "1",
            "--results-dir",
            tmp_path,
        ).returncode
        == 0
    )
    dirs = sorted((tmp_path / "runs").iterdir())
    res = bench("run", "--resume", dirs[0], "--resume", dirs[1])
    assert res.returncode == 2
    assert res.stderr.startswith("bench: error:") and len(res.stderr.strip().splitlines()) == 1
    assert "different configurations" in res.stderr


def test_runs_stopped_at_different_steps_resume_together_by_step(tiny_cartpole, tmp_path):
    """A job stopped after its first evaluation; one seed continued alone to the end; resuming
    both continues each from its own checkpoint and gives the uninterrupted rows."""
    from bench.run.config import RunOptions
    from bench.run.loop import run_job

    opts = RunOptions(
        algo="discrete_bcq",
        dataset="cartpole-mixed",
        steps=200,
        eval_every=50,
        eval_episodes=2,
        batch_size=16,
        final_episodes=0,
        overrides={"hidden_sizes": "32,32"},
    )
    run_job(opts, [0, 1], show_progress=False, results_dir=tmp_path / "ref")
    expected = tables(tmp_path / "ref")

    class Stop(Exception):
        pass

    def stop(row):
        if row["step"] == 50 and row["seed"] == 1:
            raise Stop

    try:
        run_job(opts, [0, 1], show_progress=False, on_eval=stop, results_dir=tmp_path / "cut")
    except Stop:
        pass
    dirs = sorted((tmp_path / "cut" / "runs").iterdir())
    seed0 = [d for d in dirs if json.loads((d / "config.json").read_text())["seed"] == 0]
    run_job(None, [], show_progress=False, resume=seed0)  # seed 0 alone, to the end
    results = run_job(None, [], show_progress=False, resume=dirs)  # steps 200 and 50
    assert [r.config.seed for r in results] == [
        json.loads((d / "config.json").read_text())["seed"] for d in dirs
    ]
    got = tables(tmp_path / "cut")
    for seed in (0, 1):
        pd.testing.assert_frame_equal(got[seed][0], expected[seed][0])
        pd.testing.assert_frame_equal(got[seed][1], expected[seed][1])
