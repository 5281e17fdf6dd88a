"""Leaderboards from the results tables: per-run scores, then aggregate metrics with 95%
stratified bootstrap confidence intervals (Agarwal et al., "Deep Reinforcement Learning at the
Edge of the Statistical Precipice", NeurIPS 2021; the rliable method).

Metric functions are pure and take arrays whose shapes are in their names: `scores_r` holds
one score per run, `scores_per_task` a list with one `scores_r` per task (dataset). Scores are
normalized scores on the 0-100 scale.

Stratified bootstrap: each resample draws runs with replacement *within each task*, so every
task keeps its number of runs, and the statistic is computed over the pooled resampled runs.
scipy.stats.bootstrap does exactly this when each task is passed as its own sample (samples
are resampled independently); the interval is the percentile interval, as rliable's.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bench.errors import BenchError
from bench.results import is_complete, read_configs, read_eval, runs_dir

CONFIDENCE = 0.95
BOOTSTRAP_REPS = 2000
#: Optimality gap threshold: the reference max (expert or human) on the 0-100 scale.
GAP_THRESHOLD = 100.0


# ---------------------------------------------------------------------- metrics
def mean(scores_r: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(scores_r, axis=axis)


def median(scores_r: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(scores_r, axis=axis)


def iqm(scores_r: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% of the scores (25% trimmed each side)."""
    return stats.trim_mean(scores_r, 0.25, axis=axis)


def optimality_gap(scores_r: np.ndarray, axis: int = -1, threshold: float = GAP_THRESHOLD):
    """How far below the threshold runs fall on average: mean(max(threshold - score, 0))."""
    return np.mean(np.maximum(threshold - np.asarray(scores_r), 0.0), axis=axis)


METRICS: dict[str, Callable[..., np.ndarray]] = {
    "mean": mean,
    "median": median,
    "iqm": iqm,
    "optimality_gap": optimality_gap,
}


def stratified_bootstrap(
    samples: list[np.ndarray],
    metric: Callable[..., np.ndarray],
    reps: int = BOOTSTRAP_REPS,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point, low, high) of metric(pooled runs, axis) and its stratified bootstrap CI.

    metric may return a scalar or a vector (e.g. a performance profile) per pool; bounds come
    back with the point's shape. A degenerate distribution (all resamples equal) gives scipy
    NaN bounds: they are the point itself. Each sample needs at least one run, one of them two.
    """
    point = np.asarray(metric(np.concatenate(samples)))

    def pooled(*resampled, axis=-1):
        out = np.asarray(metric(np.concatenate(resampled, axis=axis), axis=axis))
        return np.moveaxis(out, -1, 0) if point.ndim else out  # scipy: components first

    with np.errstate(invalid="ignore"):
        res = stats.bootstrap(
            samples, pooled, n_resamples=reps, confidence_level=confidence,
            method="percentile", vectorized=True, random_state=np.random.default_rng(seed),
        )  # fmt: skip
    lo, hi = (np.where(np.isnan(b), point, b) for b in res.confidence_interval)
    return point, lo, hi


def interval_estimate(
    scores_per_task: list[np.ndarray],
    metric: Callable[..., np.ndarray],
    reps: int = BOOTSTRAP_REPS,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(point, low, high): the metric over all runs pooled, and its stratified bootstrap CI.

    With fewer than 2 runs in every task there is nothing to resample: the CI is NaN."""
    samples = [np.asarray(s, dtype=np.float64) for s in scores_per_task if len(s)]
    if not samples:
        return (float("nan"),) * 3
    if max(len(s) for s in samples) < 2:
        return float(metric(np.concatenate(samples))), float("nan"), float("nan")
    point, lo, hi = stratified_bootstrap(samples, metric, reps, confidence, seed)
    return float(point), float(lo), float(hi)


# ---------------------------------------------------------------------- runs -> scores
@dataclass(frozen=True)
class ScoreSpec:
    """Which evaluations make a run's score: the mean of the last k (final) or the max (best)."""

    kind: str = "final"
    last_k: int = 3

    def __post_init__(self):
        if self.kind not in ("final", "best"):
            raise BenchError(f"unknown score '{self.kind}'; choose final or best")
        if self.last_k < 1:
            raise BenchError(f"--last-k must be >= 1, got {self.last_k}")

    def describe(self) -> str:
        if self.kind == "best":
            return "best: the max over all evaluations of a run (optimistic: selects on the test)"
        return f"final: the mean of each run's last {self.last_k} evaluation(s)"


