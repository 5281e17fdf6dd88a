"""Figures from the results tables (seaborn): learning curves, IQM interval plots, and
performance profiles, each written as PNG and SVG at paper size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.leaderboard import (
    BOOTSTRAP_REPS,
    METRICS,
    ScoreSpec,
    interval_estimate,
    run_scores,
    scores_of,
    stratified_bootstrap,
)
from bench.results import read_configs, read_eval, runs_dir

KINDS = ("curves", "bars", "profile")
#: Paper-size figures: a two-column figure is ~7 inches wide.
WIDTH_IN = 7.0


def _setup():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    return plt, sns


def _save(fig, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        path = out / f"{name}.{ext}"
        fig.savefig(path, dpi=200, bbox_inches="tight")
        paths.append(path)
    return paths


def _palette(algos: list[str], sns) -> dict[str, tuple]:
    return dict(zip(algos, sns.color_palette("colorblind", len(algos)), strict=True))


def learning_curves(results: Path, out: Path) -> list[Path]:
    """Normalized score vs update step: mean over seeds and its 95% CI band (bootstrap over
    seeds), one panel per dataset, one colour per algorithm, the behavior's score dashed."""
    plt, sns = _setup()
    evals, configs = read_eval(results), read_configs(results)
    runs = scores_of(evals, configs, ScoreSpec())
    evals = evals[evals.run_id.isin(runs.run_id[runs.complete])]  # runs in progress: out
    if evals.empty:
        raise BenchError(f"no complete runs with evaluations under {runs_dir(results)}")
    datasets = sorted(evals.dataset.unique())
    algos = sorted(evals.algo.unique())
    colors = _palette(algos, sns)
    cols = min(3, len(datasets))
    rows = int(np.ceil(len(datasets) / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(WIDTH_IN, 2.6 * rows), squeeze=False, sharey=False
    )
    for ax, dataset in zip(axes.flat, datasets, strict=False):
        d = evals[evals.dataset == dataset]
        sns.lineplot(
            data=d, x="step", y="normalized_score", hue="algo", palette=colors, ax=ax,
            errorbar=("ci", 95), n_boot=BOOTSTRAP_REPS, seed=0, legend=False,
        )  # fmt: skip
        behavior = [
            c["behavior_score"]
            for c in configs.values()
            if c.get("dataset") == dataset and c.get("behavior_score") is not None
        ]
        if behavior:
            ax.axhline(np.mean(behavior), color="0.3", ls="--", lw=1.2)
        ax.set_title(dataset)
        ax.set_xlabel("gradient updates")
        ax.set_ylabel("normalized score")
    for ax in list(axes.flat)[len(datasets) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colors[a], lw=2, label=a) for a in algos]
    handles.append(plt.Line2D([], [], color="0.3", ls="--", lw=1.2, label="behavior"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False,
               bbox_to_anchor=(0.5, -0.02))  # fmt: skip
    fig.suptitle("Learning curves: mean over seeds, 95% CI band")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    paths = _save(fig, out, "curves")
    plt.close(fig)
    return paths


def _complete_scores(results: Path, spec: ScoreSpec) -> pd.DataFrame:
    runs = run_scores(results, spec)
    runs = runs[runs.complete]
    if runs.empty:
        raise BenchError(f"no complete runs under {runs_dir(results)}")
    return runs


def interval_plot(results: Path, out: Path, spec: ScoreSpec = ScoreSpec()) -> list[Path]:
    """IQM and optimality gap per algorithm across datasets, with 95% stratified bootstrap
    CIs (rliable's interval estimates), plus IQM per dataset."""
    plt, sns = _setup()
    runs = _complete_scores(results, spec)
    algos = sorted(runs.algo.unique())
    colors = _palette(algos, sns)
    datasets = sorted(runs.dataset.unique())
    panels = [("IQM, all datasets", "iqm", None), ("optimality gap, all datasets",
              "optimality_gap", None)] + [(f"IQM, {d}", "iqm", d) for d in datasets]  # fmt: skip
    cols = min(3, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(WIDTH_IN, 0.45 * len(algos) * rows + 1.2 * rows), squeeze=False
    )
    for ax, (title, metric, dataset) in zip(axes.flat, panels, strict=False):
        d = runs if dataset is None else runs[runs.dataset == dataset]
        present = [a for a in algos if (d.algo == a).any()]  # only algorithms run here
        values = []
        for i, algo in enumerate(present):
            per_task = [t.score.to_numpy() for _, t in d[d.algo == algo].groupby("dataset")]
            point, lo, hi = interval_estimate(per_task, METRICS[metric])
            if not np.isnan(lo):
                ax.barh(i, hi - lo, left=lo, height=0.6, color=colors[algo], alpha=0.75)
            ax.plot([point, point], [i - 0.3, i + 0.3], color="k", lw=1.5)
            values += [v for v in (point, lo, hi) if not np.isnan(v)]
        ax.set_yticks(range(len(present)), present)
        ax.set_ylim(-0.6, len(present) - 0.4)
        if values:  # pad the x range so marks at the extremes stay visible
            pad = max(0.08 * (max(values) - min(values)), 1.0)
            ax.set_xlim(min(values) - pad, max(values) + pad)
        ax.set_title(title)
        ax.set_xlabel("normalized score" if metric == "iqm" else "gap to 100 (lower is better)")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(f"Point estimates (black) and 95% CIs; score = {spec.kind}")
    fig.tight_layout()
    paths = _save(fig, out, "bars")
    plt.close(fig)
    return paths


def profile_curve(scores: np.ndarray, taus: np.ndarray, axis: int = -1) -> np.ndarray:
    """Performance profile: for each tau, the fraction of runs scoring above tau."""
    return np.mean(np.asarray(scores)[..., None, :] > taus[:, None], axis=axis)


def performance_profile(results: Path, out: Path, spec: ScoreSpec = ScoreSpec()) -> list[Path]:
    """Fraction of runs (all datasets pooled) with a normalized score above tau, per algorithm,
    with a 95% stratified bootstrap band."""
    plt, sns = _setup()
    runs = _complete_scores(results, spec)
    algos = sorted(runs.algo.unique())
    colors = _palette(algos, sns)
    hi = max(100.0, float(runs.score.max()))
    taus = np.linspace(min(0.0, float(runs.score.min())), hi, 101)
    fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.6, 3.0))
    for algo in algos:
        per_task = [t.score.to_numpy() for _, t in runs[runs.algo == algo].groupby("dataset")]
        curve = profile_curve(np.concatenate(per_task), taus)
        ax.plot(taus, curve, color=colors[algo], lw=2, label=algo)
        if max(len(t) for t in per_task) >= 2:
            _, lo, up = stratified_bootstrap(
                per_task, lambda x, axis=-1: profile_curve(x, taus, axis)
            )
            ax.fill_between(taus, lo, up, color=colors[algo], alpha=0.2, lw=0)
    ax.set_xlabel(r"normalized score $\tau$")
    ax.set_ylabel(r"fraction of runs with score > $\tau$")
    ax.set_ylim(0, 1.02)
    ax.set_title("Performance profile (95% CI band)")
    ax.legend(frameon=False)
    fig.tight_layout()
    paths = _save(fig, out, "profile")
    plt.close(fig)
    return paths


def plot(results: Path, kind: str, out: Path, spec: ScoreSpec = ScoreSpec()) -> list[Path]:
    if kind == "curves":
        return learning_curves(results, out)
    if kind == "bars":
        return interval_plot(results, out, spec)
    if kind == "profile":
        return performance_profile(results, out, spec)
    raise BenchError(f"unknown plot kind '{kind}'; choose one of: {', '.join(KINDS)}, all")
