"""Runs of other code versions are other configurations: sweeps never reuse them, the
leaderboard never pools them, and `bench check` says why a baseline row has no runs (not run,
not complete, or ran something else: what the nearest runs differ in)."""

from pathlib import Path

import pandas as pd
import pytest

from bench.analysis.check import (
    IDENTITY_COLUMNS,
    check,
    read_baseline,
    write_baseline,
)
from bench.analysis.leaderboard import leaderboard
from bench.analysis.scores import ScoreSpec, load_results
from bench.run.config import RunOptions
from bench.sweep import SweepSpec, plan
from tests.analysis.fake_runs import fake_config, make_run

REPO = Path(__file__).resolve().parents[2]
V3, V4 = {"algo": 3, "eval": 1}, {"algo": 4, "eval": 1}
SPEC = ScoreSpec("final", 1)


def runs(folder, versions=V3, seeds=range(3), algo="discrete_bcq", suffix="fake", **changes):
    for seed in seeds:
        make_run(
            folder,
            algo,
            "ds-a",
            seed,
            [40 + seed, 50 + seed],
            suffix=suffix,
            versions=versions,
            **changes,
        )


# ---------------------------------------------------------------------- sweeps and leaderboard
def test_a_sweep_never_counts_a_run_of_other_versions_as_done(tmp_path):
    make_run(tmp_path, "discrete_bcq", "ds-a", 0, [40, 50], versions=V4)  # this code's
    make_run(tmp_path, "discrete_bcq", "ds-a", 1, [40, 50], versions=V3)  # older algorithm
    make_run(tmp_path, "discrete_bcq", "ds-a", 2, [40, 50])  # before versions were recorded
    config = fake_config("discrete_bcq", "ds-a", 0, steps=200, versions=V4)
    spec = SweepSpec(["discrete_bcq"], ["ds-a"], [0, 1, 2], RunOptions(), tmp_path)
    planned = plan(spec, {("discrete_bcq", "ds-a"): config})
    assert [p.action for p in planned] == ["skip", "new", "new"]


def test_the_leaderboard_never_pools_runs_of_different_versions(tmp_path, cli):
    runs(tmp_path, V3)
    runs(tmp_path, V4, suffix="v4")
    rows = leaderboard(tmp_path, SPEC, reps=200).rows.set_index("label")
    assert sorted(rows.index) == ["discrete_bcq (algo_version=3)", "discrete_bcq (algo_version=4)"]
    assert (rows.seeds == 3).all() and rows.key.nunique() == 2
    # one reproduce command for both (a command cannot name the code): told apart by a comment
    v3, v4 = rows.command
    assert v3.endswith("--preset none  # algo v3") and v4.endswith("--preset none  # algo v4")
    out = cli("leaderboard", "--results", tmp_path).stdout
    assert "# algo v3" in out and "# algo v4" in out


def test_rows_that_differ_only_by_dataset_build_print_different_commands(tmp_path, cli):
    runs(tmp_path, V4)
    runs(tmp_path, V4, suffix="small", dataset_hash="fedcba9876543210")  # built with --size
    rows = leaderboard(tmp_path, SPEC, reps=200).rows
    assert rows.command.nunique() == 2
    assert {c.rsplit("  # ", 1)[1] for c in rows.command} == {
        "dataset content 0123456789abcdef",
        "dataset content fedcba9876543210",
    }
    out = cli("leaderboard", "--results", tmp_path).stdout
    lines = [x for x in out.splitlines() if x.startswith("  discrete_bcq")]
    assert len(lines) == 2 and lines[0] != lines[1]


def test_a_command_shared_by_nobody_is_left_as_it_is(tmp_path):
    runs(tmp_path, V4)
    (command,) = leaderboard(tmp_path, SPEC, reps=200).rows.command
    assert "#" not in command


# ---------------------------------------------------------------------- bench check: why
@pytest.fixture
def baseline(tmp_path):
    """A baseline of discrete_bcq v3 on ds-a, 3 seeds."""
    runs(tmp_path / "base", V3)
    path = tmp_path / "base.parquet"
    write_baseline(tmp_path / "base", path, SPEC)
    return path


def why(results, baseline_path) -> str:
    rows = check(results, read_baseline(baseline_path), 5.0)
    assert not rows.passed.any()
    (text,) = rows.why
    return text


def test_the_baseline_records_each_rows_identity(baseline):
    table = pd.read_parquet(baseline)
    assert set(IDENTITY_COLUMNS) <= set(table.columns)
    assert table.dataset_hash.iloc[0] == "0123456789abcdef"
    assert table.versions.iloc[0] == '{"algo": 3, "eval": 1}'
    assert read_baseline(baseline).config.iloc[0].versions == V3


def test_not_run(baseline, tmp_path):
    runs(tmp_path / "now", V4, algo="bc")
    assert why(tmp_path / "now", baseline) == (
        f"not run: no runs of discrete_bcq on ds-a under {tmp_path / 'now' / 'runs'}"
    )


def test_not_complete(tmp_path):
    make_run(tmp_path / "base", "bc", "ds-a", 0, [40, 50], final_episodes=10, final=60.0)
    write_baseline(tmp_path / "base", tmp_path / "b.parquet", SPEC)
    make_run(tmp_path / "now", "bc", "ds-a", 0, [40, 50], final_episodes=10)  # no final yet
    assert why(tmp_path / "now", tmp_path / "b.parquet").startswith(
        "not complete: 1 run(s) of this configuration under"
    )


def test_ran_another_version(baseline, tmp_path):
    runs(tmp_path / "now", V4)
    text = why(tmp_path / "now", baseline)
    assert text.startswith("ran something else: the nearest runs of discrete_bcq on ds-a are key ")
    assert "(3 complete seeds, shown as discrete_bcq)" in text
    assert text.endswith(
        "which differ in algorithm version (baseline by discrete_bcq v3, runs by v4)"
    )