def run_command(cfg: dict, seeds: str | None = None) -> str:
    """The command that reproduces a run: `bench run ... --seed S`, or with seeds (e.g. "0-4"
    or "0,2") the `bench sweep ... --seeds SEEDS` that reproduces a group of seeds."""
    sweep = seeds is not None
    parts = [
        "bench",
        "sweep" if sweep else "run",
        "--algo",
        cfg["algo"],
        "--dataset",
        cfg["dataset"],
    ]
    if cfg.get("env"):
        parts += ["--env", cfg["env"]]
    parts += ["--seeds", seeds] if sweep else ["--seed", str(cfg["seed"])]
    parts += ["--steps", str(cfg["steps"]), "--eval-every", str(cfg["eval_every"])]
    parts += ["--eval-episodes", str(cfg["eval_episodes"]), "--batch-size", str(cfg["batch_size"])]
    if cfg.get("preset"):
        parts += ["--preset", cfg["preset"]]
    for k, v in sorted((cfg.get("overrides") or {}).items()):
        parts += ["--set", f"{k}={v}"]
    return shlex.join(parts)


def run_scores(results_dir: Path, spec: ScoreSpec) -> pd.DataFrame:
    """One row per run: algo, dataset, seed, score, return_mean, step, complete, protocol."""
    return scores_of(read_eval(results_dir), read_configs(results_dir), spec)


def scores_of(evals: pd.DataFrame, configs: dict[str, dict], spec: ScoreSpec) -> pd.DataFrame:
    """run_scores over tables already read: the eval rows and run_id -> config.json.

    A run is complete when its last evaluation is at its configured number of steps; runs
    still in progress (or killed and not resumed) are kept with complete=False."""
    rows = []
    for run_id, ev in evals.groupby("run_id", sort=True):
        ev = ev.sort_values("step")
        cfg = configs.get(run_id, {})
        if spec.kind == "best":
            best = ev.loc[ev.normalized_score.idxmax()]
            score, ret = float(best.normalized_score), float(best.return_mean)
        else:
            tail = ev.tail(spec.last_k)
            score, ret = float(tail.normalized_score.mean()), float(tail.return_mean.mean())
        last = ev.iloc[-1]
        rows.append({
            "run_id": run_id, "algo": last.algo, "dataset": last.dataset, "seed": int(last.seed),
            "score": score, "return_mean": ret, "step": int(last.step),
            "complete": is_complete(cfg, int(last.step)),
            "episodes": int(last.episodes),
            "eval_eps": (cfg.get("config") or {}).get("eval_eps"),
            "behavior_score": cfg.get("behavior_score"),
        })  # fmt: skip
    return pd.DataFrame(
        rows,
        columns=["run_id", "algo", "dataset", "seed", "score", "return_mean", "step", "complete",
                 "episodes", "eval_eps", "behavior_score"],
    )  # fmt: skip


def seed_list(seeds: list[int]) -> str:
    """[0, 1, 2] -> "0-2"; [0, 2] -> "0,2" (the --seeds syntax of bench sweep)."""
    seeds = sorted(set(seeds))
    if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def _reproduce(runs: pd.DataFrame, configs: dict[str, dict]) -> str:
    cfg = configs.get(runs.run_id.iloc[0])
    if not cfg:
        return ""
    return run_command(cfg) if len(runs) == 1 else run_command(cfg, seed_list(runs.seed.tolist()))


