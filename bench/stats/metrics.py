"""Aggregate metrics over runs and tasks (Agarwal et al., "Deep Reinforcement Learning at the
Edge of the Statistical Precipice", NeurIPS 2021; rliable's definitions): pure functions of
arrays whose shapes are in their names (scores on the 0-100 normalized scale).

- `*_r(scores_r)`: a statistic of ONE task's runs, over the last axis (`scores_r`: [..., runs];
  leading batch dims, e.g. bootstrap resamples, are kept). The per-dataset leaderboard rows.
- `aggregate_*(scores_per_task)`: across tasks, as rliable's `metrics.aggregate_*`. Tasks come
  as a list, one [..., n_t] array each, so tasks may have different numbers of runs n_t; the
  leading dims must be the same for every task and come back as the result's shape. With equal
  run counts these equal rliable's values on the runs x tasks matrix (rliable's layout is
  [runs, tasks]; ours is the list of its columns).
- `probability_of_improvement(x_per_task, y_per_task)`: P(X > Y), rliable's definition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

#: Optimality gap threshold gamma: the reference max (expert or human) on the 0-100 scale.
GAP_THRESHOLD = 100.0


# ------------------------------------------------------------------ one task: over its runs
def mean_r(scores_r: np.ndarray) -> np.ndarray:
    return np.mean(scores_r, axis=-1)


def median_r(scores_r: np.ndarray) -> np.ndarray:
    return np.median(scores_r, axis=-1)


def iqm_r(scores_r: np.ndarray) -> np.ndarray:
    """Interquartile mean: scipy's trim_mean(0.25), i.e. floor(n/4) scores dropped at each
    end and the plain mean of the rest (8 runs: the mean of the middle 4)."""
    return stats.trim_mean(scores_r, 0.25, axis=-1)


# ------------------------------------------------------------------ across tasks
def _pooled_r(scores_per_task: Sequence[np.ndarray]) -> np.ndarray:
    """All runs of all tasks side by side: [..., sum n_t]."""
    return np.concatenate([np.asarray(s, dtype=np.float64) for s in scores_per_task], axis=-1)


def _task_means_t(scores_per_task: Sequence[np.ndarray]) -> np.ndarray:
    """Per-task mean over runs: [..., tasks]."""
    return np.stack([np.mean(s, axis=-1) for s in scores_per_task], axis=-1)


def aggregate_iqm(scores_per_task: Sequence[np.ndarray]) -> np.ndarray:
    """IQM of all runs of all tasks pooled (rliable: trim_mean(scores, 0.25, axis=None))."""
    return iqm_r(_pooled_r(scores_per_task))


def aggregate_mean(scores_per_task: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over tasks of the per-task mean scores."""
    return np.mean(_task_means_t(scores_per_task), axis=-1)


def aggregate_median(scores_per_task: Sequence[np.ndarray]) -> np.ndarray:
    """Median over tasks of the per-task mean scores (not the median of the pooled runs)."""
    return np.median(_task_means_t(scores_per_task), axis=-1)


def aggregate_optimality_gap(
    scores_per_task: Sequence[np.ndarray], gamma: float = GAP_THRESHOLD
) -> np.ndarray:
    """How far below gamma the pooled runs fall on average: gamma - mean(min(score, gamma)).
    Scores above gamma count as gamma; scores below 0 are not clipped (as rliable)."""
    return gamma - np.mean(np.minimum(_pooled_r(scores_per_task), gamma), axis=-1)


AGGREGATES: dict[str, Callable[[Sequence[np.ndarray]], np.ndarray]] = {
    "iqm": aggregate_iqm,
    "mean": aggregate_mean,
    "median": aggregate_median,
    "optimality_gap": aggregate_optimality_gap,
}


# ------------------------------------------------------------------ pairs of algorithms
def probability_of_improvement(
    x_per_task: Sequence[np.ndarray], y_per_task: Sequence[np.ndarray]
) -> np.ndarray:
    """P(X > Y): the mean over tasks of the Mann-Whitney U statistic / (n_x * n_y), i.e. per
    task the fraction of (x run, y run) pairs with x > y, ties counting one half.

    x_per_task[t]: [..., n_x_t], y_per_task[t]: [..., n_y_t] (run counts may differ between X
    and Y and between tasks; leading dims broadcast). P(X > Y) + P(Y > X) = 1. Memory: two
    [..., n_x_t, n_y_t] boolean temporaries per task."""
    if len(x_per_task) != len(y_per_task):
        raise ValueError(f"X has {len(x_per_task)} tasks, Y has {len(y_per_task)}")
    per_task = []
    for x_r, y_r in zip(x_per_task, y_per_task, strict=True):
        x_rr, y_rr = np.asarray(x_r)[..., :, None], np.asarray(y_r)[..., None, :]
        wins = np.count_nonzero(x_rr > y_rr, axis=(-2, -1))
        ties = np.count_nonzero(x_rr == y_rr, axis=(-2, -1))
        per_task.append((wins + 0.5 * ties) / (x_rr.shape[-2] * y_rr.shape[-1]))
    return np.mean(np.stack(per_task, axis=-1), axis=-1)
