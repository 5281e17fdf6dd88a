"""Aggregate metrics and stratified bootstrap CIs on hand-made score matrices."""

import numpy as np
import pytest

from bench.leaderboard import (
    interval_estimate,
    iqm,
    mean,
    median,
    optimality_gap,
    seed_list,
)
from bench.plots import profile_curve


def test_iqm_of_a_known_vector_drops_the_outer_quarters():
    # 8 scores: the 2 lowest and 2 highest are trimmed, the IQM is mean(2, 3, 4, 5)
    assert iqm(np.array([0, 1, 2, 3, 4, 5, 6, 100.0])) == pytest.approx(3.5)
    # robust to one outlier where the mean is not
    assert iqm(np.array([10, 10, 10, 10, 1000.0])) == pytest.approx(10.0)
    assert mean(np.array([10, 10, 10, 10, 1000.0])) == pytest.approx(208.0)


def test_iqm_of_a_runs_by_tasks_matrix_pools_all_runs():
    scores_rt = np.array([[0.0, 40.0], [10.0, 50.0], [20.0, 60.0], [30.0, 70.0]])
    # pooled: 0 10 20 30 40 50 60 70 -> middle half 20 30 40 50
    assert iqm(scores_rt.ravel()) == pytest.approx(35.0)
    point, lo, hi = interval_estimate(list(scores_rt.T), iqm, reps=500)
    assert point == pytest.approx(35.0) and lo <= point <= hi


def test_optimality_gap_counts_only_the_shortfall_below_100():
    assert optimality_gap(np.array([50.0, 100.0, 150.0, 80.0])) == pytest.approx((50 + 20) / 4)
    assert optimality_gap(np.array([120.0, 200.0])) == 0.0


def test_median():
    assert median(np.array([3.0, 1.0, 2.0, 100.0])) == pytest.approx(2.5)


@pytest.mark.parametrize("metric", [mean, median, iqm, optimality_gap])
def test_ci_contains_the_point_and_narrows_with_more_runs(metric):
    rng = np.random.default_rng(0)
    few = [rng.normal(50, 10, 5), rng.normal(70, 10, 5)]
    many = [rng.normal(50, 10, 100), rng.normal(70, 10, 100)]
    p1, lo1, hi1 = interval_estimate(few, metric, reps=1000)
    p2, lo2, hi2 = interval_estimate(many, metric, reps=1000)
    assert lo1 <= p1 <= hi1 and lo2 <= p2 <= hi2
    assert hi2 - lo2 < hi1 - lo1


def test_stratified_bootstrap_keeps_each_tasks_runs():
    """Task A always scores 0, task B always 100: a stratified resample always holds 3 of
    each, so the pooled mean is exactly 50 in every resample (an unstratified one would vary)."""
    point, lo, hi = interval_estimate([np.zeros(3), np.full(3, 100.0)], mean, reps=500)
    assert (point, lo, hi) == (50.0, 50.0, 50.0)


def test_ci_is_undefined_for_single_runs_and_reproducible_otherwise():
    point, lo, hi = interval_estimate([np.array([42.0])], iqm)
    assert point == 42.0 and np.isnan(lo) and np.isnan(hi)
    a = interval_estimate([np.array([1.0, 5.0, 9.0, 20.0])], iqm, reps=300, seed=3)
    b = interval_estimate([np.array([1.0, 5.0, 9.0, 20.0])], iqm, reps=300, seed=3)
    assert a == b


def test_performance_profile_is_the_fraction_above_tau():
    taus = np.array([0.0, 25.0, 50.0, 100.0])
    curve = profile_curve(np.array([10.0, 30.0, 60.0, 90.0]), taus)
    assert curve.tolist() == [1.0, 0.75, 0.5, 0.0]


def test_seed_list_syntax():
    assert seed_list([2, 0, 1]) == "0-2"
    assert seed_list([0, 2]) == "0,2"
    assert seed_list([4]) == "4"
