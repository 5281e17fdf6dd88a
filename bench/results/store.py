"""Reading runs back: every run's config.json and eval table under a results folder, read once.

A file that is not bench's (unreadable parquet, a table with other columns, a config.json that
is not an object) is one error line naming it: results are never silently mixed with foreign
data. A run directory without config.json is being created and is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.errors import BenchError
from bench.results.schema import EVAL_SCHEMA, FINAL_TABLE, runs_dir


def _foreign(path: Path, what: str) -> BenchError:
    return BenchError(f"{path}: {what}; move it out of {path.parent.parent}")


def read_eval_table(path: Path) -> pd.DataFrame:
    """One run's eval.parquet in EVAL_SCHEMA (tables of schema-1 runs get an empty key)."""
    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise _foreign(path, f"not a readable parquet table ({type(e).__name__})") from None
    if "key" not in table.column_names:  # written before run keys
        table = table.append_column("key", pa.nulls(len(table), pa.string()))
    for name in ("discounted_return_mean", "eval_time_s"):  # columns added since: null
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(len(table), pa.float64()))
    missing = [n for n in EVAL_SCHEMA.names if n not in table.column_names]
    if missing:
        raise _foreign(path, f"not a bench eval table (no columns {', '.join(missing)})")
    try:
        table = table.select(EVAL_SCHEMA.names).cast(EVAL_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
        raise _foreign(path, f"not a bench eval table ({e})") from None
    return table.to_pandas()


def read_config(path: Path) -> dict:
    try:
        cfg = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _foreign(Path(path), f"not a readable JSON file ({type(e).__name__})") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("run_id", ""), str):
        raise _foreign(Path(path), "not a bench run config (a JSON object expected)")
    return cfg


def read_runs(results_dir: Path) -> tuple[dict[str, dict], pd.DataFrame, pd.DataFrame]:
    """(run_id -> config.json, all eval rows of those runs, their final evaluations' rows), each
    file read once."""
    root = runs_dir(results_dir)
    if root.exists() and not root.is_dir():
        raise BenchError(f"{root} is not a folder")
    configs: dict[str, dict] = {}
    frames, finals = [], []
    for run_dir in sorted(root.glob("*/")) if root.is_dir() else []:
        cfg = run_dir / "config.json"
        if not cfg.is_file():
            if cfg.exists() or cfg.is_symlink():  # a folder, a dangling link: not silently dropped
                raise BenchError(f"{cfg} is not a readable file: move that run folder away")
            continue
        configs[run_dir.name] = read_config(run_dir / "config.json")
        if (run_dir / "eval.parquet").is_file():
            frame = read_eval_table(run_dir / "eval.parquet")
            frames.append(frame.assign(run_id=run_dir.name))  # the folder names the run
        if (run_dir / FINAL_TABLE).is_file():
            finals.append(read_eval_table(run_dir / FINAL_TABLE).assign(run_id=run_dir.name))
    return configs, _concat(frames), _concat(finals)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return EVAL_SCHEMA.empty_table().to_pandas()
    return pd.concat(frames, ignore_index=True)


def read_eval(results_dir: Path) -> pd.DataFrame:
    """All eval rows of all runs under results_dir (an empty frame with the schema if none)."""
    return read_runs(results_dir)[1]


def is_complete(cfg: dict, last_step: int, has_final: bool = False) -> bool:
    """A run is complete when its last evaluation is at its configured number of steps and,
    where it has one (final_episodes > 0), its final evaluation is written."""
    steps = cfg.get("steps") if isinstance(cfg, dict) else None
    final = cfg.get("final_episodes") if isinstance(cfg, dict) else None
    return isinstance(steps, int) and last_step >= steps and (not final or has_final)
