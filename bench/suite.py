"""Named suites: a fixed grid of datasets x algorithms x seeds at fixed budgets, declared as data.

A suite is a TOML file (bench/suites/<name>.toml, or any path):

    name = "smoke"
    version = 1                      # bump it whenever the grid or a budget changes
    description = "..."
    seeds = "0-4"                    # the --seeds syntax

    [[grid]]                         # one or more: a sweep each, all dispatched together
    datasets = ["pendulum-replay"]
    algos = ["iql", "bc"]
    steps = 3000                     # optional run options; absent: the card's
    eval_every = 1000
    set = { hidden_sizes = "64,64" } # optional --set overrides

Every run a suite starts records the suite (name, version, sha256 of the file) in its
config.json; the file itself is copied into the results folder (suites/<name>-v<version>.toml).
Budgets and the evaluation protocol are pinned by the file, never by a card default that may
change, so that a suite's version names one protocol.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError, UnknownNameError
from bench.run.config import RunOptions

SUITES_DIR = Path(__file__).parent / "suites"
#: The run options a grid may set (the rest are how a run is executed, not what it measures).
GRID_OPTIONS = ("steps", "eval_every", "eval_episodes", "final_episodes", "batch_size", "preset",
                "holdout")  # fmt: skip
#: What every grid must pin, so that a card default never changes a versioned suite.
PINNED = ("steps", "eval_every", "eval_episodes", "final_episodes", "batch_size")


@dataclass(frozen=True)
class Grid:
    algos: list[str]
    datasets: list[str]
    options: RunOptions  # budgets and --set (algo, dataset, seed unset)


@dataclass(frozen=True)
class Suite:
    name: str
    version: int
    description: str
    seeds: list[int]
    grids: list[Grid]
    path: Path
    sha256: str
    text: bytes  # the file as loaded: what the runs record the hash of, and what is copied

    def tag(self) -> dict[str, Any]:
        """What every run of the suite records in its config.json."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256}

    def cells(self) -> int:
        return sum(len(g.algos) * len(g.datasets) for g in self.grids) * len(self.seeds)


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def suite_path(name: str) -> Path:
    """A shipped suite's name, or the path of a suite file."""
    if name.endswith(".toml") or "/" in name:
        path = Path(name)
        if not path.is_file():
            raise BenchError(f"no suite file {name}")
        return path
    path = SUITES_DIR / f"{name}.toml"
    if not path.is_file():
        raise UnknownNameError("suite", name, suite_names())
    return path


def load_suite(name: str) -> Suite:
    from bench.sweep import parse_seeds

    path = suite_path(name)
    data = path.read_bytes()
    where = f"suite {path}"
    try:
        raw = tomllib.loads(data.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"{where}: not valid TOML ({e})") from None
    _only(raw, ("name", "version", "description", "seeds", "grid"), where)
    suite_name = _typed(raw, "name", str, where)
    if path.parent == SUITES_DIR and suite_name != path.stem:
        raise BenchError(f"{where}: name '{suite_name}' does not match its file name")
    version = _typed(raw, "version", int, where)
    if version < 1:
        raise BenchError(f"{where}: version must be >= 1, got {version}")
    grids_raw = _typed(raw, "grid", list, where)
    if not grids_raw:
        raise BenchError(f"{where}: no [[grid]] tables")
    grids, seen = [], set()
    for i, g in enumerate(grids_raw, 1):
        gw = f"{where}, grid {i}"
        if not isinstance(g, dict):
            raise BenchError(f"{gw}: a table expected")
        _only(g, ("algos", "datasets", "set", *GRID_OPTIONS), gw)
        missing = [k for k in PINNED if k not in g]
        if missing:
            raise BenchError(f"{gw}: pin {', '.join(missing)} (a suite never takes a card's)")
        algos, datasets = _names(g, "algos", gw), _names(g, "datasets", gw)
        overrides = g.get("set", {})
        if not isinstance(overrides, dict):
            raise BenchError(f"{gw}: 'set' must be a table of key = value")
        values = {k: g[k] for k in GRID_OPTIONS if k in g}
        try:
            options = RunOptions(**values, overrides={str(k): str(v) for k, v in overrides.items()})
        except BenchError as e:
            raise BenchError(f"{gw}: {e}") from None
        for pair in ((a, d) for a in algos for d in datasets):
            if pair in seen:
                raise BenchError(f"{gw}: {pair[0]} x {pair[1]} is already in an earlier grid")
            seen.add(pair)
        grids.append(Grid(algos, datasets, options))
    return Suite(
        name=suite_name,
        version=version,
        description=str(raw.get("description", "")),
        seeds=parse_seeds(_typed(raw, "seeds", str, where)),
        grids=grids,
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        text=data,
    )


def _only(table: dict, allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise BenchError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _typed(table: dict, key: str, typ: type, where: str):
    if key not in table:
        raise BenchError(f"{where}: missing '{key}'")
    value = table[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise BenchError(f"{where}: '{key}' must be a {typ.__name__}, got {value!r}")
    return value


def _names(table: dict, key: str, where: str) -> list[str]:
    value = _typed(table, key, list, where)
    if not value or not all(isinstance(v, str) and v for v in value):
        raise BenchError(f"{where}: '{key}' must be a non-empty list of names")
    return list(dict.fromkeys(value))


def store_suite_file(suite: Suite, results_dir: Path) -> Path:
    """Copy the suite file, as it was loaded, into the results folder: what was run stays beside
    its results even if the file is edited while the suite runs."""
    from bench.results.schema import atomic_write_bytes

    folder = Path(results_dir) / "suites"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BenchError(f"cannot write {folder}: {e.strerror or e}") from None
    out = folder / f"{suite.name}-v{suite.version}.toml"
    atomic_write_bytes(out, suite.text)
    return out
