"""Comparisons that must not be silently wrong: configurations never pooled, one run per
configuration and seed, aggregates only over shared datasets, tasks with one run, and checks
against one-seed baselines."""

import pandas as pd
import pytest

from bench.analysis.check import check, read_baseline, write_baseline
from bench.analysis.leaderboard import leaderboard
from bench.analysis.scores import ScoreSpec
from tests.analysis.fake_runs import make_run

SPEC = ScoreSpec("final", 1)


def test_configurations_of_one_algorithm_are_separate_rows(tmp_path):
    for seed in range(3):
        make_run(tmp_path, "bc", "ds-a", seed, [10, 20 + seed], suffix="short")
        make_run(tmp_path, "bc", "ds-a", seed, [10, 20, 30, 80 + seed], suffix="long")
    rows = leaderboard(tmp_path, SPEC, reps=200).rows.set_index("label")
    assert sorted(rows.index) == ["bc (steps=200)", "bc (steps=400)"]
    assert rows.loc["bc (steps=200)", "seeds"] == 3 and rows.loc["bc (steps=200)", "iqm"] == 21
    assert rows.loc["bc (steps=400)", "iqm"] == 81
    assert rows.loc["bc (steps=400)", "command"].startswith(
        "bench sweep --algo bc --dataset ds-a --seeds 0-2 --steps 400"
    )


def test_an_algorithm_config_difference_is_in_the_label(tmp_path):
    make_run(tmp_path, "bc", "ds-a", 0, [50])
    make_run(
        tmp_path,
        "bc",
        "ds-a",
        0,
        [60],
        suffix="lr",
        overrides={"lr": "0.01"},
        algo_config={"eval_eps": 0.001, "lr": 0.01},
    )
    labels = set(leaderboard(tmp_path, SPEC, reps=200).rows.label)
    assert labels == {"bc (lr=0.001)", "bc (lr=0.01)"}


def test_one_configuration_and_seed_is_one_run(tmp_path, cli):
    make_run(tmp_path, "bc", "ds-a", 0, [50, 60], suffix="a")
    make_run(tmp_path, "bc", "ds-a", 0, [50, 90], suffix="b")  # the same seed again
    make_run(tmp_path, "bc", "ds-a", 1, [50, 70])
    board = leaderboard(tmp_path, SPEC, reps=200)
    row = board.rows.iloc[0]
    assert row.seeds == 2 and row["mean"] == pytest.approx(65.0)  # runs a (seed 0) and seed 1
    dup = board.results.duplicates
    assert list(dup.run_id) == ["bc__ds-a__s0__b"] and list(dup.duplicate_of) == ["bc__ds-a__s0__a"]
    res = cli("leaderboard", "--results", tmp_path)
    assert "duplicate, not counted: bc__ds-a__s0__b" in res.stdout
    assert "--seeds 0-1" in res.stdout


def test_a_task_with_one_run_beside_a_task_with_two(tmp_path, cli):
    """The reproduction: scipy's bootstrap needed two runs per task and crashed."""
    make_run(tmp_path, "bc", "ds-a", 0, [40])
    make_run(tmp_path, "bc", "ds-b", 0, [60])
    make_run(tmp_path, "bc", "ds-b", 1, [80])
    board = leaderboard(tmp_path, SPEC, reps=500)
    (block,) = board.blocks
    row = block.table.iloc[0]
    assert row.runs == 3 and row.iqm_lo <= row.iqm <= row.iqm_hi
    assert 40 <= row.iqm_lo and row.iqm_hi <= 80
    res = cli("leaderboard", "--results", tmp_path)
    assert res.returncode == 0, res.stderr


