"""Figures from the results tables (seaborn): learning curves, IQM interval plots, and
performance profiles, each written as PNG and SVG at paper size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.analysis.leaderboard import Board, leaderboard
from bench.analysis.scores import ScoreSpec, load_results, per_task
from bench.errors import BenchError
from bench.results.schema import atomic_write_bytes, runs_dir
from bench.stats.bootstrap import BOOTSTRAP_REPS, stratified_bootstrap

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
    """PNG and SVG, each rendered in memory and written atomically: a failed write (a folder
    under a file, read-only, a full disk) is one line and leaves no partial figure."""
    import io

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BenchError(f"cannot create the plot folder {out}: {e.strerror or e}") from None
    paths = []
    for ext in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=200, bbox_inches="tight")
        atomic_write_bytes(out / f"{name}.{ext}", buf.getvalue())
        paths.append(out / f"{name}.{ext}")
    return paths


def _palette(algos: list[str], sns) -> dict[str, tuple]:
    return dict(zip(algos, sns.color_palette("colorblind", len(algos)), strict=True))


def learning_curves(results: Path, out: Path) -> list[Path]:
    """Normalized score vs update step: mean over seeds and its 95% CI band (bootstrap over
    seeds), one panel per dataset, one colour per configuration (label), the behavior's score
    dashed. Runs in progress and duplicates are left out."""
    plt, sns = _setup()
    res = load_results(results)
    counted = res.counted
    labels = counted.set_index("run_id").label
    evals = res.evals[res.evals.run_id.isin(counted.run_id)]
    evals = evals.assign(label=evals.run_id.map(labels))
    if evals.empty:
        raise BenchError(f"no complete runs with evaluations under {runs_dir(results)}")
    datasets = sorted(evals.dataset.unique())
    algos = sorted(evals.label.unique())
    colors = _palette(algos, sns)
    cols = min(3, len(datasets))
    rows = int(np.ceil(len(datasets) / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(WIDTH_IN, 2.6 * rows), squeeze=False, sharey=False
    )
    for ax, dataset in zip(axes.flat, datasets, strict=False):
        d = evals[evals.dataset == dataset]
        sns.lineplot(
            data=d,
            x="step",
            y="normalized_score",
            hue="label",
            palette=colors,
            ax=ax,
            errorbar=("ci", 95),
            n_boot=BOOTSTRAP_REPS,
            seed=0,
            legend=False,
        )
        behavior = counted.behavior_score[counted.dataset == dataset].dropna()
        if len(behavior):
            ax.axhline(float(behavior.mean()), color="0.3", ls="--", lw=1.2)
        ax.set_title(dataset)
        ax.set_xlabel("gradient updates")
        ax.set_ylabel("normalized score")
    for ax in list(axes.flat)[len(datasets) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colors[a], lw=2, label=a) for a in algos]
    handles.append(plt.Line2D([], [], color="0.3", ls="--", lw=1.2, label="behavior"))
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=len(handles),
        frameon=False,
        bbox_to_anchor=(0.5, -0.02),
    )
    fig.suptitle("Learning curves: mean over seeds, 95% CI band")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    paths = _save(fig, out, "curves")
    plt.close(fig)
    return paths


def _board(results: Path, spec: ScoreSpec) -> Board:
    board = leaderboard(results, spec)
    if board.rows.empty:
        raise BenchError(f"no complete runs under {runs_dir(results)}")
    return board


def _interval_panel(ax, entries, colors):
    """Horizontal CI bars (coloured) with the point estimate (black), one per (label, est)."""
    values = []
    for i, (label, (point, lo, hi)) in enumerate(entries):
        if not np.isnan(lo):
            ax.barh(i, hi - lo, left=lo, height=0.6, color=colors[label], alpha=0.75)
        ax.plot([point, point], [i - 0.3, i + 0.3], color="k", lw=1.5)
        values += [v for v in (point, lo, hi) if not np.isnan(v)]
    ax.set_yticks(range(len(entries)), [label for label, _ in entries])
    ax.set_ylim(-0.6, len(entries) - 0.4)
    if values:  # pad the x range so marks at the extremes stay visible
        pad = max(0.08 * (max(values) - min(values)), 1.0)
        ax.set_xlim(min(values) - pad, max(values) + pad)


def interval_plot(results: Path, out: Path, spec: ScoreSpec = ScoreSpec()) -> list[Path]:
    """IQM and optimality gap of each aggregate block (configurations compared over the datasets
    they all have), with 95% stratified bootstrap CIs (rliable's interval estimates), plus IQM
    per dataset for the datasets no one-dataset block shows."""
    plt, sns = _setup()
    board = _board(results, spec)
    rows = board.rows
    labels = sorted(rows.label.unique())
    colors = _palette(labels, sns)
    panels = []
    for b in board.blocks:
        where = b.datasets[0] if len(b.datasets) == 1 else f"{len(b.datasets)} datasets"
        for metric, name in (("iqm", "IQM"), ("optimality_gap", "optimality gap")):
            entries = [
                (
                    r.label,
                    (getattr(r, metric), getattr(r, metric + "_lo"), getattr(r, metric + "_hi")),
                )
                for r in b.table.itertuples()
            ]
            panels.append((f"{name}, {where}", metric, entries))
    single = {b.datasets[0] for b in board.blocks if len(b.datasets) == 1}
    for d in sorted(set(rows.dataset) - single):  # a one-dataset block already shows its IQM
        here = rows[rows.dataset == d]
        entries = [(r.label, (r.iqm, r.iqm_lo, r.iqm_hi)) for r in here.itertuples()]
        panels.append((f"IQM, {d}", "iqm", entries))
    cols = min(3, len(panels))
    n_rows = int(np.ceil(len(panels) / cols))
    height = max(len(e) for _, _, e in panels)
    fig, axes = plt.subplots(
        n_rows, cols, figsize=(WIDTH_IN, 0.45 * height * n_rows + 1.2 * n_rows), squeeze=False
    )
    for ax, (title, metric, entries) in zip(axes.flat, panels, strict=False):
        _interval_panel(ax, entries, colors)
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
    """Fraction of runs with a normalized score above tau, per configuration, over the datasets
    of the first aggregate block (the ones its configurations all have), with a 95% stratified
    bootstrap band."""
    plt, sns = _setup()
    board = _board(results, spec)
    block = board.blocks[0]
    runs = board.results.counted
    runs = runs[runs.dataset.isin(block.datasets)]
    labels = list(block.table.label)
    colors = _palette(labels, sns)
    hi = max(100.0, float(runs.score.max()))
    taus = np.linspace(min(0.0, float(runs.score.min())), hi, 101)
    fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.6, 3.0))
    for label in labels:
        tasks = per_task(runs[runs.label == label], block.datasets)
        curve = profile_curve(np.concatenate(tasks), taus)
        ax.plot(taus, curve, color=colors[label], lw=2, label=label)
        if max(len(t) for t in tasks) >= 2:
            _, lo, up = stratified_bootstrap(
                tasks, lambda xs: profile_curve(np.concatenate(xs, axis=-1), taus)
            )
            ax.fill_between(taus, lo, up, color=colors[label], alpha=0.2, lw=0)
    ax.set_xlabel(r"normalized score $\tau$")
    ax.set_ylabel(r"fraction of runs with score > $\tau$")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Performance profile over {', '.join(block.datasets)} (95% CI band)")
    ax.legend(frameon=False)
    fig.tight_layout()
    paths = _save(fig, out, "profile")
    plt.close(fig)
    return paths


#: Methods the selection figure shows (the baselines' estimates are a step or nothing).
ESTIMATORS = ("fqe", "q0", "td", "likelihood")


def selection_plot(results: Path, out: Path) -> list[Path]:
    """Per dataset (rows) and estimator (columns): every candidate's estimate against its true
    score, one colour per algorithm; value estimates (fqe, q0) in normalized points with the
    line estimate = true discounted value's trend left to the eye. From selection.parquet."""
    from bench.ope.select import SELECTION_TABLE, VALUE_METHODS, read_selection

    path = Path(results) / SELECTION_TABLE
    if not path.is_file():
        raise BenchError(f"no {SELECTION_TABLE} under {results}: run `bench select` first")
    table = read_selection(path)
    table = table[table.method.isin(ESTIMATORS)]
    if table.empty:
        raise BenchError(f"{path} holds no estimates (only the last and random baselines)")
    plt, sns = _setup()
    datasets = sorted(table.dataset.unique())
    methods = [m for m in ESTIMATORS if m in set(table.method)]
    colors = _palette(sorted(table.algo.unique()), sns)
    fig, axes = plt.subplots(
        len(datasets), len(methods), squeeze=False, figsize=(WIDTH_IN, 2.4 * len(datasets))
    )
    for i, dataset in enumerate(datasets):
        for j, method in enumerate(methods):
            ax = axes[i, j]
            d = table[(table.dataset == dataset) & (table.method == method)]
            x = "estimate_normalized" if method in VALUE_METHODS else "estimate"
            if d[x].isna().all():
                x = "estimate"
            sns.scatterplot(
                data=d, x=x, y="true_score", hue="algo", palette=colors, ax=ax, s=14, legend=False
            )
            ax.xaxis.set_major_locator(plt.MaxNLocator(3))
            ax.tick_params(labelsize=7)
            ax.set_title(f"{dataset}: {method}", fontsize=8)
            ax.set_xlabel("estimate" + (" (normalized)" if x == "estimate_normalized" else ""))
            ax.set_ylabel("true score" if j == 0 else "")
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=a) for a, c in colors.items()]
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=len(handles),
        frameon=False,
        bbox_to_anchor=(0.5, -0.02),
    )
    fig.suptitle("Offline estimates against true scores, every kept checkpoint")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    paths = _save(fig, out, "selection")
    plt.close(fig)
    return paths


def plot(results: Path, kind: str, out: Path, spec: ScoreSpec = ScoreSpec()) -> list[Path]:
    if kind == "selection":
        return selection_plot(results, out)
    if kind == "curves":
        return learning_curves(results, out)
    if kind == "bars":
        return interval_plot(results, out, spec)
    if kind == "profile":
        return performance_profile(results, out, spec)
    raise BenchError(
        f"unknown plot kind '{kind}'; choose one of: {', '.join(KINDS)}, selection, all"
    )
