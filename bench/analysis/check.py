"""Regression check: current results against a committed baseline table.

Baseline rows are configurations (run keys) on a dataset. For each, the current complete runs of
the same key give an IQM (as in the leaderboard), which must not fall below the baseline's 95%
CI lower bound minus a tolerance:

    fail  <=>  iqm_now < baseline_iqm_lo - tolerance

A baseline row from a single seed has no CI: its IQM itself is the bound. A baseline row without
any current complete run of its key fails too: a check that silently compares nothing would pass
every regression. It says why: "not run" (no runs of that algorithm on that dataset), "not
complete" (runs of the key, none finished), or "ran something else": the nearest configuration
of the same algorithm and dataset, and every identity field it differs in (the dataset's
content, the code's versions, budgets, config fields). A baseline holds each row's whole run
config (the config column) for this; one written before it had that column is explained from
its reproduce command.
"""

from __future__ import annotations

import io
import json
import math
import shlex
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis.leaderboard import leaderboard
from bench.analysis.scores import Results, ScoreSpec
from bench.errors import BenchError
from bench.results.schema import atomic_write_bytes, runs_dir
from bench.run.config import RunConfig

BASELINE_COLUMNS = "key algo label dataset seeds iqm iqm_lo iqm_hi score last_k command".split()
#: What a baseline row records of its identity beyond the key (baselines written before these
#: columns existed are still read): the dataset's content hash, the code's versions (JSON), and
#: the run config (config.json's identity, JSON).
IDENTITY_COLUMNS = ["dataset_hash", "versions", "config"]
DEFAULT_TOLERANCE = 5.0
CURRENT = ["key", "seeds", "iqm", "iqm_lo", "iqm_hi"]


def baseline_from_results(results: Path, spec: ScoreSpec) -> pd.DataFrame:
    board = leaderboard(results, spec)
    if board.rows.empty:
        raise BenchError(f"no complete runs under {results}/runs to make a baseline from")
    configs = {c.key(): c for c in board.results.configs.values()}
    cfgs = [configs[k] for k in board.rows.key]
    return board.rows.assign(
        score=spec.kind,
        last_k=spec.last_k,
        dataset_hash=[c.dataset_hash for c in cfgs],
        versions=[
            None if c.versions is None else json.dumps(c.versions, sort_keys=True) for c in cfgs
        ],
        config=[json.dumps(_identity_json(c), sort_keys=True) for c in cfgs],
    )[BASELINE_COLUMNS + IDENTITY_COLUMNS]


def _identity_json(cfg: RunConfig) -> dict:
    """config.json of a configuration, less what belongs to one run (its seed's fingerprint)."""
    out = cfg.to_json()
    out.pop("fingerprint", None)
    return out


def _check_path(path: Path) -> Path:
    """--baseline names a file (to read, or to write with --update), never a folder."""
    path = Path(path)
    if path.is_dir():
        raise BenchError(
            f"--baseline {path} is a folder; give the baseline's file name, e.g. {path}/ci.parquet"
        )
    return path


