"""Stratified bootstrap confidence intervals (Agarwal et al., "Deep Reinforcement Learning at the
Edge of the Statistical Precipice", NeurIPS 2021; the rliable method).

Stratified bootstrap (rliable's StratifiedBootstrap, task_bootstrap=False): each resample draws
every task's runs with replacement *within that task*, so each task keeps its number of runs
(a task with one run keeps that run in every resample); tasks themselves are never resampled.
The statistic sees the resampled tasks as a list, as the aggregates of bench.stats.metrics
take them. For a pair of algorithms (probability of improvement) X and Y are resampled
independently, each stratified per task (rliable's StratifiedIndependentBootstrap).

The interval is the percentile interval of the `reps` resampled statistics, numpy's default
linear interpolation at (1 - confidence) / 2 and 1 - (1 - confidence) / 2, as rliable's (arch's
`conf_int(method="percentile")`). The point estimate is the statistic of the original scores.

All resamples are drawn and evaluated at once (no loop over resamples): task t's indices are
one rng.integers(0, n_t, size=(reps, n_t)) draw, the statistic gets [reps, n_t] arrays.
Memory, about 32 bytes x reps x (sum_t n_t) for the aggregates: the resampled scores (8 B
each), one task's int64 indices at a time, and the statistic's pooled copy and trim_mean's
partitioned copy; measured peaks: 150 MB for 50,000 reps x 1 task x 100 runs, 760 MB for
50,000 x 5 tasks x 100 runs (at the leaderboard's 2,000 reps, 25 times less). For
probability_of_improvement add two bool temporaries of reps x n_x_t x n_y_t bytes per task
(2,000 x 100 x 100: 40 MB; at 50,000 reps that is 1 GB, so keep reps low for many runs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_REPS = 2000

#: statistic(list of [..., n_t] arrays) -> [...] or [..., k]
Statistic = Callable[[list[np.ndarray]], np.ndarray]
#: statistic2(X as a list of [..., n_x_t] arrays, Y as a list of [..., n_y_t]) -> [...]
Statistic2 = Callable[[list[np.ndarray], list[np.ndarray]], np.ndarray]


def percentile_interval(
    values_b: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi): the (1-confidence)/2 and 1-(1-confidence)/2 percentiles over the first axis
    (resamples) of values_b [reps, ...], linearly interpolated (np.percentile's default)."""
    alpha = (1.0 - confidence) / 2
    lo, hi = np.percentile(values_b, [100.0 * alpha, 100.0 * (1.0 - alpha)], axis=0)
    return lo, hi


def _as_tasks(scores_per_task: Sequence[np.ndarray]) -> list[np.ndarray]:
    tasks = [np.asarray(s, dtype=np.float64) for s in scores_per_task]
    for s in tasks:
        if s.ndim != 1:
            raise ValueError(f"each task's scores must be 1-d [runs], got shape {s.shape}")
    return tasks


def _resample_per_task(
    tasks: list[np.ndarray], reps: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """[reps, n_t] per task: n_t runs drawn with replacement from that task's own runs."""
    return [s[rng.integers(0, len(s), size=(reps, len(s)))] for s in tasks]


def stratified_bootstrap(
    scores_per_task: Sequence[np.ndarray],
    statistic: Statistic,
    reps: int = BOOTSTRAP_REPS,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point, lo, hi) of statistic over the tasks and its stratified bootstrap percentile CI.

    statistic(list of [n_t] arrays) is the point, a scalar or a vector [k] (e.g. a performance
    profile over k thresholds); statistic(list of [reps, n_t] arrays) must give [reps] or
    [reps, k]. lo and hi have the point's shape. Every task needs at least one run."""
    tasks = _as_tasks(scores_per_task)
    if not tasks or min(len(s) for s in tasks) == 0:
        raise ValueError("stratified_bootstrap needs at least one task and one run per task")
    point = np.asarray(statistic(tasks))
    rng = np.random.default_rng(seed)
    values = np.asarray(statistic(_resample_per_task(tasks, reps, rng)))
    lo, hi = percentile_interval(values, confidence)
    return point, lo, hi


def interval_estimate(
    scores_per_task: Sequence[np.ndarray],
    statistic: Statistic,
    reps: int = BOOTSTRAP_REPS,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(point, lo, hi) floats of a scalar statistic and its stratified bootstrap CI.

    Tasks without runs are left out; none left: all NaN. When every task has fewer than 2
    runs there is nothing to resample: the CI is (NaN, NaN), the point is still computed."""
    tasks = [s for s in _as_tasks(scores_per_task) if len(s)]
    if not tasks:
        return (float("nan"),) * 3
    if max(len(s) for s in tasks) < 2:
        return float(statistic(tasks)), float("nan"), float("nan")
    point, lo, hi = stratified_bootstrap(tasks, statistic, reps, confidence, seed)
    return float(point), float(lo), float(hi)


def pair_interval_estimate(
    x_per_task: Sequence[np.ndarray],
    y_per_task: Sequence[np.ndarray],
    statistic2: Statistic2,
    reps: int = BOOTSTRAP_REPS,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(point, lo, hi) floats of statistic2(X, Y), e.g. probability_of_improvement, and its CI
    with X and Y resampled independently, each stratified per task (X's draws, then Y's, from
    one generator). Task t of X is paired with task t of Y; run counts may differ.

    Tasks where X or Y has no runs are left out; none left: all NaN. When no task of X or Y
    has 2 runs the CI is (NaN, NaN), the point is still computed."""
    xs, ys = _as_tasks(x_per_task), _as_tasks(y_per_task)
    if len(xs) != len(ys):
        raise ValueError(f"X has {len(xs)} tasks, Y has {len(ys)}")
    kept = [(x, y) for x, y in zip(xs, ys, strict=True) if len(x) and len(y)]
    if not kept:
        return (float("nan"),) * 3
    xs, ys = [x for x, _ in kept], [y for _, y in kept]
    point = float(statistic2(xs, ys))
    if max(len(s) for s in xs + ys) < 2:
        return point, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    x_b, y_b = _resample_per_task(xs, reps, rng), _resample_per_task(ys, reps, rng)
    lo, hi = percentile_interval(np.asarray(statistic2(x_b, y_b)), confidence)
    return point, float(lo), float(hi)
