"""Each run option is declared once (RunOptions' _opt metadata); what reads the declarations
must find them consistent."""

from __future__ import annotations

import dataclasses

import pytest

from bench.data.cards import TrainDefaults
from bench.errors import BenchError
from bench.run.config import (
    CONFIG_FIELDS,
    KEY_ALWAYS,
    KEY_IF_SET,
    SPELL_ALWAYS,
    SPELL_IF_SET,
    SUITE_OPTIONAL,
    SUITE_PINNED,
    RunConfig,
    RunOptions,
    option_names,
)
from bench.suite import GRID_OPTIONS, PINNED

FIELDS = dataclasses.fields(RunOptions)


@pytest.mark.parametrize("f", FIELDS, ids=[f.name for f in FIELDS])
def test_declaration_is_consistent(f):
    m = f.metadata
    assert m["help"]
    assert m["key"] in (KEY_ALWAYS, KEY_IF_SET, None)
    assert m["spell"] in (SPELL_ALWAYS, SPELL_IF_SET, None)
    assert m["suite"] in (SUITE_PINNED, SUITE_OPTIONAL, None)
    if m["key"] or m["spell"] or m["label"]:  # read back from config.json
        assert f.name in CONFIG_FIELDS
    if m["card"]:  # None takes the card's [train] value of the same name
        assert f.name in {t.name for t in dataclasses.fields(TrainDefaults)}
    if m["key"] == KEY_IF_SET:  # older runs keep their key: RunConfig's default is the option's
        own = RunConfig.__dataclass_fields__[f.name].default
        assert own == f.default or (m["card"] and own is not dataclasses.MISSING)


def test_the_key_and_the_suites_read_the_declarations():
    assert set(option_names(key=KEY_ALWAYS)) <= set(RunConfig.IDENTITY)
    assert set(option_names(key=KEY_IF_SET)) <= set(RunConfig.IDENTITY_IF_SET)
    assert set(PINNED) == {"steps", "eval_every", "eval_episodes", "final_episodes", "batch_size"}
    assert set(GRID_OPTIONS) == set(PINNED) | {"preset", "holdout", "precision"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("steps", 0),
        ("eval_every", -1),
        ("eval_episodes", 100_001),
        ("final_episodes", -1),
        ("batch_size", True),
        ("holdout", 1.0),
        ("precision", "fp8"),
        ("threads", 2000),
        ("keep_policies", -1),
        ("seed", -1),
    ],
)
def test_every_declared_check_runs_on_what_the_user_gives(name, value):
    with pytest.raises(BenchError, match="--" + name.replace("_", "-")):
        RunOptions(**{name: value})
