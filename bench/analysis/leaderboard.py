"""The leaderboard: one row per configuration (run key) and dataset with mean / median / IQM over
its seeds and 95% stratified bootstrap CIs; then aggregates across datasets that compare only
what is comparable, with rliable's probability of improvement; and renderings (md, csv, html).

Honest aggregates. A configuration is aggregated under its label (`bc`, `bc (steps=1000)`).
Labels are compared only over datasets they all have: each aggregate block names its datasets,
its labels, and what it leaves out. Blocks: for each distinct set of datasets some label was run
on (largest first), the labels run on all of them; a block whose labels a block over more
datasets already compares is dropped.
"""

from __future__ import annotations

import functools
import html
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis.scores import SCORED_CURVE, Results, ScoreSpec, load_results, per_task
from bench.errors import BenchError
from bench.results.schema import runs_dir
from bench.run.config import VERSION_PARTS
from bench.stats.bootstrap import (
    BOOTSTRAP_REPS,
    CONFIDENCE,
    interval_estimate,
    pair_interval_estimate,
)
from bench.stats.metrics import AGGREGATES, iqm_r, mean_r, median_r, probability_of_improvement

RUN_METRICS = {"mean": mean_r, "median": median_r, "iqm": iqm_r}


@dataclass
class Block:
    """Labels compared over the datasets they all have."""

    datasets: list[str]
    table: pd.DataFrame  # label, runs, iqm, mean, median, optimality_gap (+ _lo, _hi)
    improvement: pd.DataFrame  # x, y, p, p_lo, p_hi: P(X > Y)
    left_out: list[str] = field(default_factory=list)  # "label on dataset" outside the block


@dataclass
class Board:
    rows: pd.DataFrame  # one per configuration x dataset
    blocks: list[Block]
    results: Results


def _interval(samples, statistic, reps):
    return dict(zip(("", "_lo", "_hi"), interval_estimate(samples, statistic, reps), strict=True))


def leaderboard(
    results_dir: Path,
    spec: ScoreSpec = ScoreSpec(),
    reps: int = BOOTSTRAP_REPS,
    allow_empty: bool = False,
) -> Board:
    res = load_results(results_dir, spec)
    if res.runs.empty and not allow_empty:
        raise BenchError(f"no runs with evaluations under {runs_dir(results_dir)}")
    done = res.counted
    rows = []
    for (label, dataset), g in done.groupby(["label", "dataset"], sort=True):
        row = {
            "label": label,
            "algo": g.algo.iloc[0],
            "dataset": dataset,
            "key": g.key.iloc[0],
            "seeds": len(g),
        }
        for name, fn in RUN_METRICS.items():  # one task: the statistic of its runs
            est = _interval([g.score.to_numpy()], lambda tasks, fn=fn: fn(tasks[0]), reps)
            row |= {name + k: v for k, v in est.items()}
        row |= {
            "return_mean": float(g.return_mean.mean()),
            "step": int(g.step.max()),
            "behavior_score": float(g.behavior_score.mean()),
            "episodes": int(g.episodes.iloc[0]),
            "scored": " + ".join(sorted(set(g.scored))),
            "eval_eps": g.eval_eps.iloc[0],
            "command": res.command(g.key.iloc[0], g.seed.tolist()),
        }
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        table["command"] = _told_apart(table, res)
    return Board(table, aggregate_blocks(done, reps), res)


def _told_apart(rows: pd.DataFrame, res: Results) -> pd.Series:
    """The rows' reproduce commands, each that another row (another key) shares followed by a
    shell comment naming what the command cannot: the dataset's content (which build of it)
    and the code's versions. The command stays one to paste."""
    configs = {c.key(): c for c in res.configs.values()}
    out = rows.command.copy()
    for _, g in rows.groupby("command", sort=False):
        if g.key.nunique() < 2:
            continue
        cfgs = {i: configs[k] for i, k in zip(g.index, g.key, strict=True)}
        for i, c in cfgs.items():
            notes = []
            if len({o.dataset_hash for o in cfgs.values()}) > 1:
                size = _dataset_steps(res, c.key())
                notes.append(
                    f"dataset content {c.dataset_hash}"
                    + (f" ({size:,} transitions)" if size else "")
                )
            for part in VERSION_PARTS:
                if len({o.version(part) for o in cfgs.values()}) > 1:
                    v = c.version(part)
                    notes.append(f"{part} {'(no recorded version)' if v is None else f'v{v}'}")
            out[i] = f"{out[i]}  # {'; '.join(notes or [f'key {c.key()}'])}"
    return out


