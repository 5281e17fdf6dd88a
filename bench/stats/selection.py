"""Selection metrics, as DOPE defines them (Fu et al., "Benchmarks for Deep Off-Policy
Evaluation", ICLR 2021, arXiv:2103.16596), per seed over that seed's candidates:

    regret@k     best true score among the candidates minus the best true score among the k
                 candidates with the highest estimates (k = 1: the pick), normalized points
    rank corr.   Spearman's rank correlation between estimates and true scores
    abs. error   mean over candidates of |estimate - true value|, in normalized points (for
                 value estimates only: fqe and q0; the true value is the evaluation's mean
                 discounted return at the estimator's gamma, both mapped by the dataset's refs)

then, over seeds, the mean and its bootstrap CI (bench.stats.bootstrap; stratified by cell
when cells are pooled). Arrays are named by their axes: _c candidates, _s seeds.

Baselines: `last` picks the last checkpoint (its estimate is the step); `random` picks uniformly,
and its regret@k is the exact expectation over picks (no draws).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def pick_order_c(estimate_c: np.ndarray, step_c: np.ndarray) -> np.ndarray:
    """Candidates from the highest estimate down; ties go to the later checkpoint."""
    return np.lexsort((-step_c, -estimate_c))


def regret_at_k(estimate_c: np.ndarray, true_c: np.ndarray, step_c: np.ndarray, k: int) -> float:
    top = pick_order_c(estimate_c, step_c)[:k]
    return float(true_c.max() - true_c[top].max())


def expected_random_regret(true_c: np.ndarray, k: int) -> float:
    """E[best true - best true among k candidates drawn uniformly without replacement]."""
    n = len(true_c)
    k = min(k, n)
    t = np.sort(true_c)  # ascending: P(the best of k draws is t[i]) = C(i, k-1) / C(n, k)
    weights = np.array([math.comb(i, k - 1) for i in range(n)], dtype=float) / math.comb(n, k)
    return float(t.max() - (weights * t).sum())


def rank_correlation(estimate_c: np.ndarray, true_c: np.ndarray) -> float:
    """Spearman's rho; nan when either side is constant or there are fewer than 3 candidates."""
    if len(true_c) < 3 or np.ptp(estimate_c) == 0 or np.ptp(true_c) == 0:
        return float("nan")
    return float(stats.spearmanr(estimate_c, true_c).statistic)


def seed_metrics(
    method: str,
    estimate_c: np.ndarray,
    true_c: np.ndarray,
    step_c: np.ndarray,
    value_err_c: np.ndarray | None,
) -> dict[str, float]:
    """One seed's regret@1, regret@3, rank correlation, absolute error and the pick's score."""
    if method == "random":
        return {
            "regret_1": expected_random_regret(true_c, 1),
            "regret_3": expected_random_regret(true_c, 3),
            "rank_corr": float("nan"),
            "abs_error": float("nan"),
            "picked_score": float(true_c.mean()),
        }
    pick = pick_order_c(estimate_c, step_c)[0]
    return {
        "regret_1": regret_at_k(estimate_c, true_c, step_c, 1),
        "regret_3": regret_at_k(estimate_c, true_c, step_c, 3),
        "rank_corr": rank_correlation(estimate_c, true_c),
        "abs_error": float("nan") if value_err_c is None else float(np.mean(value_err_c)),
        "picked_score": float(true_c[pick]),
    }
