"""A suite's published table: per dataset and configuration, the IQM with its 95% CI, the
probability of improvement over bc on that dataset, the behavior's score, the wall time of the
job that trained the seeds, and the hardware it ran on; rendered as markdown, and written into a
README between markers so that the table there is always regenerated from the parquet files.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis.leaderboard import Board, fmt_ci, fmt_duration, leaderboard, protocol_line
from bench.analysis.scores import ScoreSpec, per_task
from bench.errors import BenchError
from bench.results.schema import atomic_write_bytes
from bench.stats.bootstrap import BOOTSTRAP_REPS, pair_interval_estimate
from bench.stats.metrics import probability_of_improvement

#: The reference every row is compared with (P(X > bc) on the same dataset).
REFERENCE = "bc"


def report_frame(board: Board, reps: int = BOOTSTRAP_REPS) -> pd.DataFrame:
    """One row per dataset x configuration, in the leaderboard's order (bc first)."""
    res, done = board.results, board.results.counted
    wall = _run_walls(res)
    out = []
    for dataset, rows in board.rows.groupby("dataset", sort=True):
        rows = rows.assign(_ref=rows.label != REFERENCE).sort_values(["_ref", "label"])
        ref = done[(done.dataset == dataset) & (done.label == REFERENCE)]
        for r in rows.itertuples():
            mine = done[(done.dataset == dataset) & (done.label == r.label)]
            p = "-"
            if len(ref) and r.label != REFERENCE:
                est = pair_interval_estimate(
                    per_task(mine, [dataset]),
                    per_task(ref, [dataset]),
                    probability_of_improvement,
                    reps,
                )
                p = fmt_ci(*est, digits=2)
            walls = [wall.get(run_id, np.nan) for run_id in mine.run_id]
            out.append(
                {
                    "dataset": dataset,
                    "algo": r.label,
                    "seeds": int(r.seeds),
                    "IQM [95% CI]": fmt_ci(r.iqm, r.iqm_lo, r.iqm_hi),
                    f"P(> {REFERENCE}) [95% CI]": p,
                    "behavior": "-" if pd.isna(r.behavior_score) else f"{r.behavior_score:.1f}",
                    "wall": fmt_duration(np.nanmax(walls) if walls else np.nan),
                    "hardware": _hardware(res.meta[mine.run_id.iloc[0]]),
                }
            )
    return pd.DataFrame(out)


def _run_walls(res) -> dict[str, float]:
    """Seconds from each run's start to its last table row (its final evaluation's, if any)."""
    frames = [f[["run_id", "wall_time_s"]] for f in (res.evals, res.finals) if len(f)]
    if not frames:
        return {}
    return pd.concat(frames).groupby("run_id").wall_time_s.max().to_dict()


def _hardware(meta: dict) -> str:
    prov = meta.get("provenance") or {}
    hw = prov.get("hardware") or {}
    if not hw:
        return "-"
    text = f"{hw.get('cpu', '?')}, {prov.get('threads', '?')} of {hw.get('cores', '?')} threads"
    return f"{hw['gpu']} ({text})" if hw.get("gpu") else text


def report_markdown(
    results_dir: Path, spec: ScoreSpec = ScoreSpec(), reps: int = BOOTSTRAP_REPS
) -> str:
    board = leaderboard(results_dir, spec, reps)
    if board.rows.empty:
        raise BenchError(f"no complete runs under {results_dir}/runs")
    frame = report_frame(board, reps)
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    wall = "wall: the job that trained a row's seeds together, start to final evaluation"
    return "\n".join(lines) + f"\n\n{protocol_line(board, spec, reps)}; {wall}.\n"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- bench suite report {name}: start -->", f"<!-- bench suite report {name}: end -->"


def write_into(path: Path, name: str, text: str) -> None:
    """Replace what lies between the suite's markers in a file (atomically); the markers must
    be there, once each."""
    start, end = markers(name)
    path = Path(path).resolve()  # a link stays a link: the file it points to is rewritten
    try:
        doc = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise BenchError(f"cannot read {path}: {e}") from None
    if doc.count(start) != 1 or doc.count(end) != 1 or doc.index(start) > doc.index(end):
        raise BenchError(f"{path}: needs the lines '{start}' and '{end}', once each, in order")
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    new = pattern.sub(lambda _: f"{start}\n{text}{end}", doc)
    atomic_write_bytes(path, new.encode())
