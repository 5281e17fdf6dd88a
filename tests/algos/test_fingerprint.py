"""Numeric fingerprints: every registered algorithm, built with its default config on small fake
spaces and updated UPDATES times on fixed seeded batches, gives the numbers recorded in
fingerprints.json (the stats of each update; per network the sum of |weights| and of how far the
updates moved them; its deterministic actions and Q values on a fixed batch of observations).

An algorithm's version is part of every run's key, so a change to its numbers (its maths, its
defaults, its initialization or random draws) must come with a new version: then sweeps rerun
it and the leaderboard keeps its runs apart from the old ones. This test is what notices. When
it fails, bump the algorithm's `version` in its file and re-record:

    python -m tests.algos.test_fingerprint --record

Each record also stores the version (and RANDOM_STREAMS, the key's version of how random draws
are made) it was recorded at, so a bump without re-recording fails as well. The tolerance
(relative 1e-4, absolute 1e-5) lets float differences between CPUs pass and nothing else.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from bench.algos import REGISTRY
from bench.algos.base import resolve_config
from bench.run.config import RANDOM_STREAMS
from bench.testing import MINATAR
from bench.types import EnvInfo
from tests.algos.test_contract import random_batch, random_obs

RECORDS = Path(__file__).with_name("fingerprints.json")
RECORD_COMMAND = "python -m tests.algos.test_fingerprint --record"
#: Updates per fingerprint: 3, or enough to reach every update the defaults make (REDQ updates
#: its actor at the actor_delay-th update).
UPDATES = {"redq": 20}
RTOL, ATOL = 1e-4, 1e-5
#: "moved" sums |w - w_0|, terms of the size of a learning rate that never cancel: compared by
#: relative tolerance alone (ATOL would hide a 10% change of a small learning rate).
MOVED_ATOL = 1e-12
DISCRETE = gym.spaces.Discrete(4)
CONTINUOUS = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))


def cases() -> dict[str, tuple[str, tuple[int, ...], gym.Space]]:
    """case id -> (algorithm, observation shape, action space)."""
    out = {}
    for name, cls in sorted(REGISTRY.items()):
        if "discrete" in cls.action_kinds:
            out[f"{name}-vector-discrete"] = (name, (6,), DISCRETE)
            out[f"{name}-atari"] = (name, (4, 84, 84), DISCRETE)
            out[f"{name}-minatar"] = (name, MINATAR, DISCRETE)
        if "continuous" in cls.action_kinds:
            out[f"{name}-vector-continuous"] = (name, (5,), CONTINUOUS)
    return out


def _floats(t: torch.Tensor) -> list[float]:
    return [float(x) for x in t.detach().double().flatten()]


def fingerprint(name: str, obs_shape: tuple[int, ...], space: gym.Space) -> dict:
    """The numbers of one algorithm with its default config, seed 0, after UPDATES updates."""
    cls = REGISTRY[name]
    algo = cls(resolve_config(cls), EnvInfo(obs_shape=obs_shape, action_space=space), seeds=[0])
    trained = {k: list(m.parameters()) for k, m in algo.modules().items()}
    trained |= {k: [t] for k, t in algo.tensors().items()}  # e.g. log alpha
    initial = {k: [t.detach().double().clone() for t in ts] for k, ts in trained.items()}
    stats: dict[str, list[float]] = {}
    for step in range(UPDATES.get(name, 3)):
        for k, v in algo.update(random_batch(obs_shape, space, S=1, B=16, seed=step)).items():
            stats.setdefault(k, []).extend(_floats(v))
    # per network or tensor: sum |w| (the initialization) and sum |w - w_0| (what updates moved)
    weights = {
        k: {
            "sum": float(sum(t.detach().double().abs().sum() for t in ts)),
            "moved": float(
                sum(
                    (t.detach().double() - t0).abs().sum()
                    for t, t0 in zip(ts, initial[k], strict=True)
                )
            ),
        }
        for k, ts in sorted(trained.items())
    }
    obs = random_obs(obs_shape, 1, 8, torch.Generator().manual_seed(100))
    with torch.no_grad():
        act = algo.act(obs, deterministic=True)
        q = algo.q_value(obs, act)
    return {
        "stats": stats,
        "weights": weights,
        "actions": _floats(act),
        "q": None if q is None else _floats(q),
    }


def identity(name: str) -> dict:
    """What a record's numbers belong to, besides the code itself."""
    return {"version": REGISTRY[name].version, "random_streams": RANDOM_STREAMS}