def test_aggregates_compare_only_over_shared_datasets(tmp_path, cli):
    """The reproduction: bc over two datasets was printed next to bcq over one."""
    for seed in range(3):
        make_run(tmp_path, "bc", "cart", seed, [90 + seed])
        make_run(tmp_path, "bc", "pend", seed, [40 + seed])
        make_run(tmp_path, "discrete_bcq", "cart", seed, [70 + seed])
        make_run(tmp_path, "bcq", "pend", seed, [30 + seed])
        make_run(tmp_path, "redq", "pend", seed, [-30 + seed])
    blocks = leaderboard(tmp_path, SPEC, reps=500).blocks
    got = {tuple(b.datasets): list(b.table.label) for b in blocks}
    assert got == {
        ("cart", "pend"): ["bc"],
        ("cart",): ["bc", "discrete_bcq"],
        ("pend",): ["bc", "bcq", "redq"],
    }
    cart = next(b for b in blocks if b.datasets == ["cart"])
    assert cart.left_out == ["bc on pend"]
    assert cart.table.set_index("label").loc["bc", "iqm"] == pytest.approx(91)  # cart only
    imp = cart.improvement.set_index(["x", "y"])
    assert imp.loc[("bc", "discrete_bcq"), "p"] == 1.0  # every bc run beats every dbcq run
    assert imp.loc[("discrete_bcq", "bc"), "p"] == 0.0
    pend = next(b for b in blocks if b.datasets == ["pend"]).improvement
    assert len(pend) == 6  # every ordered pair of bc, bcq, redq
    out = cli("leaderboard", "--results", tmp_path).stdout
    assert "aggregate over the 1 dataset these share: cart" in out
    assert "P(bc > discrete_bcq)" in out and "left out of this comparison: bc on pend" in out


def test_a_one_seed_baseline_passes_against_its_own_results(tmp_path):
    make_run(tmp_path / "r", "bc", "ds-a", 0, [50, 60])
    base = write_baseline(tmp_path / "r", tmp_path / "b.parquet", ScoreSpec())
    assert base.iqm_lo.isna().all()  # one seed: no CI
    rows = check(tmp_path / "r", read_baseline(tmp_path / "b.parquet"), 0.0)
    assert rows.passed.all() and rows.threshold.iloc[0] == pytest.approx(55.0)
    make_run(tmp_path / "worse", "bc", "ds-a", 0, [50, 40])
    assert not check(tmp_path / "worse", read_baseline(tmp_path / "b.parquet"), 5.0).passed.any()


def test_check_matches_by_key_not_by_name(tmp_path):
    for seed in range(3):
        make_run(tmp_path / "r", "bc", "ds-a", seed, [50 + seed])
        make_run(
            tmp_path / "other", "bc", "ds-a", seed, [90], steps=100, eval_every=100, batch_size=32
        )  # same names, another configuration
    write_baseline(tmp_path / "r", tmp_path / "b.parquet", ScoreSpec())
    rows = check(tmp_path / "other", read_baseline(tmp_path / "b.parquet"), 5.0)
    assert not rows.passed.any() and rows.iqm_now.isna().all()  # nothing comparable: a fail


@pytest.mark.parametrize("content", [b"not parquet", None])
def test_a_foreign_file_in_a_results_folder_is_one_line(tmp_path, content, cli):
    make_run(tmp_path, "bc", "ds-a", 0, [50])
    (run,) = (tmp_path / "runs").iterdir()
    if content is None:  # a parquet table of other columns
        pd.DataFrame({"x": [1]}).to_parquet(run / "eval.parquet")
    else:
        (run / "eval.parquet").write_bytes(content)
    res = cli("leaderboard", "--results", tmp_path)
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1
    assert "eval.parquet" in res.stderr and "move it out of" in res.stderr


@pytest.mark.parametrize(
    "content", ["[1, 2]", '{"run_id": "x", "algo": "bc"}', "{nope", '{"run_id": 3}']
)
def test_a_bad_config_json_is_one_line(tmp_path, content, cli):
    make_run(tmp_path, "bc", "ds-a", 0, [50])
    (run,) = (tmp_path / "runs").iterdir()
    (run / "config.json").write_text(content)
    for cmd in (["leaderboard"], ["plot", "--out", tmp_path / "p"]):
        res = cli(*cmd, "--results", tmp_path)
        assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, res.stderr
        assert "config.json" in res.stderr