def write_baseline(results: Path, path: Path, spec: ScoreSpec) -> pd.DataFrame:
    path = _check_path(path)
    base = baseline_from_results(results, spec)
    buf = io.BytesIO()
    base.to_parquet(buf, index=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BenchError(f"cannot create {path.parent}: {e.strerror or e}") from None
    atomic_write_bytes(path, buf.getvalue())
    return base


def read_baseline(path: Path) -> pd.DataFrame:
    path = _check_path(path)
    if not path.is_file():
        raise BenchError(f"no baseline file {path} (write one with --update)")
    try:
        base = pd.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise BenchError(
            f"baseline {path} is not a readable parquet table ({type(e).__name__})"
        ) from None
    missing = [c for c in BASELINE_COLUMNS if c not in base.columns]
    if missing:
        raise BenchError(
            f"baseline {path} lacks columns {', '.join(missing)} (written by an older bench? "
            "write it again with --update)"
        )
    if base.empty:
        raise BenchError(f"baseline {path} has no rows")
    for col in ("iqm", "iqm_lo", "iqm_hi", "seeds", "last_k"):
        values = pd.to_numeric(base[col], errors="coerce")
        required = col in ("iqm", "seeds", "last_k")  # a one-seed baseline has no CI
        if (values.isna() & (base[col].notna() | required)).any() or np.isinf(values).any():
            raise BenchError(
                f"baseline {path}: column {col} holds non-numbers; write it again with --update"
            )
        base[col] = values
    if (base.last_k < 1).any() or (base.last_k % 1 != 0).any():
        raise BenchError(f"baseline {path}: last_k must be a whole number >= 1")
    if "config" in base.columns:  # each row's run config, read back as a run's is
        base["config"] = [
            _baseline_config(text, key, f"baseline {path}, row {i} ({key})")
            for i, (text, key) in enumerate(zip(base.config, base.key, strict=True))
        ]
    return base


def _baseline_config(text, key: str, where: str) -> RunConfig:
    try:
        cfg = RunConfig.from_json(json.loads(text), where)
    except (TypeError, ValueError):
        raise BenchError(f"{where}: config is not JSON; write it again with --update") from None
    if cfg.key() != key:
        raise BenchError(f"{where}: its config is of key {cfg.key()}; write it again with --update")
    return cfg


def baseline_spec(baseline: pd.DataFrame, asked: ScoreSpec | None = None) -> ScoreSpec:
    """The score a baseline was made with. A check compares by it; a score asked for on the
    command line (asked) that is another one is refused, never silently replaced."""
    kinds = baseline[["score", "last_k"]].drop_duplicates()
    if len(kinds) != 1:
        raise BenchError("the baseline mixes score definitions; write it again with --update")
    spec = ScoreSpec(str(kinds.score.iloc[0]), int(kinds.last_k.iloc[0]))
    if asked is not None and asked != spec:
        raise BenchError(
            f"--score {asked.kind} (last k {asked.last_k}) is not the baseline's score, "
            f"{spec.kind} (last k {spec.last_k}); a check compares by the baseline's own score: "
            f"drop --score and --last-k, or write a new baseline with --update --score "
            f"{asked.kind}"
        )
    return spec


def check(
    results: Path, baseline: pd.DataFrame, tolerance: float, asked: ScoreSpec | None = None
) -> pd.DataFrame:
    """One row per baseline row: both IQMs, the threshold, passed (bool), and for a row without
    current complete runs of its key, why (text; empty otherwise)."""
    if not math.isfinite(tolerance) or tolerance < 0:
        raise BenchError(f"--tolerance must be a finite number >= 0, got {tolerance}")
    spec = baseline_spec(baseline, asked)
    # a damaged results folder is an error, not "no runs": only an empty one compares nothing
    board = leaderboard(results, spec, allow_empty=True)
    current = board.rows
    if current.empty:
        current = pd.DataFrame(columns=CURRENT)
    merged = baseline.merge(current[CURRENT], on="key", how="left", suffixes=("_base", "_now"))
    bound = merged.iqm_lo_base.where(merged.iqm_lo_base.notna(), merged.iqm_base)  # one seed
    merged["threshold"] = bound.astype(float) - tolerance
    merged["passed"] = merged.iqm_now.notna() & (
        merged.iqm_now.astype(float) >= merged.threshold - 1e-9 * np.abs(merged.threshold)
    )
    merged["why"] = [
        "" if pd.notna(r["iqm_now"]) else why_missing(r, board.results)
        for _, r in merged.iterrows()
    ]
    return merged


# ---------------------------------------------------------------------- why a row has no runs
def why_missing(row: pd.Series, res: Results) -> str:
    """Why a baseline row (key, algo, label, dataset, command; config where recorded) has no
    complete runs in res: not run, not complete, or ran something else (and what differs)."""
    runs = res.runs
    mine = runs[runs.key == row["key"]]
    if len(mine):
        return (
            f"not complete: {len(mine)} run(s) of this configuration under "
            f"{runs_dir(res.folder)}, none complete (in progress or stopped)"
        )
    near = runs[(runs.algo == row["algo"]) & (runs.dataset == row["dataset"])]
    if near.empty:
        return f"not run: no runs of {row['algo']} on {row['dataset']} under {runs_dir(res.folder)}"
    base = row.get("config")
    if isinstance(base, str):  # as baseline_from_results writes it
        base = _baseline_config(base, row["key"], f"baseline row {row['key']}")
    base = base if isinstance(base, RunConfig) else None  # an older baseline: its command only
    candidates = []
    for key, g in near.groupby("key", sort=True):
        cfg = res.configs[g.run_id.iloc[0]]
        diff = _config_diff(base, cfg) if base is not None else _command_diff(row, cfg)
        counted = int((g.complete & g.duplicate_of.isna()).sum())
        # nearest: fewest differences, then the same label, then the most complete seeds
        candidates.append(
            (
                (len(diff), g.label.iloc[0] != row["label"], -counted, key),
                key,
                g.label.iloc[0],
                counted,
                diff,
                cfg,
            )
        )
    _, key, label, counted, diff, cfg = min(candidates)
    others = len(candidates) - 1
    where = (
        f"the nearest runs of {row['algo']} on {row['dataset']} are key {key} ({counted} "
        f"complete seed{'s' * (counted != 1)}, shown as {label}"
        f"{f'; {others} other configuration(s)' if others else ''})"
    )
    if base is None:
        theirs = (
            f"the runs are of dataset content {cfg.dataset_hash}, by {cfg.algo} "
            f"{_v(cfg.version('algo'))}, evaluation protocol {_v(cfg.version('eval'))}"
        )
        older = (
            "the baseline records only its command (written before baselines held their "
            "run config: write it again with --update to compare everything)"
        )
        if not diff:
            return (
                f"ran something else: {where}, with the same options, so they differ in "
                f"what the baseline does not record, the dataset's content or the code's "
                f"versions ({theirs}); {older}"
            )
        return f"ran something else: {where}, which differ in {'; '.join(diff)} ({theirs}); {older}"
    return f"ran something else: {where}, which differ in {'; '.join(diff)}"


def _config_diff(base: RunConfig, cfg: RunConfig) -> list[str]:
    """The identity fields cfg differs from the baseline's in, as text."""
    out = []
    for name, b, r in base.identity_diff(cfg):
        if name == "algo_version":
            out.append(f"algorithm version (baseline by {base.algo} {_v(b)}, runs by {_v(r)})")
        elif name == "eval_version":
            out.append(f"evaluation protocol (baseline {_v(b)}, runs {_v(r)})")
        elif name == "dataset_hash":
            out.append(
                f"dataset content (dataset_hash: baseline {b}, runs {r}; another build "
                "of the dataset, e.g. another size)"
            )
        else:
            out.append(f"{name} (baseline {_text(b)}, runs {_text(r)})")
    return out


def _v(version: int | None) -> str:
    return "no recorded version" if version is None else f"v{version}"


def _text(value) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _command_options(command: str) -> dict[str, str]:
    """The options a reproduce command spells out ({flag: value}; --set once per key), less the
    seeds."""
    words = shlex.split(str(command))
    out: dict[str, str] = {}
    for flag, value in zip(words, words[1:], strict=False):
        if not flag.startswith("--") or flag in ("--seed", "--seeds"):
            continue
        if flag == "--set":
            key, _, v = value.partition("=")
            out[f"--set {key}"] = v
        else:
            out[flag] = value
    return out


def _command_diff(row: pd.Series, cfg: RunConfig) -> list[str]:
    """For a baseline without configs: the options of its command that the runs' differ in."""
    base, runs = _command_options(row["command"]), _command_options(cfg.command())
    return [
        f"{flag} (baseline {base.get(flag, 'not set')}, runs {runs.get(flag, 'not set')})"
        for flag in sorted(set(base) | set(runs))
        if base.get(flag) != runs.get(flag)
    ]
