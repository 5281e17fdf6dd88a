"""Resume after SIGKILL: one row per evaluation, no duplicates or gaps, and the same scores as an
uninterrupted run with the same seed."""

import pandas as pd
import pytest

from tests.helpers import bench, killed_at

ARGS = (
    "run --algo discrete_bcq --dataset cartpole-mixed --seed 5 --steps 1500 --eval-every 50 "
    "--eval-episodes 2 --batch-size 16 --set hidden_sizes=32,32 --quiet"
).split()
COLS = ["step", "return_mean", "return_std", "episodes", "normalized_score"]


def stats_without_speed(t: pd.DataFrame) -> pd.DataFrame:
    return t[t.metric != "updates_per_s"][["step", "metric", "value"]].reset_index(drop=True)


def run_dir_of(results):
    (d,) = list((results / "runs").iterdir())
    return d


@pytest.fixture(scope="module")
def uninterrupted(tiny_cartpole, tmp_path_factory):
    results = tmp_path_factory.mktemp("ref")
    ref = bench(*ARGS, "--final-episodes", "10", "--results-dir", results)
    assert ref.returncode == 0, ref.stderr
    run_dir = run_dir_of(results)
    expected = pd.read_parquet(run_dir / "eval.parquet")
    assert expected.step.tolist() == list(range(50, 1501, 50))
    return run_dir


#: Where the run is killed: right after its 3rd checkpoint; halfway through writing its 5th
#: evaluation's table (the temp file half written, never renamed); halfway through its final
#: evaluation's table (the final evaluation is resumed too).
KILL_POINTS = ["checkpoint.pt:3:after", "eval.parquet:5:mid-write", "final.parquet:1:mid-write"]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_then_resume_matches_an_uninterrupted_run(uninterrupted, point, tmp_path):
    results = tmp_path / "killed"
    killed_at(point, *ARGS, "--final-episodes", "10", "--results-dir", results)
    run_dir = run_dir_of(results)
    expected = pd.read_parquet(uninterrupted / "eval.parquet")
    killed_at_rows = len(pd.read_parquet(run_dir / "eval.parquet"))
    assert 1 <= killed_at_rows <= len(expected), killed_at_rows

    res = bench("run", "--resume", run_dir, "--quiet")
    assert res.returncode == 0, res.stderr
    assert not list(run_dir.glob(".*.tmp"))  # the half-written temp file is gone
    got = pd.read_parquet(run_dir / "eval.parquet")
    assert got.step.tolist() == list(range(50, 1501, 50)), (killed_at_rows, got.step.tolist())
    pd.testing.assert_frame_equal(got[COLS], expected[COLS])
    final = pd.read_parquet(uninterrupted / "final.parquet")
    assert final.episodes.tolist() == [10] and final.step.tolist() == [1500]
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "final.parquet")[COLS], final[COLS])
    # training stats too, apart from the speed column
    a = pd.read_parquet(uninterrupted / "train.parquet")
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
