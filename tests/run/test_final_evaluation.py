"""The final evaluation: the last policy over final_episodes episodes, recorded apart from the
learning curve, scored by the leaderboard by default, part of the run key only when set."""

import dataclasses
import hashlib
import json

import pandas as pd
import pytest

from bench.analysis.leaderboard import leaderboard, protocol_line
from bench.analysis.scores import SCORED_CURVE, SCORED_FINAL, ScoreSpec, load_results
from bench.errors import BenchError
from bench.results.schema import FINAL_TABLE
from bench.run.config import RunConfig, RunOptions
from bench.run.loop import run_job
from bench.sweep import SweepSpec, plan
from tests.analysis.fake_runs import fake_config, make_run
from tests.helpers import train


def test_a_run_without_a_final_evaluation_keeps_the_key_it_had_before():
    cfg = fake_config("bc", "ds", 0, 100)
    ident = {k: getattr(cfg, k) for k in RunConfig.IDENTITY}  # the key as hashed before
    old = hashlib.sha256(
        json.dumps(json.loads(json.dumps(ident, sort_keys=True)), sort_keys=True).encode()
    ).hexdigest()[:12]
    assert cfg.key() == old
    with_final = dataclasses.replace(cfg, final_episodes=100)
    assert with_final.key() != old != dataclasses.replace(cfg, final_episodes=50).key()
    assert "--final-episodes 100" in with_final.command()
    assert with_final.differences([cfg]) == {"final_episodes": 100}
    # config.json round trip, and an edited final_episodes is caught by the key
    js = with_final.to_json()
    assert RunConfig.from_json(js) == with_final
    with pytest.raises(BenchError, match="edited"):
        RunConfig.from_json(js | {"final_episodes": 10})
    with pytest.raises(BenchError, match="not a bench run config"):
        RunConfig.from_json(cfg.to_json() | {"final_episodes": -1})


def test_options_check_final_episodes():
    assert RunOptions(final_episodes=0).final_episodes == 0
    for bad, msg in ((-1, ">= 0"), (10**6, "at most"), (2.5, "integer"), (True, "integer")):
        with pytest.raises(BenchError, match=msg):
            RunOptions(final_episodes=bad)


def test_leaderboard_scores_the_final_evaluation_and_says_what_it_scored(tmp_path):
    for seed, (curve, final) in enumerate(
        [([10, 20, 90], 30.0), ([10, 50, 60], 40.0), ([20, 30, 50], 50.0)]
    ):
        make_run(tmp_path, "bc", "ds", seed, curve, final=final, final_episodes=100)
    res = load_results(tmp_path)
    assert res.runs.score.tolist() == [30.0, 40.0, 50.0]
    assert set(res.runs.scored) == {SCORED_FINAL} and set(res.runs.episodes) == {100}
    assert res.counted.shape[0] == 3 and len(res.finals) == 3
    last = load_results(tmp_path, ScoreSpec("last", 1)).runs
    assert last.score.tolist() == [90.0, 60.0, 50.0] and set(last.episodes) == {10}
    assert load_results(tmp_path, ScoreSpec("best")).runs.score.tolist() == [90.0, 60.0, 50.0]
    board = leaderboard(tmp_path, reps=200)
    assert board.rows.iloc[0]["mean"] == pytest.approx(40.0)
    line = protocol_line(board, ScoreSpec())
    assert "100 episodes per scored evaluation" in line and "learning curve" in line
    assert "rows without a final evaluation" not in line
    # a configuration without one is scored by its curve, and the protocol says so
    make_run(tmp_path, "bcq", "ds", 0, [10, 20, 30])
    board = leaderboard(tmp_path, reps=200)
    scored = board.rows.set_index("label").scored
    assert scored["bc"] == SCORED_FINAL and scored["bcq"] == SCORED_CURVE
    assert "1 of 2 rows without a final evaluation" in protocol_line(board, ScoreSpec(), 200)


def test_a_run_whose_final_evaluation_is_missing_is_not_complete(tmp_path):
    make_run(tmp_path, "bc", "ds", 0, [10, 20], final_episodes=100)  # killed before its final
    res = load_results(tmp_path)
    assert res.counted.empty and res.in_progress.run_id.tolist() == ["bc__ds__s0__fake"]


def test_a_job_killed_before_its_final_evaluation_resumes_to_the_same_final(
    tiny_cartpole, tmp_path
):
    opts = dict(
        algo="bc",
        dataset="cartpole-mixed",
        steps=40,
        eval_every=20,
        eval_episodes=2,
        final_episodes=7,
        batch_size=16,
        overrides={"hidden_sizes": "16"},
    )
    ref = run_job(RunOptions(**opts), [0, 1], show_progress=False, results_dir=tmp_path / "ref")
    for r in ref:
        final = pd.read_parquet(r.run_dir / FINAL_TABLE)
        assert final.episodes.tolist() == [7] and final.step.tolist() == [40]
        assert r.final_row["normalized_score"] == pytest.approx(final.normalized_score[0])
        assert len(pd.read_parquet(r.run_dir / "eval.parquet")) == 2  # the curve is apart

    class Stop(Exception):
        pass

    def stop_at_the_end(row):
        if row["step"] == 40 and row["seed"] == 1:
            raise Stop  # every checkpoint of the last step written, no final evaluation yet

    with pytest.raises(Stop):
        run_job(
            RunOptions(**opts),
            [0, 1],
            show_progress=False,
            on_eval=stop_at_the_end,
            results_dir=tmp_path / "killed",
        )
    spec = SweepSpec(
        ["bc"],
        ["cartpole-mixed"],
        [0, 1],
        RunOptions(**{k: v for k, v in opts.items() if k not in ("algo", "dataset")}),
        tmp_path / "killed",
    )
    planned = plan(spec)
    assert [p.action for p in planned] == ["resume", "resume"]
    dirs = [p.run_dir for p in planned]
    assert not any((d / FINAL_TABLE).exists() for d in dirs)
    done = run_job(None, [], show_progress=False, resume=dirs)
    for r, want in zip(done, ref, strict=True):
        got = pd.read_parquet(r.run_dir / FINAL_TABLE)
        assert got.normalized_score[0] == want.final_row["normalized_score"]
    assert [p.action for p in plan(spec)] == ["skip", "skip"]


def test_no_final_evaluation_when_it_is_zero(tiny_cartpole, tmp_path):
    r = train(
        tmp_path,
        algo="bc",
        dataset="cartpole-mixed",
        steps=20,
        eval_every=20,
        eval_episodes=2,
        final_episodes=0,
        batch_size=16,
    )
    assert r.final_row is None and not (r.run_dir / FINAL_TABLE).exists()
    runs = load_results(tmp_path).runs
    assert runs.complete.all() and set(runs.scored) == {SCORED_CURVE}
