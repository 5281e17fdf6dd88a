"""Our aggregates, probability of improvement and stratified bootstrap CIs against rliable 1.2.0.

The reference numbers (fixtures/rliable/rliable_reference.json) were computed with rliable by
fixtures/rliable/make_fixtures.py on fixed runs x tasks score matrices; NOTES.md there records
rliable's exact semantics. Point estimates are exact, so they must agree to rounding. CI bounds
are Monte-Carlo quantities from a different random stream (rliable draws with the global
np.random, we with np.random.default_rng), so they agree to a tolerance; the replay tests
additionally feed rliable's own resamples to our statistics and interval and must agree to
rounding.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from bench.stats.bootstrap import (
    pair_interval_estimate,
    percentile_interval,
    stratified_bootstrap,
)
from bench.stats.metrics import AGGREGATES, probability_of_improvement

FIXTURE = Path(__file__).parent / "fixtures" / "rliable" / "rliable_reference.json"
REF = json.loads(FIXTURE.read_text())
META = REF["meta"]
SETS = REF["sets"]
AGG_NAMES = ["iqm", "mean", "median", "optimality_gap"]  # the fixture's aggregate_func order

AGG_REPS = 50_000  # as the fixture (and rliable's default)
AGG_TOL = 1.0  # score points (0-100 scale); measured max |diff| 0.15
# Probability of improvement: the fixture used 2,000 reps (rliable's P(X>Y) is slow). We use
# 50,000: the PoI of a few runs takes few distinct values, so the 2.5/97.5 percentiles jump
# by one lattice step (1/64 to 1/75 here) when the Monte-Carlo sample moves them across a jump.
# At 2,000 reps our own noise adds to the fixture's and bounds differed by up to 0.056 over
# seeds; at 50,000 ours sit on the true (1e6-rep) bounds and only the fixture's noise is left
# (max 0.0156, seed 0). 50,000 reps of all 12 pairs take ~1.3 s.
POI_REPS = 50_000
POI_TOL = 0.02


def tasks_of(scores_rt) -> list[np.ndarray]:
    """rliable's [runs, tasks] matrix -> our list of per-task run arrays."""
    return list(np.asarray(scores_rt, dtype=np.float64).T)


def joint_aggregates(tasks):
    # all four from the same resamples, as the fixture's aggregate_func
    return np.stack([AGGREGATES[name](tasks) for name in AGG_NAMES], axis=-1)


def test_fixture_settings_are_what_we_compare_against():
    assert META["rliable_version"] == "1.2.0"
    assert META["confidence"] == 0.95 and META["bootstrap_method"] == "percentile"
    assert META["task_bootstrap"] is False and META["optimality_gap_gamma"] == 100.0
    assert META["reps_aggregates"] == AGG_REPS
    assert META["reps_probability_of_improvement"] == 2000
    assert set(SETS) == {"a_5x3", "b_10x4_unequal", "c_3x2_tiny", "d_4x2_ties"}


@pytest.mark.parametrize("set_name", sorted(SETS))
def test_aggregates_match_rliable(set_name):
    s = SETS[set_name]
    for alg, scores in s["scores"].items():
        tasks = tasks_of(scores)
        ref = s["aggregates"][alg]
        for name in AGG_NAMES:
            expected = pytest.approx(ref[name]["point"], rel=1e-9)
            assert AGGREGATES[name](tasks) == expected, (alg, name)
        point, lo, hi = stratified_bootstrap(tasks, joint_aggregates, reps=AGG_REPS)
        for i, name in enumerate(AGG_NAMES):
            assert point[i] == pytest.approx(ref[name]["point"], rel=1e-9), (alg, name)
            assert lo[i] == pytest.approx(ref[name]["lo"], abs=AGG_TOL), (alg, name)
            assert hi[i] == pytest.approx(ref[name]["hi"], abs=AGG_TOL), (alg, name)


@pytest.mark.parametrize("set_name", sorted(SETS))
def test_probability_of_improvement_matches_rliable(set_name):
    s = SETS[set_name]
    for key, ref in s["probability_of_improvement"].items():
        x, y = (tasks_of(s["scores"][alg]) for alg in key.split(","))
        assert probability_of_improvement(x, y) == pytest.approx(ref["point"], rel=1e-9), key
        assert probability_of_improvement(x, y) + probability_of_improvement(y, x) == (
            pytest.approx(1.0, rel=1e-12)
        )
        point, lo, hi = pair_interval_estimate(x, y, probability_of_improvement, reps=POI_REPS)
        assert point == pytest.approx(ref["point"], rel=1e-9), key
        assert lo == pytest.approx(ref["lo"], abs=POI_TOL), key
        assert hi == pytest.approx(ref["hi"], abs=POI_TOL), key


# ---------------------------------------------------------------- replay of rliable's draws
def rliable_indices(seed: int, reps: int, shape: tuple[int, ...]) -> np.ndarray:
    """rliable's resampling indices [reps, *shape]: after np.random.seed(seed), one
    np.random.choice(num_runs, (num_runs, num_tasks)) per rep (X's then Y's for a pair), which
    is the legacy stream's randint(0, num_runs) in order (NOTES.md)."""
    return np.random.RandomState(seed).randint(0, shape[-2], size=(reps, *shape))


@pytest.mark.parametrize("set_name", sorted(SETS))
def test_our_statistics_on_rliables_resamples_give_its_bounds(set_name):
    s = SETS[set_name]
    n, t = s["num_runs"], s["num_tasks"]
    idx_brt = rliable_indices(META["seed"], META["reps_aggregates"], (n, t))
    for alg, scores in s["scores"].items():
        m_rt = np.asarray(scores)
        tasks_b = [m_rt[idx_brt[:, :, j], j] for j in range(t)]  # [reps, n] per task
        lo, hi = percentile_interval(joint_aggregates(tasks_b), META["confidence"])
        for i, name in enumerate(AGG_NAMES):
            ref = s["aggregates"][alg][name]
            assert (lo[i], hi[i]) == pytest.approx((ref["lo"], ref["hi"]), abs=1e-9), name
    idx_bxrt = rliable_indices(META["seed"], META["reps_probability_of_improvement"], (2, n, t))
    for key, ref in s["probability_of_improvement"].items():
        x_rt, y_rt = (np.asarray(s["scores"][alg]) for alg in key.split(","))
        x_b = [x_rt[idx_bxrt[:, 0, :, j], j] for j in range(t)]
        y_b = [y_rt[idx_bxrt[:, 1, :, j], j] for j in range(t)]
        lo, hi = percentile_interval(probability_of_improvement(x_b, y_b), META["confidence"])
        assert (lo, hi) == pytest.approx((ref["lo"], ref["hi"]), abs=1e-9), key