def _dataset_steps(res: Results, key: str) -> int | None:
    """The transitions of a configuration's dataset, where its runs recorded them."""
    for run_id, c in res.configs.items():
        n = res.meta[run_id].get("dataset_steps") if c.key() == key else None
        if isinstance(n, int) and not isinstance(n, bool):
            return n
    return None


def aggregate_blocks(done: pd.DataFrame, reps: int = BOOTSTRAP_REPS) -> list[Block]:
    sets = {lab: frozenset(g.dataset) for lab, g in done.groupby("label", sort=True)}
    candidates = sorted(set(sets.values()), key=lambda s: (-len(s), sorted(s)))
    chosen: list[tuple[frozenset, list[str]]] = []
    for ds in candidates:
        members = sorted(lab for lab, have in sets.items() if ds <= have)
        if any(set(members) <= set(m) for _, m in chosen):
            continue  # a block over more datasets already compares these labels
        chosen.append((ds, members))
    blocks = []
    for ds, members in chosen:
        datasets = sorted(ds)
        rows = []
        for lab in members:
            mine = done[(done.label == lab) & done.dataset.isin(datasets)]
            row = {"label": lab, "runs": len(mine)}
            for name in ("iqm", "mean", "median", "optimality_gap"):
                est = _interval(per_task(mine, datasets), AGGREGATES[name], reps)
                row |= {name + k: v for k, v in est.items()}
            rows.append(row)
        pairs = []
        for x, y in itertools.permutations(members, 2):
            px = per_task(done[done.label == x], datasets)
            py = per_task(done[done.label == y], datasets)
            p, lo, hi = pair_interval_estimate(px, py, probability_of_improvement, reps)
            pairs.append({"x": x, "y": y, "p": p, "p_lo": lo, "p_hi": hi})
        # every label is in some block (its own datasets are a candidate), so what a block leaves
        # out is its members' other datasets
        left = sorted(f"{lab} on {d}" for lab in members for d in sorted(sets[lab] - ds))
        blocks.append(
            Block(
                datasets,
                pd.DataFrame(rows),
                pd.DataFrame(pairs, columns=["x", "y", "p", "p_lo", "p_hi"]),
                left,
            )
        )
    return blocks


# ---------------------------------------------------------------------- rendering
def fmt_ci(point: float, lo: float, hi: float, digits: int = 1) -> str:
    if point is None or np.isnan(point):
        return "-"
    if lo is None or np.isnan(lo):
        return f"{point:.{digits}f}"
    return f"{point:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _ci(frame: pd.DataFrame, name: str, digits: int = 1) -> list[str]:
    return [
        fmt_ci(r[0], r[1], r[2], digits=digits)
        for r in frame[[name, f"{name}_lo", f"{name}_hi"]].to_numpy(dtype=float)
    ]


def protocol_line(board: Board, spec: ScoreSpec, reps: int = BOOTSTRAP_REPS) -> str:
    table = board.rows
    episodes = sorted({int(e) for e in table.episodes}) if len(table) else []
    eps = (
        sorted({e for e in table.eval_eps if e is not None and not pd.isna(e)})
        if len(table)
        else []
    )
    parts = [
        f"score = {spec.describe()}",
        "normalized 0-100 (0 = ref_min, 100 = ref_max)",
        f"{'/'.join(map(str, episodes))} episodes per scored evaluation",
    ]
    if spec.kind == "final" and len(table):
        curve = table[table.scored.str.contains(SCORED_CURVE)]
        if len(curve):
            parts.append(
                f"{len(curve)} of {len(table)} rows without a final evaluation, "
                "scored by their learning curve"
            )
    if eps:
        parts.append(f"eval_eps {'/'.join(map(str, eps))} (Discrete BCQ)")
    parts.append(
        f"{CONFIDENCE:.0%} CIs: stratified bootstrap over seeds within each dataset, "
        f"{reps} resamples, percentile"
    )
    parts.append("one row per configuration (run key); one run per configuration and seed")
    return "; ".join(parts)


