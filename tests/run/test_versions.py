"""The code is part of a run's identity: the algorithm's implementation version and the
evaluation protocol's are resolved into every RunConfig, saved in config.json and hashed into
its key; runs written before versions existed load, verify and keep keys of their own."""

import dataclasses
import json

import pytest

from bench import evaluate
from bench.algos.base import Positive
from bench.algos.discrete_bcq import DiscreteBCQ, DiscreteBCQConfig
from bench.data.cards import load_card
from bench.errors import BenchError
from bench.run.config import SCHEMA_VERSION, RunConfig, RunOptions, resolve
from tests.analysis.fake_runs import fake_config

HASH = "0123456789abcdef"

#: config.json as bench wrote it before versions (schema 3), key and fingerprint included
SCHEMA_3 = json.loads(
    '{"algo": "discrete_bcq", "algo_config": {"adam_eps": 1e-08, "eval_eps": 0.001, "lr": 0.0003},'
    ' "batch_size": 64, "compile": false, "dataset": "cartpole-mixed", "dataset_hash":'
    ' "0123456789abcdef", "device": "cpu", "env": null, "eval_env": {"atari": null,'
    ' "frame_stack": 1, "id": "CartPole-v1", "kwargs": {}}, "eval_episodes": 5, "eval_every": 500,'
    ' "eval_seed_base": 1000000, "final_episodes": 100, "fingerprint": "7f91d341da5f",'
    ' "holdout": 0.0, "keep_policies": null, "key": "b1a3de913ad3", "minari_id":'
    ' "bench/cartpole-mixed-v0", "overrides": {}, "preset": "small", "random_streams": 2,'
    ' "run_id": "x", "schema_version": 3, "seed": 2, "steps": 1000}'
)


def _resolve(**opts) -> RunConfig:
    options = RunOptions(algo="discrete_bcq", dataset="cartpole-mixed", preset="none", **opts)
    return resolve(options, load_card("cartpole-mixed"), HASH)


def test_resolve_records_the_algorithm_and_evaluation_versions(monkeypatch):
    cfg = _resolve()
    assert cfg.versions == {"algo": DiscreteBCQ.version, "eval": evaluate.EVAL_VERSION}
    assert cfg.schema_version == SCHEMA_VERSION == 5
    saved = cfg.to_json()
    assert saved["versions"] == cfg.versions and RunConfig.from_json(saved) == cfg
    monkeypatch.setattr(DiscreteBCQ, "version", DiscreteBCQ.version + 1)
    algo_bumped = _resolve()
    assert algo_bumped.versions["algo"] == cfg.versions["algo"] + 1
    assert algo_bumped.key() != cfg.key()
    monkeypatch.setattr(evaluate, "EVAL_VERSION", evaluate.EVAL_VERSION + 1)  # read, not copied
    eval_bumped = _resolve()
    assert eval_bumped.versions["eval"] == cfg.versions["eval"] + 1
    assert len({cfg.key(), algo_bumped.key(), eval_bumped.key()}) == 3


def test_changing_an_algorithm_default_changes_the_run_key(monkeypatch):
    before = _resolve()

    @dataclasses.dataclass
    class Faster(DiscreteBCQConfig):
        lr: Positive = 1e-4  # the reference's 6.25e-5, changed in the file

    monkeypatch.setattr(DiscreteBCQ, "Config", Faster)
    after = _resolve()
    assert after.algo_config["lr"] == 1e-4 and after.key() != before.key()


def test_a_config_written_before_versions_loads_verifies_and_keeps_its_own_key():
    old = RunConfig.from_json(SCHEMA_3)  # its stored key and fingerprint verify: not "edited"
    assert old.versions is None and old.schema_version == 3 and old.key() == SCHEMA_3["key"]
    # the same configuration run today is another key: no new run is matched to the old one
    now = dataclasses.replace(old, versions={"algo": 1, "eval": 1}, schema_version=4)
    assert now.key() != old.key()
    assert RunConfig.from_json(now.to_json()).key() == now.key()
    assert old.identity_diff(now) == [("algo_version", None, 1), ("eval_version", None, 1)]


@pytest.mark.parametrize(
    "versions",
    [{}, [1, 1], "1", {"algo": 0, "eval": 1}, {"algo": "1", "eval": 1}, {"algo": True}],
)
def test_an_edited_versions_value_is_not_a_run_config(versions):
    saved = fake_config("bc", "ds", 0, 100, versions={"algo": 1, "eval": 1}).to_json()
    with pytest.raises(BenchError) as e:
        RunConfig.from_json(saved | {"versions": versions}, "r/config.json")
    assert str(e.value).startswith("r/config.json: not a bench run config (")
    assert "versions must be" in str(e.value) and "\n" not in str(e.value)


def test_versions_edited_to_another_valid_value_break_the_key():
    saved = fake_config("bc", "ds", 0, 100, versions={"algo": 1, "eval": 1}).to_json()
    with pytest.raises(BenchError, match="do not match its key"):
        RunConfig.from_json(saved | {"versions": {"algo": 2, "eval": 1}})


def test_a_config_of_a_newer_schema_says_upgrade_before_reading_its_fields():
    newer = SCHEMA_VERSION + 1
    saved = fake_config("bc", "ds", 0, 100).to_json() | {"schema_version": newer, "versions": "x"}
    with pytest.raises(BenchError, match=f"written by a newer bench \\(schema {newer}\\)"):
        RunConfig.from_json(saved)


def test_labels_tell_apart_configurations_that_differ_only_by_version():
    a = fake_config("bc", "ds", 0, 100, versions={"algo": 1, "eval": 1})
    b = dataclasses.replace(a, versions={"algo": 2, "eval": 1})
    old = dataclasses.replace(a, versions=None)
    assert a.differences([b]) == {"algo_version": 1}
    assert old.differences([a]) == {"algo_version": "none", "eval_version": "none"}
