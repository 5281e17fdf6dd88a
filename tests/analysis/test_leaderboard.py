"""bench leaderboard / plot / check on results folders written directly in the schema."""

import pandas as pd
import pytest

from bench.analysis.leaderboard import leaderboard
from bench.analysis.scores import ScoreSpec, load_results
from tests.analysis.fake_runs import make_run


@pytest.fixture
def results(tmp_path):
    r = tmp_path / "results"
    for seed, scores in enumerate([[10, 20, 30, 40], [20, 30, 40, 50], [30, 40, 50, 60]]):
        make_run(r, "bc", "ds-a", seed, scores)
        make_run(r, "bc", "ds-b", seed, [s + 40 for s in scores])
        make_run(r, "discrete_bcq", "ds-a", seed, [s + 20 for s in scores])
    make_run(r, "bc", "ds-a", 7, [0, 0], steps=1000)  # still running: 200 of 1000 steps
    return r


def test_run_scores_final_last_k_and_best(results):
    final = load_results(results, ScoreSpec("final", 2)).runs.set_index("run_id")
    assert final.loc["bc__ds-a__s0__fake", "score"] == pytest.approx(35.0)  # mean(30, 40)
    best = load_results(results, ScoreSpec("best")).runs.set_index("run_id")
    assert best.loc["bc__ds-a__s2__fake", "score"] == 60
    assert not final.loc["bc__ds-a__s7__fake", "complete"]


def test_leaderboard_rows_aggregates_and_in_progress(results):
    board = leaderboard(results, ScoreSpec("final", 1), reps=500)
    row = board.rows.set_index(["label", "dataset"]).loc[("bc", "ds-a")]
    assert row.seeds == 3 and row["mean"] == pytest.approx(50.0)  # finals 40, 50, 60
    assert row.iqm_lo <= row.iqm <= row.iqm_hi and row.step == 400
    assert row.command == (
        "bench sweep --algo bc --dataset ds-a --seeds 0-2 --steps 400 --eval-every 100 "
        "--eval-episodes 10 --final-episodes 0 --batch-size 64 --preset none"
    )
    assert list(board.results.in_progress.run_id) == ["bc__ds-a__s7__fake"]  # left out, said so
    both = board.blocks[0]  # bc alone over the two datasets it has; discrete_bcq has only ds-a
    assert both.datasets == ["ds-a", "ds-b"] and list(both.table.label) == ["bc"]
    bc = both.table.set_index("label").loc["bc"]
    # pooled finals: ds-a 40 50 60, ds-b 80 90 100 -> IQM of 6 = mean of middle 4 (trim 1 each)
    assert bc.runs == 6
    assert bc.iqm == pytest.approx((50 + 60 + 80 + 90) / 4)
    assert bc.optimality_gap == pytest.approx((60 + 50 + 40 + 20 + 10 + 0) / 6)


def test_leaderboard_cli_formats(results, tmp_path, cli):
    md = cli("leaderboard", "--results", results)
    assert md.returncode == 0, md.stderr
    assert "| bc " in md.stdout and "IQM" in md.stdout
    assert "runs without one: the mean of each run's last 3 periodic evaluation(s)" in md.stdout
    assert "1 run(s) in progress, not counted: bc__ds-a__s7__fake" in md.stdout
    assert "bench sweep --algo discrete_bcq --dataset ds-a --seeds 0-2" in md.stdout
    best = cli("leaderboard", "--results", results, "--score", "best")
    assert "optimistic" in best.stdout
    csv = cli("leaderboard", "--results", results, "--format", "csv", "--out", tmp_path / "l.csv")
    assert csv.returncode == 0
    frame = pd.read_csv(tmp_path / "l.csv")
    assert {"iqm", "iqm_lo", "iqm_hi", "command", "score"} <= set(frame.columns)
    html = cli("leaderboard", "--results", results, "--format", "html")
    assert html.stdout.startswith("<!DOCTYPE html>") and "</html>" in html.stdout
    assert "<h2>Protocol per dataset</h2>" in html.stdout  # the table the terminal prints too


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "pdf"], "unknown format 'pdf'"),
        (["--score", "median"], "unknown score 'median'"),
        (["--last-k", "0"], "--last-k must be an integer >= 1"),
    ],
)
def test_leaderboard_bad_options_are_one_line(results, args, message, cli):
    res = cli("leaderboard", "--results", results, *args)
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.splitlines()) == 1


def test_leaderboard_of_an_empty_folder_is_one_line(tmp_path, cli):
    res = cli("leaderboard", "--results", tmp_path)
    assert res.returncode == 2 and "no runs with evaluations" in res.stderr


def test_plots_are_valid_png_and_svg(results, tmp_path, cli):
    res = cli("plot", "--results", results, "--out", tmp_path / "plots")
    assert res.returncode == 0, res.stderr
    for name in ("curves", "bars", "profile"):
        png = (tmp_path / "plots" / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
        assert b"<svg" in (tmp_path / "plots" / f"{name}.svg").read_bytes()[:2000]


def test_check_passes_unchanged_and_fails_a_planted_regression(results, tmp_path, cli):
    base = tmp_path / "base.parquet"
    assert cli("check", "--baseline", base, "--results", results, "--update").returncode == 0
    same = cli("check", "--baseline", base, "--results", results)
    assert same.returncode == 0 and "all 3 passed" in same.stdout
    worse = tmp_path / "worse"
    for seed, scores in enumerate([[0, 0, 0, 5], [0, 0, 0, 10], [0, 0, 0, 15]]):
        make_run(worse, "bc", "ds-a", seed, scores)  # bc on ds-a regressed
        make_run(worse, "bc", "ds-b", seed, [s + 40 for s in (10, 20, 30, 40 + 10 * seed)])
    res = cli("check", "--baseline", base, "--results", worse)
    assert res.returncode == 1
    out = res.stdout
    assert "FAIL" in out and "no complete runs" in out  # discrete_bcq is missing: also a fail
    assert "2 of 3 regressed" in out


def test_check_with_a_missing_baseline_is_one_line(results, tmp_path, cli):
    res = cli("check", "--baseline", tmp_path / "nope.parquet", "--results", results)
    assert res.returncode == 2 and "no baseline file" in res.stderr


def test_the_time_table_splits_wall_time_into_updates_and_evaluation(tmp_path):
    from bench.analysis.leaderboard import time_frame
    from bench.results.schema import EVAL_SCHEMA, FINAL_TABLE, atomic_write_table, runs_dir

    for seed in (0, 1):
        d = runs_dir(tmp_path) / make_run(
            tmp_path, "bc", "ds", seed, [10.0, 20.0], final=20.0, final_episodes=5
        )
        for name, walls, took in (
            ("eval.parquet", [50.0, 100.0], [5.0, 5.0]),
            (FINAL_TABLE, [120.0], [20.0]),
        ):
            rows = pd.read_parquet(d / name).assign(wall_time_s=walls, eval_time_s=took)
            atomic_write_table(d / name, rows.to_dict("records"), EVAL_SCHEMA)
    make_run(tmp_path, "bc", "older", 0, [10.0, 20.0])  # written before evaluation times
    times = time_frame(leaderboard(tmp_path, ScoreSpec()))
    assert list(times.dataset) == ["ds"]  # the older run's configuration is left out
    row = times.iloc[0]
    assert row.runs == 2 and row.wall == "2 min 00 s"
    assert row.evaluating == "25%"  # (5 + 5 + 20) / 120
    assert row["ms per update"] == "450.0"  # (120 - 30) s / 200 updates
    assert row["s per evaluation"] == "5.0" and row["final evaluation"] == "20 s"
