"""The run identity: one RunConfig, its key, config.json round trips, and sweeps matching by key."""

import dataclasses
import json
import shlex

import pandas as pd
import pytest

from bench.errors import BenchError
from bench.run.checkpoint import run_lock
from bench.run.config import SCHEMA_VERSION, RunConfig, RunOptions
from bench.sweep import SweepSpec, parse_seeds, plan
from tests.analysis.fake_runs import fake_config
from tests.helpers import bench, train

SMALL = dict(steps=20, eval_every=20, eval_episodes=1, batch_size=16, final_episodes=0)


def test_the_key_covers_what_decides_the_numbers_and_not_the_seed():
    base = fake_config("bc", "ds", seed=0, steps=100)
    assert base.key() == dataclasses.replace(base, seed=7).key()  # seeds share a key
    assert base.key() == dataclasses.replace(base, device="cuda").key()  # how, not what
    for change in (
        dict(steps=200),
        dict(eval_every=50),
        dict(eval_episodes=5),
        dict(batch_size=32),
        dict(dataset_hash="ffffffffffffffff"),
        dict(algo="discrete_bcq"),
        dict(algo_config={"eval_eps": 0.001, "lr": 0.01}),
        dict(eval_seed_base=7),
        dict(eval_env={"id": "Acrobot-v1", "kwargs": {}, "atari": None, "frame_stack": 1}),
    ):
        assert dataclasses.replace(base, **change).key() != base.key(), change


def test_config_json_round_trip_and_edits_are_refused():
    cfg = fake_config("bc", "ds", seed=3, steps=100)
    saved = json.loads(json.dumps(cfg.to_json()))
    assert saved["schema_version"] == SCHEMA_VERSION and saved["key"] == cfg.key()
    back = RunConfig.from_json(saved)
    assert back == cfg and back.key() == cfg.key()
    edited = saved | {"steps": 50}
    with pytest.raises(BenchError, match="do not match its key"):
        RunConfig.from_json(edited)
    for bad in (
        [1, 2],
        saved | {"steps": "many"},
        saved | {"batch_size": -1},
        {k: v for k, v in saved.items() if k != "algo"},
    ):
        with pytest.raises(BenchError, match="not a bench run config|must be"):
            RunConfig.from_json(bad)


def test_a_schema_1_config_is_read_back_under_a_key_of_its_own():
    v1 = {
        "run_id": "r",
        "algo": "bc",
        "dataset": "ds",
        "minari_id": "test/ds-v0",
        "dataset_metadata_hash": "0123456789abcdef",
        "seed": 0,
        "steps": 100,
        "eval_every": 100,
        "eval_episodes": 10,
        "batch_size": 64,
        "preset": None,
        "overrides": {},
        "config": {"eval_eps": 0.001, "lr": 0.001},
        "env": None,
    }
    old = RunConfig.from_json(v1)
    assert old.schema_version == 1 and old.steps == 100
    assert old.key() != fake_config("bc", "ds", seed=0, steps=100).key()  # never matched


def test_options_reproduce_the_configuration(tiny_cartpole, tmp_path):
    r = train(
        tmp_path,
        algo="discrete_bcq",
        dataset="cartpole-mixed",
        preset="none",
        overrides={"hidden_sizes": "16,16", "lr": "0.002"},
        **SMALL,
    )
    cfg = r.config
    assert cfg.preset is None and cfg.algo_config["hidden_sizes"] == [16, 16]
    # the printed command, run as a user would, resolves to the same key
    command = shlex.split(cfg.command())
    assert command[:2] == ["bench", "run"] and "--preset" in command
    assert command[command.index("--preset") + 1] == "none"
    again = bench(*command[1:], "--results-dir", tmp_path / "again", "-q")
    assert again.returncode == 0, again.stderr
    (run_dir,) = (tmp_path / "again" / "runs").iterdir()
    assert json.loads((run_dir / "config.json").read_text())["key"] == cfg.key()
    assert set(pd.read_parquet(run_dir / "eval.parquet").key) == {cfg.key()}


