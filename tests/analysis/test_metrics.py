"""Aggregate metrics and stratified bootstrap CIs on hand-made score matrices."""

import numpy as np
import pytest
from scipy import stats

from bench.analysis.scores import seed_list
from bench.stats.bootstrap import (
    interval_estimate,
    pair_interval_estimate,
    stratified_bootstrap,
)
from bench.stats.metrics import (
    AGGREGATES,
    aggregate_iqm,
    aggregate_mean,
    aggregate_median,
    aggregate_optimality_gap,
    iqm_r,
    mean_r,
    median_r,
    probability_of_improvement,
)


def test_iqm_of_a_known_vector_drops_the_outer_quarters():
    # 8 scores: the 2 lowest and 2 highest are trimmed, the IQM is mean(2, 3, 4, 5)
    assert iqm_r(np.array([0, 1, 2, 3, 4, 5, 6, 100.0])) == pytest.approx(3.5)
    # robust to one outlier where the mean is not
    assert iqm_r(np.array([10, 10, 10, 10, 1000.0])) == pytest.approx(10.0)
    assert mean_r(np.array([10, 10, 10, 10, 1000.0])) == pytest.approx(208.0)


def test_run_statistics_keep_leading_batch_dims():
    scores_br = np.array([[0, 1, 2, 3, 4, 5, 6, 100.0], [1, 1, 1, 1, 9, 9, 9, 9]])
    assert iqm_r(scores_br).tolist() == pytest.approx([3.5, 5.0])
    assert median_r(scores_br).tolist() == pytest.approx([3.5, 5.0])
    assert mean_r(scores_br).tolist() == pytest.approx([121 / 8, 5.0])


def test_iqm_of_a_runs_by_tasks_matrix_pools_all_runs():
    scores_rt = np.array([[0.0, 40.0], [10.0, 50.0], [20.0, 60.0], [30.0, 70.0]])
    # pooled: 0 10 20 30 40 50 60 70 -> middle half 20 30 40 50
    assert aggregate_iqm(list(scores_rt.T)) == pytest.approx(35.0)
    point, lo, hi = interval_estimate(list(scores_rt.T), aggregate_iqm, reps=500)
    assert point == pytest.approx(35.0) and lo <= point <= hi and lo < hi


def test_optimality_gap_counts_only_the_shortfall_below_100():
    assert aggregate_optimality_gap([np.array([50.0, 100.0, 150.0, 80.0])]) == pytest.approx(
        (50 + 20) / 4
    )
    assert aggregate_optimality_gap([np.array([120.0, 200.0])]) == 0.0
    # pooled over all runs of all tasks (not a mean of per-task gaps), negatives not clipped
    assert aggregate_optimality_gap(
        [np.array([50.0]), np.array([100.0, 150.0, 80.0])]
    ) == pytest.approx((50 + 20) / 4)
    assert aggregate_optimality_gap([np.array([-20.0])]) == pytest.approx(120.0)
    assert aggregate_optimality_gap([np.array([0.5, 2.0])], gamma=1.0) == pytest.approx(0.25)


def test_median():
    assert median_r(np.array([3.0, 1.0, 2.0, 100.0])) == pytest.approx(2.5)


def test_mean_and_median_are_over_task_means_not_pooled_runs():
    # task means 50, 10, 25; the pooled runs 0 10 20 30 100 have mean 32 and median 20
    tasks = [np.array([0.0, 100.0]), np.array([10.0]), np.array([20.0, 30.0])]
    assert aggregate_mean(tasks) == pytest.approx((50 + 10 + 25) / 3)
    assert aggregate_median(tasks) == pytest.approx(25.0)
    # an even number of tasks: the middle two task means averaged
    assert aggregate_median([np.array([0.0, 2.0]), np.array([10.0])]) == pytest.approx(5.5)