def protocol_frame(board: Board) -> pd.DataFrame:
    """Per dataset, the protocol behind its rows: budgets, episodes, references and their source
    (from the counted runs' configs; a dataset whose configurations differ lists each value)."""
    res, done = board.results, board.results.counted
    rows = []
    for dataset, g in done.groupby("dataset", sort=True):
        cfgs = [res.configs[r] for r in g.run_id]
        metas = [res.meta[r] for r in g.run_id]
        values = functools.partial(_distinct, cfgs)
        meta = functools.partial(_distinct, metas, lambda m, k: m.get(k, "-"))
        rows.append(
            {
                "dataset": dataset,
                "steps": values(getattr, "steps", "{:,}".format),
                "eval every": values(getattr, "eval_every", "{:,}".format),
                "eval episodes": values(getattr, "eval_episodes"),
                "final episodes": values(getattr, "final_episodes"),
                "batch": values(getattr, "batch_size"),
                "held out": values(getattr, "holdout", "{:g}".format),
                "ref min": meta("ref_min"),
                "ref max": meta("ref_max"),
                "ref source": meta("ref_source"),
            }
        )
    frame = pd.DataFrame(rows)
    if (frame.get("held out", pd.Series(dtype=str)) == "0").all():  # no run held data out
        frame = frame.drop(columns="held out", errors="ignore")
    return frame


def time_frame(board: Board) -> pd.DataFrame:
    """Where the wall time of each configuration x dataset went, from the runs that record their
    evaluations' seconds (eval_time_s): the median over its runs of the wall time (start to
    final evaluation, of the job that trained the run's seeds together), the share spent
    evaluating, milliseconds per update (of that job), seconds per periodic evaluation and of
    the final one. Configurations with a run written before evaluation times were recorded are
    left out; none left: an empty frame."""
    res, done = board.results, board.results.counted
    ids = set(done.run_id)
    evals = res.evals[res.evals.run_id.isin(ids)]
    finals = res.finals[res.finals.run_id.isin(ids)] if len(res.finals) else res.evals.iloc[:0]
    timed = evals.groupby("run_id").eval_time_s.agg(lambda v: bool(v.notna().all()))
    untimed = set(timed.index[~timed]) | set(finals.run_id[finals.eval_time_s.isna()])
    periodic = evals.groupby("run_id").agg(
        wall=("wall_time_s", "max"), spent=("eval_time_s", "sum"), n=("eval_time_s", "size")
    )
    final = finals.set_index("run_id")
    labels = board.rows.set_index(["key", "dataset"]).label.to_dict()
    out = []
    for (key, dataset), g in done.groupby(["key", "dataset"], sort=True):
        if untimed & set(g.run_id) or not set(g.run_id) <= set(periodic.index):
            continue
        runs = periodic.loc[g.run_id]
        final_s = final.eval_time_s.reindex(g.run_id).fillna(0.0)
        wall = np.fmax(runs.wall, final.wall_time_s.reindex(g.run_id))
        spent = runs.spent + final_s
        steps = res.configs[g.run_id.iloc[0]].steps
        out.append(
            {
                "algo": labels.get((key, dataset), key),
                "dataset": dataset,
                "runs": len(runs),
                "wall": fmt_duration(wall.median()),
                "evaluating": f"{100 * (spent / wall).median():.0f}%",
                "ms per update": f"{1000 * ((wall - spent).clip(lower=0) / steps).median():.1f}",
                "s per evaluation": f"{(runs.spent / runs.n).median():.1f}",
                "final evaluation": fmt_duration(final_s.median()) if final_s.any() else "-",
            }
        )
    return pd.DataFrame(out)