def _differs(recorded, now, where: str = "") -> str | None:
    """The first place where now is not recorded (within tolerance), else None."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        if set(recorded) != set(now):
            return f"{where or 'numbers'}: keys {sorted(recorded)} became {sorted(now)}"
        for k in sorted(recorded):
            found = _differs(recorded[k], now[k], f"{where}.{k}" if where else k)
            if found:
                return found
        return None
    if isinstance(recorded, list) and isinstance(now, list):
        if len(recorded) != len(now):
            return f"{where}: {len(recorded)} values became {len(now)}"
        for i, (a, b) in enumerate(zip(recorded, now, strict=True)):
            found = _differs(a, b, f"{where}[{i}]")
            if found:
                return found
        return None
    if recorded is None or now is None:
        return None if recorded is now else f"{where}: {recorded} became {now}"
    atol = MOVED_ATOL if where.endswith(".moved") else ATOL
    if not math.isclose(now, recorded, rel_tol=RTOL, abs_tol=atol):
        return f"{where}: {recorded!r} became {now!r}"
    return None


def mismatch(case: str, record: dict | None, now: dict) -> str | None:
    """Why the numbers of a case fail their record, as the test says it; None when they pass."""
    name = cases()[case][0]
    if record is None:
        return f"algorithm {name} has no fingerprint ({case}): record it with `{RECORD_COMMAND}`"
    ident = identity(name)
    if {k: record.get(k) for k in ident} != ident:
        return (
            f"algorithm {name} changed: bump its version and re-record with `{RECORD_COMMAND}` "
            f"({case} was recorded at version {record.get('version')}, random streams "
            f"{record.get('random_streams')}; the code is at version {ident['version']}, random "
            f"streams {ident['random_streams']}: the record was not re-recorded)"
        )
    found = _differs(record["numbers"], now)
    if found:
        return (
            f"algorithm {name} changed: bump its version and re-record with `{RECORD_COMMAND}` "
            f"({case}, still version {ident['version']}: {found})"
        )
    return None


def load_records() -> dict:
    return json.loads(RECORDS.read_text()) if RECORDS.is_file() else {}


@pytest.mark.parametrize("case", sorted(cases()))
def test_numbers_match_the_record_of_this_version(case):
    now = fingerprint(*cases()[case])
    problem = mismatch(case, load_records().get(case), now)
    assert problem is None, problem


@pytest.fixture
def discrete_bcq_record():
    case = "discrete_bcq-vector-discrete"
    return case, load_records()[case]


def test_a_changed_default_fails_while_the_version_stays(discrete_bcq_record, monkeypatch):
    import dataclasses

    from bench.algos.discrete_bcq import DiscreteBCQ, DiscreteBCQConfig

    case, record = discrete_bcq_record
    assert mismatch(case, record, fingerprint(*cases()[case])) is None

    @dataclasses.dataclass
    class Faster(DiscreteBCQConfig):
        lr: float = 1e-4  # the reference's 6.25e-5, changed in the file

    monkeypatch.setattr(DiscreteBCQ, "Config", Faster)
    problem = mismatch(case, record, fingerprint(*cases()[case]))
    assert problem is not None and problem.startswith(
        "algorithm discrete_bcq changed: bump its version and re-record with "
        "`python -m tests.algos.test_fingerprint --record`"
    )
    assert "still version 1" in problem


def test_a_bumped_version_without_a_new_record_fails(discrete_bcq_record, monkeypatch):
    from bench.algos.discrete_bcq import DiscreteBCQ

    case, record = discrete_bcq_record
    monkeypatch.setattr(DiscreteBCQ, "version", DiscreteBCQ.version + 1)
    problem = mismatch(case, record, fingerprint(*cases()[case]))  # the same numbers
    assert problem is not None and problem.startswith("algorithm discrete_bcq changed: bump")
    assert "the record was not re-recorded" in problem


def test_every_registered_algorithm_has_a_record():
    assert {c[0] for c in cases().values()} == set(REGISTRY)
    missing = sorted(set(cases()) - set(load_records()))
    assert not missing, f"no fingerprints for {missing}: run `{RECORD_COMMAND}`"


def record(only: list[str] | None = None) -> dict:
    """Compute and write the fingerprints (all cases, or those of the algorithms named)."""
    records = load_records()
    for case, (name, obs_shape, space) in sorted(cases().items()):
        if only and name not in only:
            continue
        records[case] = {
            "algo": name,
            **identity(name),
            "numbers": fingerprint(name, obs_shape, space),
        }
    records = {k: records[k] for k in sorted(records) if k in cases()}
    RECORDS.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    return records


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true", help=f"write {RECORDS.name}")
    parser.add_argument("algos", nargs="*", help="only these algorithms (default: all)")
    args = parser.parse_args()
    if not args.record:
        parser.error("nothing to do: pass --record")
    torch.set_num_threads(1)
    written = record(args.algos or None)
    print(f"wrote {RECORDS} ({len(written)} cases)")