@pytest.mark.parametrize("name", sorted(AGGREGATES))
def test_aggregates_keep_leading_batch_dims(name):
    rng = np.random.default_rng(1)
    tasks = [rng.normal(50, 30, (6, 3)), rng.normal(90, 30, (6, 5))]
    batched = AGGREGATES[name](tasks)
    assert batched.shape == (6,)
    one_by_one = [AGGREGATES[name]([t[i] for t in tasks]) for i in range(6)]
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(AGGREGATES))
def test_ci_contains_the_point_and_narrows_with_more_runs(name):
    rng = np.random.default_rng(0)
    few = [rng.normal(50, 10, 5), rng.normal(70, 10, 5)]
    many = [rng.normal(50, 10, 100), rng.normal(70, 10, 100)]
    p1, lo1, hi1 = interval_estimate(few, AGGREGATES[name], reps=1000)
    p2, lo2, hi2 = interval_estimate(many, AGGREGATES[name], reps=1000)
    assert lo1 <= p1 <= hi1 and lo2 <= p2 <= hi2
    assert hi2 - lo2 < hi1 - lo1


@pytest.mark.parametrize("name", sorted(AGGREGATES))
def test_stratified_bootstrap_keeps_each_tasks_runs(name):
    """Task A always scores 0, task B always 100: a stratified resample always holds 3 of
    each, so every aggregate is exactly 50 in every resample (an unstratified one would vary)."""
    point, lo, hi = interval_estimate([np.zeros(3), np.full(3, 100.0)], AGGREGATES[name], reps=500)
    assert (point, lo, hi) == (50.0, 50.0, 50.0)


def test_a_single_run_task_beside_a_two_run_task_keeps_its_run():
    # task 0 has one run (42) kept in every resample; task 1's mean is 10, 20 or 30
    tasks = [np.array([42.0]), np.array([10.0, 30.0])]
    point, lo, hi = interval_estimate(tasks, aggregate_mean, reps=2000)
    assert point == pytest.approx(31.0)
    assert np.isfinite([lo, hi]).all() and 26.0 <= lo < point < hi <= 36.0
    for name in AGGREGATES:
        assert np.isfinite(interval_estimate(tasks, AGGREGATES[name], reps=200)).all()


def test_ci_is_undefined_for_single_runs_and_reproducible_otherwise():
    point, lo, hi = interval_estimate([np.array([42.0])], aggregate_iqm)
    assert point == 42.0 and np.isnan(lo) and np.isnan(hi)
    point, lo, hi = interval_estimate([np.array([40.0]), np.array([60.0])], aggregate_mean)
    assert point == 50.0 and np.isnan(lo) and np.isnan(hi)
    assert np.isnan(interval_estimate([], aggregate_iqm)).all()
    assert np.isnan(interval_estimate([np.array([])], aggregate_iqm)).all()
    a = interval_estimate([np.array([1.0, 5.0, 9.0, 20.0])], aggregate_iqm, reps=300, seed=3)
    b = interval_estimate([np.array([1.0, 5.0, 9.0, 20.0])], aggregate_iqm, reps=300, seed=3)
    assert a == b


def test_stratified_bootstrap_of_a_vector_statistic():
    """A performance profile (fraction of pooled runs above each tau) gets a band per tau."""
    taus = np.array([0.0, 25.0, 50.0, 100.0])

    def profile(tasks):
        return np.mean(np.concatenate(tasks, axis=-1)[..., None, :] > taus[:, None], axis=-1)

    tasks = [np.array([10.0, 30.0, 60.0]), np.array([90.0, 95.0])]
    point, lo, hi = stratified_bootstrap(tasks, profile, reps=500)
    assert point.shape == lo.shape == hi.shape == (4,)
    assert point.tolist() == [1.0, 0.8, 0.6, 0.0]
    assert (lo <= point).all() and (point <= hi).all()
    assert lo[0] == hi[0] == 1.0 and lo[3] == hi[3] == 0.0