def fmt_duration(seconds: float) -> str:
    """'42 s', '3 min 05 s', '2 h 07 min'; '-' for NaN."""
    if np.isnan(seconds):
        return "-"
    minutes, s = divmod(int(round(seconds)), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min" if hours else (f"{m} min {s:02d} s" if m else f"{s} s")


def _distinct(items, get, name, fmt=str) -> str:
    """The distinct values of one field over items, formatted and joined with '/'."""
    return "/".join(fmt(v) for v in sorted({get(item, name) for item in items}, key=str))


def suites_line(board: Board) -> str | None:
    """The suite(s) that started the counted runs, as they recorded it; None when none did."""
    res = board.results
    tags: dict[str, int] = {}
    for run_id in res.counted.run_id:
        tag = res.meta[run_id].get("suite")
        name = (
            (
                f"suite {tag.get('name')} v{tag.get('version')} (sha256 "
                f"{str(tag.get('sha256'))[:12]})"
            )
            if isinstance(tag, dict)
            else "no suite"
        )
        tags[name] = tags.get(name, 0) + 1
    if set(tags) <= {"no suite"}:
        return None
    return "runs from " + ", ".join(f"{k}: {v}" for k, v in sorted(tags.items()))


def display_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The per-dataset table with CI strings, in the column order users read."""
    return pd.DataFrame(
        {
            "algo": table.label,
            "dataset": table.dataset,
            "key": table.key,
            "seeds": table.seeds,
            "mean": _ci(table, "mean"),
            "median": _ci(table, "median"),
            "IQM": _ci(table, "iqm"),
            "return": table.return_mean.map(lambda v: f"{v:.1f}"),
            "behavior": table.behavior_score.map(lambda v: "-" if pd.isna(v) else f"{v:.1f}"),
            "step": table.step,
            "command": table.command,
        }
    )


def display_block(block: Block) -> pd.DataFrame:
    t = block.table
    return pd.DataFrame(
        {
            "algo": t.label,
            "runs": t.runs,
            "IQM": _ci(t, "iqm"),
            "mean": _ci(t, "mean"),
            "median": _ci(t, "median"),
            "optimality gap": _ci(t, "optimality_gap"),
        }
    )


def display_improvement(block: Block) -> pd.DataFrame:
    t = block.improvement
    return pd.DataFrame(
        {
            "P(X > Y)": [f"P({x} > {y})" for x, y in zip(t.x, t.y, strict=True)],
            "estimate [95% CI]": _ci(t, "p", digits=2),
        }
    )


def block_title(block: Block) -> str:
    n = len(block.datasets)
    return (
        f"aggregate over the {n} dataset{'s' * (n != 1)} these share: {', '.join(block.datasets)}"
    )


def csv_frame(board: Board, spec: ScoreSpec) -> pd.DataFrame:
    return board.rows.assign(score=spec.kind, last_k=spec.last_k)


def to_html(board: Board, protocol: str) -> str:
    """A standalone page: every table, the protocol, no external assets."""
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "th{background:#f0f0f0}td:first-child,td:nth-child(2){text-align:left}"
        "code,td:last-child{font-family:monospace;font-size:12px;text-align:left}"
    )
    n_prog = len(board.results.in_progress)
    note = f"<p>{n_prog} run(s) still in progress are not counted.</p>" if n_prog else ""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>bench leaderboard</title>",
        f"<style>{style}</style></head><body><h1>bench leaderboard</h1><p>{html.escape(protocol)}</p>{note}",
        f"<h2>Per dataset</h2>{display_frame(board.rows).to_html(index=False, escape=True)}",
    ]
    for b in board.blocks:
        parts.append(f"<h2>{block_title(b)}</h2>{display_block(b).to_html(index=False)}")
        if len(b.improvement):
            parts.append(display_improvement(b).to_html(index=False))
        if b.left_out:
            parts.append(f"<p>left out: {', '.join(b.left_out)}</p>")
    parts.append(f"<h2>Protocol per dataset</h2>{protocol_frame(board).to_html(index=False)}")
    suites = suites_line(board)
    if suites:
        parts.append(f"<p>{html.escape(suites)}</p>")
    parts.append("</body></html>\n")
    return "".join(parts)
