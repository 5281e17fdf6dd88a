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

import dataclasses
import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError, UnknownNameError
from bench.run.config import (
    SUITE_OPTIONAL,
    SUITE_PINNED,
    RunConfig,
    RunOptions,
    check_algorithm,
    option_names,
)

SUITES_DIR = Path(__file__).parent / "suites"
#: The run options a grid may set (declared suite=... in RunOptions; the rest are how a run is
#: executed, not what it measures), and those every grid must pin, so that a card default never
#: changes a versioned suite.
GRID_OPTIONS = option_names(suite=SUITE_PINNED) + option_names(suite=SUITE_OPTIONAL)
PINNED = option_names(suite=SUITE_PINNED)
#: A suite name: a slug (it names a results folder, the copied file and README markers).
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
#: Versions above this are refused as typos (the version is part of a file name).
MAX_VERSION = 1_000_000
#: Suite files above this size are refused unread (a suite is a few grids of names).
MAX_SUITE_BYTES = 1 << 20


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

    def with_precision(self, precision: str | None) -> Suite:
        """The suite with every grid's precision set (`--precision`); None: as the file has it."""
        if precision is None:
            return self
        grids = [
            dataclasses.replace(g, options=dataclasses.replace(g.options, precision=precision))
            for g in self.grids
        ]
        return dataclasses.replace(self, grids=grids)


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
    where = f"suite {path}"
    try:
        size = path.stat().st_size
        if size > MAX_SUITE_BYTES:
            raise BenchError(
                f"{where}: {size:,} bytes; a suite file is at most {MAX_SUITE_BYTES:,}"
            )
        data = path.read_bytes()
    except OSError as e:
        raise BenchError(f"{where}: cannot be read ({e.strerror or e})") from None
    try:
        raw = tomllib.loads(data.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"{where}: not valid TOML ({e})") from None
    _only(raw, ("name", "version", "description", "seeds", "grid"), where)
    suite_name = _typed(raw, "name", str, where)
    if not NAME_RE.fullmatch(suite_name):
        raise BenchError(
            f"{where}: name {suite_name!r} is not a suite name: 1 to 64 letters, digits, '-' "
            "and '_', starting with a letter or digit (it names the results folder)"
        )
    if path.parent == SUITES_DIR and suite_name != path.stem:
        raise BenchError(f"{where}: name '{suite_name}' does not match its file name")
    version = _typed(raw, "version", int, where)
    if not 1 <= version <= MAX_VERSION:
        raise BenchError(f"{where}: version must be in 1..{MAX_VERSION:,}, got {version}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise BenchError(f"{where}: 'description' must be a str, got {description!r}")
    try:
        seeds = parse_seeds(_typed(raw, "seeds", str, where))
    except BenchError as e:
        raise BenchError(f"{where}: {str(e).replace('--seeds', 'seeds')}") from None
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
        overrides = _overrides(g.get("set", {}), gw)
        values = {k: g[k] for k in GRID_OPTIONS if k in g}
        if "preset" in values and not isinstance(values["preset"], str):
            raise BenchError(f"{gw}: 'preset' must be a str, got {values['preset']!r}")
        try:
            options = RunOptions(**values, overrides=overrides)
            for a in algos:  # names, preset and --set keys and values, as `suite run` will
                check_algorithm(dataclasses.replace(options, algo=a))
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
        description=description,
        seeds=seeds,
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


def _overrides(table: Any, where: str) -> dict[str, str]:
    """A grid's `set` table: key = a scalar (string, number or boolean), as `--set key=value`
    would give it; arrays and tables are refused here, not when the suite runs."""
    if not isinstance(table, dict):
        raise BenchError(f"{where}: 'set' must be a table of key = value")
    out = {}
    for k, v in table.items():
        if isinstance(v, bool):
            out[str(k)] = str(v).lower()
        elif isinstance(v, str | int | float):
            out[str(k)] = str(v)
        else:
            kind = "an array" if isinstance(v, list) else f"a {type(v).__name__}"
            hint = (
                ' (write a list as a string: hidden_sizes = "64,64")' if isinstance(v, list) else ""
            )
            raise BenchError(
                f"{where}: set.{k} is {kind}; values are strings, numbers or booleans{hint}"
            )
    return out


def _names(table: dict, key: str, where: str) -> list[str]:
    value = _typed(table, key, list, where)
    if not value or not all(isinstance(v, str) and v for v in value):
        raise BenchError(f"{where}: '{key}' must be a non-empty list of names")
    return list(dict.fromkeys(value))


def suite_copy(suite: Suite, results_dir: Path) -> Path:
    return Path(results_dir) / "suites" / f"{suite.name}-v{suite.version}.toml"


def check_suite_copy(suite: Suite, results_dir: Path) -> None:
    """Before a suite runs: its file can be copied into the results folder, and a copy already
    there for this name and version is this very file (else the file changed without a new
    version, and the copy would no longer be what the earlier runs ran)."""
    import os

    out = suite_copy(suite, results_dir)
    folder = out.parent
    if folder.exists() and not folder.is_dir() or folder.is_symlink() and not folder.exists():
        raise BenchError(f"cannot write {out}: {folder} is not a folder")
    if out.is_symlink() or out.exists() and not out.is_file():
        raise BenchError(f"cannot write {out}: it is not a regular file")
    if out.is_file():
        try:
            same = out.read_bytes() == suite.text
        except OSError as e:
            raise BenchError(f"cannot read {out}: {e.strerror or e}") from None
        if not same:
            raise BenchError(
                f"{out} holds another file for suite {suite.name} v{suite.version}: "
                f"{suite.path} changed since that version ran; bump its version"
            )
    elif folder.is_dir() and not os.access(folder, os.W_OK):
        raise BenchError(f"cannot write {out}: folder {folder} is not writable")


def store_suite_file(suite: Suite, results_dir: Path) -> Path:
    """Copy the suite file, as it was loaded, into the results folder: what was run stays beside
    its results even if the file is edited while the suite runs."""
    from bench.results.schema import atomic_write_bytes

    folder = Path(results_dir) / "suites"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BenchError(f"cannot write {folder}: {e.strerror or e}") from None
    out = suite_copy(suite, results_dir)
    atomic_write_bytes(out, suite.text)
    return out


# ---------------------------------------------------------------------- the suite's own runs
#: What decides a run's numbers, as the key hashes it (RunConfig's declaration, the code's
#: versions included), less the dataset's content hash (checked apart, when the dataset is on
#: this machine).
_IDENTITY = tuple(
    f for f in (*RunConfig.IDENTITY, *RunConfig.IDENTITY_IF_SET) if f != "dataset_hash"
)
#: Without the dataset's card (a minari: id or a file not on this machine): what the suite
#: declares, compared with what the run recorded.
_DECLARED = (
    "algo",
    "dataset",
    "steps",
    "eval_every",
    "eval_episodes",
    "final_episodes",
    "batch_size",
    "holdout",
    "precision",
    "overrides",
)


def _card_here(dataset: str):
    """The dataset's card when it can be had without building, importing or downloading
    anything; else None."""
    from bench.data.catalog import HDF5_SUFFIXES, MINARI_PREFIX, remote_alias, resolve_card
    from bench.data.minari_io import dataset_exists

    if dataset.endswith(HDF5_SUFFIXES):  # imported under an env a suite does not name
        return None
    try:
        if dataset.startswith(MINARI_PREFIX):
            if not dataset_exists(remote_alias(dataset[len(MINARI_PREFIX) :])):
                return None
        return resolve_card(dataset)
    except (BenchError, OSError):
        return None


def _matcher(grid: Grid, algo: str, dataset: str):
    """A test of a run's RunConfig: is it this grid cell's configuration (any seed)? Its key,
    resolved as `bench suite run` resolves it, when the dataset is on this machine; else the
    fields of the key but the dataset's content hash (with the card), or the fields the suite
    declares (without it)."""
    from bench.algos import get_algorithm
    from bench.data.minari_io import dataset_exists
    from bench.run.config import resolve, resolve_preset
    from bench.run.loop import prepare

    opts = dataclasses.replace(grid.options, algo=algo, dataset=dataset, device="cpu")
    card = _card_here(dataset)
    if card is None:
        preset = (
            None
            if grid.options.preset is None
            else resolve_preset(get_algorithm(algo), None, grid.options.preset)
        )

        def declared(c) -> bool:
            same = all(getattr(c, f) == getattr(opts, f) for f in _DECLARED)
            return same and (grid.options.preset is None or c.preset == preset)

        return declared
    if dataset_exists(card.minari_id):
        try:
            key = prepare(opts, show_progress=False).config.key()
            return lambda c: c.key() == key
        except BenchError:
            pass  # the suite could not run it here either: compare what can be compared
    want = resolve(opts, card, "")
    ident = {f: getattr(want, f) for f in _IDENTITY}
    return lambda c: {f: getattr(c, f) for f in _IDENTITY} == ident


def own_runs(suite: Suite, results_dir: Path) -> tuple[list[str], list[str]]:
    """(the run ids under results_dir that are the suite's: a grid cell's configuration, as
    `bench suite run` matches them, and one of its seeds; the other run ids). A run whose
    config.json cannot be read back is among the others."""
    from bench.results.schema import runs_dir
    from bench.results.store import read_runs

    raw, _, _ = read_runs(results_dir)
    matchers = [_matcher(g, a, d) for g in suite.grids for a in g.algos for d in g.datasets]
    seeds = set(suite.seeds)
    own: list[str] = []
    others: list[str] = []
    for run_id, cfg in sorted(raw.items()):
        try:
            c = RunConfig.from_json(cfg, str(runs_dir(results_dir) / run_id / "config.json"))
        except BenchError:
            others.append(run_id)
            continue
        mine = c.seed in seeds and any(m(c) for m in matchers)
        (own if mine else others).append(run_id)
    return own, others