def test_probability_of_improvement_by_hand():
    # (x, y) pairs: (1,0) win, (1,2) loss, (2,0) win, (2,2) tie -> (2 + 0.5) / 4
    x, y = [np.array([1.0, 2.0])], [np.array([0.0, 2.0])]
    assert probability_of_improvement(x, y) == pytest.approx(0.625)
    assert probability_of_improvement(y, x) == pytest.approx(0.375)
    # unequal run counts: 5 vs 1 win, 5 vs 7 loss, 5 vs 5 tie -> 1.5 / 3; mean over tasks
    x2, y2 = x + [np.array([5.0])], y + [np.array([1.0, 7.0, 5.0])]
    assert probability_of_improvement(x2, y2) == pytest.approx((0.625 + 0.5) / 2)
    # identical runs: one half (rliable's np.array_equal rule falls out of the tie rule)
    assert probability_of_improvement([np.array([3.0, 1.0])], [np.array([3.0, 1.0])]) == 0.5
    with pytest.raises(ValueError):
        probability_of_improvement(x2, y)


def test_probability_of_improvement_is_mann_whitney_and_complementary():
    rng = np.random.default_rng(2)
    # rounded: plenty of ties, and different run counts per task and between X and Y
    x = [rng.normal(50, 10, 7).round(-1), rng.normal(60, 20, 3).round(-1)]
    y = [rng.normal(55, 10, 4).round(-1), rng.normal(50, 20, 9).round(-1)]
    u = [
        stats.mannwhitneyu(a, b, alternative="greater").statistic / (len(a) * len(b))
        for a, b in zip(x, y, strict=True)
    ]
    assert probability_of_improvement(x, y) == pytest.approx(np.mean(u))
    assert probability_of_improvement(x, y) + probability_of_improvement(y, x) == pytest.approx(1)
    # batch dims: [2, n] per task gives [2]
    xb, yb = [np.stack([a, a + 5]) for a in x], [np.stack([b, b]) for b in y]
    batched = probability_of_improvement(xb, yb)
    assert batched.shape == (2,)
    assert batched[0] == pytest.approx(probability_of_improvement(x, y))
    assert batched[1] == pytest.approx(probability_of_improvement([a + 5 for a in x], y))


def test_pair_interval_estimate():
    x = [np.array([60.0, 70.0, 80.0]), np.array([10.0, 30.0])]
    y = [np.array([50.0, 65.0]), np.array([20.0, 25.0, 5.0, 40.0])]
    point, lo, hi = pair_interval_estimate(x, y, probability_of_improvement, reps=1000)
    assert point == pytest.approx(probability_of_improvement(x, y))
    assert 0.0 <= lo < point < hi <= 1.0
    again = pair_interval_estimate(x, y, probability_of_improvement, reps=1000)
    assert (point, lo, hi) == again
    # one run each everywhere: nothing to resample
    p, lo, hi = pair_interval_estimate(
        [np.array([2.0])], [np.array([1.0])], probability_of_improvement
    )
    assert p == 1.0 and np.isnan(lo) and np.isnan(hi)
    # one run in X beside several in Y: Y is still resampled
    p, lo, hi = pair_interval_estimate(
        [np.array([2.0])], [np.array([1.0, 3.0])], probability_of_improvement, reps=500
    )
    assert p == 0.5 and lo == 0.0 and hi == 1.0
    assert np.isnan(pair_interval_estimate([], [], probability_of_improvement)).all()
    with pytest.raises(ValueError):
        pair_interval_estimate(x, y[:1], probability_of_improvement)


def test_performance_profile_is_the_fraction_above_tau():
    # imported here: plots.py imports the metrics interface being changed under it, so a
    # broken import there fails this test only, not the whole module
    from bench.analysis.plots import profile_curve

    taus = np.array([0.0, 25.0, 50.0, 100.0])
    curve = profile_curve(np.array([10.0, 30.0, 60.0, 90.0]), taus)
    assert curve.tolist() == [1.0, 0.75, 0.5, 0.0]


def test_seed_list_syntax():
    assert seed_list([2, 0, 1]) == "0-2"
    assert seed_list([0, 2]) == "0,2"
    assert seed_list([4]) == "4"