def test_ran_another_dataset_build_budget_and_config(baseline, tmp_path):
    runs(
        tmp_path / "now",
        V3,
        dataset_hash="fedcba9876543210",
        eval_every=150,
        algo_config={"eval_eps": 0.001, "lr": 0.01},
    )
    text = why(tmp_path / "now", baseline)
    assert "dataset content (dataset_hash: baseline 0123456789abcdef, runs fedcba9876543210" in text
    assert (
        "steps (baseline 200, runs 300)" in text and "eval_every (baseline 100, runs 150)" in text
    )
    assert "lr (baseline 0.001, runs 0.01)" in text and "version" not in text


def test_the_nearest_configuration_is_named_and_the_others_counted(baseline, tmp_path):
    runs(tmp_path / "now", V4)  # only the version differs
    runs(tmp_path / "now", V4, suffix="long", eval_every=150)  # the version and budgets
    text = why(tmp_path / "now", baseline)
    assert "1 other configuration(s)" in text
    assert text.endswith(
        "which differ in algorithm version (baseline by discrete_bcq v3, runs by v4)"
    )


def test_a_baseline_written_before_identity_columns_is_read_and_explained(baseline, tmp_path):
    old = tmp_path / "old.parquet"
    pd.read_parquet(baseline).drop(columns=IDENTITY_COLUMNS).to_parquet(old, index=False)
    assert "config" not in read_baseline(old).columns
    runs(tmp_path / "now", V4)  # the same options: the difference is what it did not record
    text = why(tmp_path / "now", old)
    assert "with the same options, so they differ in what the baseline does not record" in text
    assert "write it again with --update" in text
    runs(tmp_path / "other", V3, eval_every=150)
    assert "--eval-every (baseline 100, runs 150)" in why(tmp_path / "other", old)


def test_the_committed_baselines_still_read():
    for name in ("ci", "core", "smoke"):
        assert len(read_baseline(REPO / "results" / "baselines" / f"{name}.parquet"))


def test_check_prints_why(baseline, tmp_path, cli):
    runs(tmp_path / "now", V4)
    res = cli("check", "--baseline", baseline, "--results", tmp_path / "now")
    assert res.returncode == 1 and "1 of 1 regressed" in res.stdout
    assert "discrete_bcq x ds-a (key " in res.stdout
    assert "algorithm version (baseline by discrete_bcq v3, runs by v4)" in res.stdout


# ---------------------------------------------------------------------- bad input: one line
def _folder(tmp, baseline):
    (tmp / "bl").mkdir()
    return ["--baseline", tmp / "bl"]


def _broken_config(tmp, baseline):
    table = pd.read_parquet(baseline).assign(config="{nope")
    table.to_parquet(tmp / "broken.parquet", index=False)
    return ["--baseline", tmp / "broken.parquet"]


def _config_of_another_key(tmp, baseline):
    table = pd.read_parquet(baseline).assign(key="ffffffffffff")
    table.to_parquet(tmp / "other.parquet", index=False)
    return ["--baseline", tmp / "other.parquet"]


CASES = [
    (
        "score other than the baseline's",
        ["--score", "best"],
        "--score best (last k 1) is not the baseline's score, final (last k 1); a check compares "
        "by the baseline's own score: drop --score and --last-k, or write a new baseline with "
        "--update --score best",
    ),
    (
        "last-k other than the baseline's",
        ["--last-k", "5"],
        "--score final (last k 5) is not the baseline's score, final (last k 1)",
    ),
    (
        "baseline a folder",
        _folder,
        "--baseline {tmp}/bl is a folder; give the baseline's file name, e.g. {tmp}/bl/ci.parquet",
    ),
    (
        "update into a folder",
        lambda tmp, b: [*_folder(tmp, b), "--update"],
        "--baseline {tmp}/bl is a folder; give the baseline's file name",
    ),
    ("config not JSON", _broken_config, "row 0 ("),
    ("config of another key", _config_of_another_key, "its config is of key"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_check_input_is_one_line_exit_2_and_writes_nothing(case, baseline, tmp_path, cli):
    _, args, message = case
    runs(tmp_path / "now", V3)
    if callable(args):
        args = args(tmp_path, baseline)
    else:
        args = ["--baseline", baseline, *args]
    before = sorted(tmp_path.rglob("*"))
    res = cli("check", "--results", tmp_path / "now", *args)
    assert res.returncode == 2, res.stdout + res.stderr
    err = res.stderr.splitlines()
    assert len(err) == 1 and err[0].startswith("bench: error: "), err
    assert message.replace("{tmp}", str(tmp_path)) in err[0], err
    assert sorted(tmp_path.rglob("*")) == before


def test_the_baselines_own_score_may_be_named(baseline, tmp_path, cli):
    runs(tmp_path / "now", V3)
    for extra in ([], ["--score", "final"], ["--score", "final", "--last-k", "1"]):
        res = cli("check", "--baseline", baseline, "--results", tmp_path / "now", *extra)
        assert res.returncode == 0 and "all 1 passed" in res.stdout, res.stdout + res.stderr


def test_update_writes_the_score_asked_for(tmp_path, cli):
    runs(tmp_path / "r", V3)
    res = cli(
        "check",
        "--baseline",
        tmp_path / "b.parquet",
        "--results",
        tmp_path / "r",
        "--update",
        "--score",
        "best",
    )
    assert res.returncode == 0, res.stderr
    assert set(pd.read_parquet(tmp_path / "b.parquet").score) == {"best"}
    assert load_results(tmp_path / "r").runs.key.nunique() == 1
