"""Regression check: current results against a committed baseline table.

Baseline rows are configurations (run keys) on a dataset. For each, the current complete runs of
the same key give an IQM (as in the leaderboard), which must not fall below the baseline's 95%
CI lower bound minus a tolerance:

    fail  <=>  iqm_now < baseline_iqm_lo - tolerance

A baseline row from a single seed has no CI: its IQM itself is the bound. A baseline row without
any current complete run of its key fails too: a check that silently compares nothing would pass
every regression.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis.leaderboard import leaderboard
from bench.analysis.scores import ScoreSpec
from bench.errors import BenchError
from bench.results.schema import atomic_write_bytes

BASELINE_COLUMNS = ["key", "algo", "label", "dataset", "seeds", "iqm", "iqm_lo", "iqm_hi",
                    "score", "last_k", "command"]  # fmt: skip
DEFAULT_TOLERANCE = 5.0
CURRENT = ["key", "seeds", "iqm", "iqm_lo", "iqm_hi"]


def baseline_from_results(results: Path, spec: ScoreSpec) -> pd.DataFrame:
    board = leaderboard(results, spec)
    if board.rows.empty:
        raise BenchError(f"no complete runs under {results}/runs to make a baseline from")
    return board.rows.assign(score=spec.kind, last_k=spec.last_k)[BASELINE_COLUMNS]


def write_baseline(results: Path, path: Path, spec: ScoreSpec) -> pd.DataFrame:
    base = baseline_from_results(results, spec)
    buf = io.BytesIO()
    base.to_parquet(buf, index=False)
    path = Path(path)
    if path.exists() and path.is_dir():
        raise BenchError(f"--baseline {path} is a folder; give a file name, e.g. {path}/ci.parquet")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BenchError(f"cannot create {path.parent}: {e.strerror or e}") from None
    atomic_write_bytes(path, buf.getvalue())
    return base


def read_baseline(path: Path) -> pd.DataFrame:
    path = Path(path)
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
    return base


def check(results: Path, baseline: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """One row per baseline row: both IQMs, the threshold, and passed (bool)."""
    if not math.isfinite(tolerance) or tolerance < 0:
        raise BenchError(f"--tolerance must be a finite number >= 0, got {tolerance}")
    kinds = baseline[["score", "last_k"]].drop_duplicates()
    if len(kinds) != 1:
        raise BenchError("the baseline mixes score definitions; write it again with --update")
    spec = ScoreSpec(str(kinds.score.iloc[0]), int(kinds.last_k.iloc[0]))
    # a damaged results folder is an error, not "no runs": only an empty one compares nothing
    current = leaderboard(results, spec, allow_empty=True).rows
    if current.empty:
        current = pd.DataFrame(columns=CURRENT)
    merged = baseline.merge(current[CURRENT], on="key", how="left", suffixes=("_base", "_now"))
    bound = merged.iqm_lo_base.where(merged.iqm_lo_base.notna(), merged.iqm_base)  # one seed
    merged["threshold"] = bound.astype(float) - tolerance
    merged["passed"] = merged.iqm_now.notna() & (
        merged.iqm_now.astype(float) >= merged.threshold - 1e-9 * np.abs(merged.threshold)
    )
    return merged
