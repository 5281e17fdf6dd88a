"""Regression check: current results against a committed baseline table.

For each algo x dataset of the baseline, the current runs' IQM (95% stratified bootstrap CI,
as in the leaderboard) must not fall below the baseline's CI lower bound minus a tolerance:

    fail  <=>  iqm_now < baseline_iqm_lo - tolerance

A baseline row without any current complete run fails too: a check that silently compares
nothing would pass every regression.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.errors import BenchError
from bench.leaderboard import ScoreSpec, leaderboard
from bench.results import atomic_write_bytes

BASELINE_COLUMNS = ["algo", "dataset", "seeds", "iqm", "iqm_lo", "iqm_hi", "score", "last_k"]
DEFAULT_TOLERANCE = 5.0


def baseline_from_results(results: Path, spec: ScoreSpec) -> pd.DataFrame:
    table, _, _ = leaderboard(results, spec)
    if table.empty:
        raise BenchError(f"no complete runs under {results}/runs to make a baseline from")
    return table.assign(score=spec.kind, last_k=spec.last_k)[BASELINE_COLUMNS]


def write_baseline(results: Path, path: Path, spec: ScoreSpec) -> pd.DataFrame:
    import io

    base = baseline_from_results(results, spec)
    buf = io.BytesIO()
    base.to_parquet(buf, index=False)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(path), buf.getvalue())
    return base


def read_baseline(path: Path) -> pd.DataFrame:
    try:
        base = pd.read_parquet(path)
    except FileNotFoundError:
        raise BenchError(f"no baseline file {path} (write one with --update)") from None
    except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise BenchError(f"baseline {path} is not a readable parquet table ({e})") from None
    missing = [c for c in BASELINE_COLUMNS if c not in base.columns]
    if missing:
        raise BenchError(f"baseline {path} lacks columns {missing}")
    return base


def check(results: Path, baseline: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """One row per baseline row: both IQMs, the threshold, and passed (bool)."""
    kinds = baseline[["score", "last_k"]].drop_duplicates()
    if len(kinds) != 1:
        raise BenchError("the baseline mixes score definitions; write it again with --update")
    spec = ScoreSpec(str(kinds.score.iloc[0]), int(kinds.last_k.iloc[0]))
    try:
        current, _, _ = leaderboard(results, spec)
    except BenchError:
        current = pd.DataFrame(columns=["algo", "dataset", "seeds", "iqm", "iqm_lo", "iqm_hi"])
    merged = baseline.merge(
        current[["algo", "dataset", "seeds", "iqm", "iqm_lo", "iqm_hi"]],
        on=["algo", "dataset"], how="left", suffixes=("_base", "_now"),
    )  # fmt: skip
    merged["threshold"] = merged.iqm_lo_base - tolerance
    merged["passed"] = merged.iqm_now.notna() & (merged.iqm_now >= merged.threshold)
    return merged