# ---------------------------------------------------------------------- the table
def leaderboard(
    results_dir: Path, spec: ScoreSpec = ScoreSpec(), reps: int = BOOTSTRAP_REPS
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(rows, aggregate, in_progress).

    rows: one per algo x dataset over its complete runs: seeds, mean / median / IQM of the
    score with 95% CIs, raw return mean, step, behavior score, the reproducing command.
    aggregate: one per algorithm across datasets: IQM and optimality gap with stratified CIs.
    in_progress: the runs left out because they have not reached their step count."""
    configs = read_configs(results_dir)
    runs = scores_of(read_eval(results_dir), configs, spec)
    if runs.empty:
        raise BenchError(f"no runs with evaluations under {runs_dir(results_dir)}")
    done, in_progress = runs[runs.complete], runs[~runs.complete]
    rows = []
    for (algo, dataset), g in done.groupby(["algo", "dataset"], sort=True):
        row = {"algo": algo, "dataset": dataset, "seeds": len(g)}
        for name in ("mean", "median", "iqm"):
            point, lo, hi = interval_estimate([g.score.to_numpy()], METRICS[name], reps)
            row |= {name: point, f"{name}_lo": lo, f"{name}_hi": hi}
        row |= {
            "return_mean": float(g.return_mean.mean()),
            "step": int(g.step.max()),
            "behavior_score": g.behavior_score.dropna().mean()
            if g.behavior_score.notna().any() else float("nan"),
            "episodes": int(g.episodes.iloc[0]),
            "eval_eps": g.eval_eps.iloc[0],
            "command": _reproduce(g, configs),
        }  # fmt: skip
        rows.append(row)
    table = pd.DataFrame(rows)
    agg = []
    for algo, g in done.groupby("algo", sort=True):
        per_task = [t.score.to_numpy() for _, t in g.groupby("dataset", sort=True)]
        row = {"algo": algo, "datasets": len(per_task), "runs": len(g)}
        for name in ("iqm", "optimality_gap"):
            point, lo, hi = interval_estimate(per_task, METRICS[name], reps)
            row |= {name: point, f"{name}_lo": lo, f"{name}_hi": hi}
        agg.append(row)
    return table, pd.DataFrame(agg), in_progress.reset_index(drop=True)


# ---------------------------------------------------------------------- rendering
def fmt_ci(point: float, lo: float, hi: float) -> str:
    if np.isnan(point):
        return "-"
    if np.isnan(lo):
        return f"{point:.1f}"
    return f"{point:.1f} [{lo:.1f}, {hi:.1f}]"


def protocol_line(table: pd.DataFrame, spec: ScoreSpec) -> str:
    episodes = sorted({int(e) for e in table.episodes}) if len(table) else []
    eps = sorted({e for e in table.eval_eps if e is not None and not pd.isna(e)})
    parts = [
        f"score = {spec.describe()}",
        "normalized 0-100 (0 = ref_min, 100 = ref_max)",
        f"evaluation: {'/'.join(map(str, episodes))} episodes per evaluation",
    ]
    if eps:
        parts.append(f"eval_eps {'/'.join(map(str, eps))} (Discrete BCQ)")
    parts.append(f"95% CIs: stratified bootstrap, {BOOTSTRAP_REPS} resamples, percentile")
    return "; ".join(parts)


def display_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The per-dataset table with CI strings, in the column order users read."""
    return pd.DataFrame({
        "algo": table.algo, "dataset": table.dataset, "seeds": table.seeds,
        "mean": [fmt_ci(*r) for r in table[["mean", "mean_lo", "mean_hi"]].to_numpy()],
        "median": [fmt_ci(*r) for r in table[["median", "median_lo", "median_hi"]].to_numpy()],
        "IQM": [fmt_ci(*r) for r in table[["iqm", "iqm_lo", "iqm_hi"]].to_numpy()],
        "return": table.return_mean.map(lambda v: f"{v:.1f}"),
        "behavior": table.behavior_score.map(lambda v: "-" if pd.isna(v) else f"{v:.1f}"),
        "step": table.step, "command": table.command,
    })  # fmt: skip


def display_aggregate(agg: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "algo": agg.algo, "datasets": agg.datasets, "runs": agg.runs,
        "IQM": [fmt_ci(*r) for r in agg[["iqm", "iqm_lo", "iqm_hi"]].to_numpy()],
        "optimality gap": [
            fmt_ci(*r) for r in agg[["optimality_gap", "optimality_gap_lo", "optimality_gap_hi"]]
            .to_numpy()
        ],
    })  # fmt: skip


def to_html(table: pd.DataFrame, agg: pd.DataFrame, protocol: str, in_progress: int) -> str:
    """A standalone page: both tables, the protocol, no external assets."""
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "th{background:#f0f0f0}td:first-child,td:nth-child(2){text-align:left}"
        "code,td:last-child{font-family:monospace;font-size:12px;text-align:left}"
    )
    note = f"<p>{in_progress} run(s) still in progress are not counted.</p>" if in_progress else ""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>bench leaderboard</title>"
        f"<style>{style}</style></head><body><h1>bench leaderboard</h1><p>{protocol}</p>{note}"
        f"<h2>Per dataset</h2>{display_frame(table).to_html(index=False, escape=True)}"
        f"<h2>Aggregate across datasets</h2>{display_aggregate(agg).to_html(index=False)}"
        "</body></html>\n"
    )