def test_the_card_preset_and_none_are_different_configurations(tiny_cartpole, tmp_path):
    card = train(tmp_path, algo="discrete_bcq", dataset="cartpole-mixed", **SMALL).config
    none = train(
        tmp_path, algo="discrete_bcq", dataset="cartpole-mixed", preset="none", **SMALL
    ).config
    assert card.preset == "small" and none.preset is None
    assert card.key() != none.key()


def test_sweep_keeps_only_runs_with_its_own_key(tiny_cartpole, tmp_path):
    """The reproduction: 1000-step runs are not the card-default runs a later sweep asks for."""
    for seed in (0, 1):
        train(tmp_path, algo="bc", dataset="cartpole-mixed", seed=seed, **SMALL)
    same = SweepSpec(["bc"], ["cartpole-mixed"], [0, 1], RunOptions(**SMALL), tmp_path)
    assert [p.action for p in plan(same)] == ["skip", "skip"]
    default = SweepSpec(["bc"], ["cartpole-mixed"], [0, 1], RunOptions(), tmp_path)
    assert [p.action for p in plan(default)] == ["new", "new"]
    other = SweepSpec(
        ["bc"], ["cartpole-mixed"], [0, 1], RunOptions(**SMALL, overrides={"lr": "0.01"}), tmp_path
    )
    assert [p.action for p in plan(other)] == ["new", "new"]


def test_a_run_another_process_writes_is_left_alone(tiny_cartpole, tmp_path):
    class Stop(Exception):
        pass

    def stop(row):
        raise Stop

    with pytest.raises(Stop):
        train(
            tmp_path,
            algo="bc",
            dataset="cartpole-mixed",
            seed=0,
            on_eval=stop,
            **{**SMALL, "steps": 40},
        )
    (run_dir,) = (tmp_path / "runs").iterdir()
    spec = SweepSpec(
        ["bc"], ["cartpole-mixed"], [0], RunOptions(**{**SMALL, "steps": 40}), tmp_path
    )
    assert [p.action for p in plan(spec)] == ["resume"]
    with run_lock(run_dir):  # as a live process would hold it
        assert [p.action for p in plan(spec)] == ["running"]
        res = bench("run", "--resume", run_dir, "-q")
        assert res.returncode == 2 and "being written by another process" in res.stderr


def test_seed_lists_are_bounded_before_they_are_built():
    with pytest.raises(BenchError, match="seeds go up to 2147483647"):
        parse_seeds("0-1000000000000")
    with pytest.raises(BenchError, match="more than 10,000 seeds"):
        parse_seeds("0-20000")
    assert parse_seeds("3,0-2,2") == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "0"], "--steps must be positive"),
        (["--set", "nope=1"], "unknown config key for bc 'nope'"),
        (["--set", "lr=abc"], "bad value 'abc' for bc.lr"),
        (["--preset", "huge"], "unknown preset"),
        (["--seeds", "0-1000000000000"], "seeds go up to"),
        (["--seeds", "0-99999"], "more than 10,000 seeds"),
        (["--batch-size", "abc"], "Invalid value for '--batch-size'"),
        (["--nope"], "No such option: --nope"),
        (["--workers", "-1"], "--workers must be between 1 and 1024"),
        (["--executor", "slurm"], "unknown executor 'slurm'"),
    ],
)
def test_bad_sweeps_are_refused_before_anything_runs(tmp_path, args, message):
    res = bench(
        "sweep",
        "--algo",
        "bc",
        "--dataset",
        "cartpole-mixed",
        "--seeds",
        "0-1",
        "--results-dir",
        tmp_path,
        "-q",
        *args,
    )
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.startswith("bench: error: ") and message in res.stderr, res.stderr
    assert len(res.stderr.splitlines()) == 1 and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--steps", "abc"],
        ["run", "--unknown"],
        ["sweep"],
        ["nope"],
        ["run", "--algo", "bc", "--dataset", "cartpole-mixed", "--seed", "-1"],
        ["leaderboard", "--last-k", "x"],
        ["check"],
    ],
)
def test_option_parsing_errors_are_one_line(args):
    res = bench(*args)
    assert res.returncode == 2 and res.stderr.startswith("bench: error: "), res.stderr
    assert len(res.stderr.splitlines()) == 1, res.stderr
