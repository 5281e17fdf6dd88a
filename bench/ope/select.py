"""Offline policy selection over a results folder: every kept policy scored by each method from
the dataset alone, each method's pick per seed, and the true score of that pick.

    candidates (bench.ope.candidates) -> per dataset: the data, once
      -> per configuration: the candidates stacked as members; their actions at every obs row
      -> fqe: one training for all candidates of the dataset (candidate = member)
      -> proxies: q0, td, likelihood; baselines: last, random
      -> selection.parquet (one row per candidate and method) and the metrics per cell
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from bench.errors import BenchError
from bench.evaluate import EVAL_DISCOUNT, normalized_score
from bench.ope import proxies
from bench.ope.candidates import (
    Candidate,
    by_configuration,
    check_one_dataset,
    find_candidates,
    initial_rows,
    load_stacked,
    policy_actions,
)
from bench.ope.fqe import FQE, FQEConfig, settings
from bench.results.schema import atomic_write_table
from bench.stats.bootstrap import interval_estimate
from bench.stats.selection import pick_order_c, seed_metrics
from bench.types import EnvInfo

METHODS = ("fqe", "q0", "td", "likelihood", "last", "random")
#: methods whose estimate is a value in return units (absolute error is defined for them)
VALUE_METHODS = ("fqe", "q0")
SELECTION_TABLE = "selection.parquet"
#: SELECTION_SCHEMA's cell when the pick is among all configurations of an algorithm.
ALL_CONFIGS = "*"
#: What a pick is among: one configuration's checkpoints, or all configurations' (--over).
OVER = ("checkpoints", "configs")

SELECTION_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("key", pa.string()),
        ("algo", pa.string()),
        ("dataset", pa.string()),
        ("seed", pa.int64()),
        ("step", pa.int64()),
        ("method", pa.string()),
        # the candidates a pick is made among, per seed: the run key (one configuration's
        # checkpoints) or ALL_CONFIGS (every configuration of the algorithm: hyperparameters too)
        ("cell", pa.string()),
        ("estimate", pa.float64()),  # the method's score of the candidate (higher: better)
        ("estimate_normalized", pa.float64()),  # value methods: 100 (est - ref_min) / (ref range)
        ("true_score", pa.float64()),  # normalized score of the candidate's evaluation
        ("true_value_normalized", pa.float64()),  # its discounted return, mapped the same way
        ("picked", pa.bool_()),  # the method's pick among this seed's candidates
        ("settings", pa.string()),  # what decides the estimate (FQE's settings)
    ]
)


@dataclass
class SelectOptions:
    results_dir: Path
    methods: tuple[str, ...] = METHODS
    datasets: list[str] | None = None
    fqe: FQEConfig = field(default_factory=FQEConfig)
    device: str = "cpu"
    vectorize: bool = True  # FQE: all candidates of a dataset as one stacked training
    #: methods named by the user: q0 / td for an algorithm without a Q function is an error;
    #: otherwise (all methods by default) they are left out for it
    explicit: bool = False
    over: str = "checkpoints"
    show_progress: bool = True


def parse_methods(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(m.strip().lower() for m in text.split(",") if m.strip()))
    bad = [m for m in names if m not in METHODS]
    if not names or bad:
        raise BenchError(
            f"--method: unknown method '{bad[0] if bad else text}' (known: {', '.join(METHODS)})"
        )
    return names


def _load_data(config, device: torch.device, show_progress: bool):
    from bench.run.loop import load_data, prepare

    prep = prepare(dataclasses.replace(config.options(), device=str(device)), show_progress)
    if prep.config.dataset_hash != config.dataset_hash:
        raise BenchError(
            f"dataset {config.minari_id} changed since its runs were trained; rebuild the "
            "dataset they used or train them again"
        )
    data = load_data(prep, device)
    return data, EnvInfo(obs_shape=data.obs_shape, action_space=prep.action_space)


@dataclass
class DatasetScores:
    cands: list[Candidate]
    estimates: dict[str, np.ndarray]  # method -> [C]
    fqe_seconds: float = 0.0


def score_dataset(cands: list[Candidate], opts: SelectOptions) -> DatasetScores:
    """Every method's estimate of every candidate of one dataset."""
    device = torch.device(opts.device)
    data, info = _load_data(cands[0].config, device, opts.show_progress)
    s0 = initial_rows(data)
    if not len(s0):
        raise BenchError(f"dataset {cands[0].config.minari_id} has no initial states")
    groups = by_configuration(cands)
    if opts.over == "configs" and set(opts.methods) & set(proxies.SAMPLED):
        _check_one_holdout(cands)
    ordered = [c for group in groups.values() for c in group]
    methods = set(opts.methods)
    est: dict[str, list[np.ndarray]] = {m: [] for m in opts.methods}
    pi_parts: list[torch.Tensor] = []
    samples: dict[float, torch.Tensor] = {}  # holdout fraction -> the transitions td scores on
    all_rows = torch.arange(data.obs.shape[0], device=device)
    for group in groups.values():
        algo = load_stacked(group, info, device)
        holdout = group[0].config.holdout
        if holdout not in samples:
            samples[holdout] = proxies.sample_transitions(data, holdout)
        idx = samples[holdout]
        if "fqe" in methods:
            pi_parts.append(policy_actions(algo, data, all_rows))
        for name in ("q0", "td"):
            if name in methods:
                values = proxies.q0(algo, data, s0) if name == "q0" else proxies.td(algo, data, idx)
                if values is None and not opts.explicit:
                    est[name].append(np.full(len(group), np.nan))  # no Q function: no estimate
                    continue
                if values is None:
                    raise BenchError(
                        f"--method {name}: {group[0].config.algo} has no Q function "
                        f"(dataset {group[0].config.dataset}); leave {name} out for it"
                    )
                est[name].append(values.double().cpu().numpy())
        if "likelihood" in methods:
            est["likelihood"].append(proxies.likelihood(algo, data, idx).double().cpu().numpy())
        if "last" in methods:
            est["last"].append(np.array([float(c.step) for c in group]))
        if "random" in methods:
            est["random"].append(np.zeros(len(group)))
    out = {m: np.concatenate(v) for m, v in est.items() if m != "fqe"}
    seconds = 0.0
    if "fqe" in methods:
        pi_rows = torch.cat(pi_parts, 0)
        t0 = time.perf_counter()
        out["fqe"] = _fqe(opts, data, info, device, pi_rows, s0, cands[0].config.dataset)
        seconds = time.perf_counter() - t0
    return DatasetScores(ordered, out, seconds)


def _check_one_holdout(cands: list[Candidate]) -> None:
    """Picks among configurations compare td and likelihood scores: they must be taken on the
    same transitions, so the configurations of an algorithm must hold out the same episodes."""
    seen: dict[str, set[float]] = {}
    for c in cands:
        seen.setdefault(c.config.algo, set()).add(c.config.holdout)
    for algo, fractions in seen.items():
        if len(fractions) > 1:
            listed = " and ".join(f"{h:g}" for h in sorted(fractions))
            raise BenchError(
                f"--over configs: the configurations of {algo} on {cands[0].config.dataset} "
                f"were trained with different --holdout ({listed}), so td and likelihood would "
                "score them on different transitions; select with --over checkpoints, or "
                "leave td and likelihood out"
            )


def _fqe(opts, data, info, device, pi_rows, s0, dataset: str) -> np.ndarray:
    C = pi_rows.shape[0]
    chunks = [list(range(C))] if opts.vectorize else [[i] for i in range(C)]
    values = []
    for ids in chunks:
        fqe = FQE(opts.fqe, data, info, device, ids)
        title = f"FQE on {dataset} ({len(ids)} candidate{'s' if len(ids) > 1 else ''})"
        fqe.fit(pi_rows[ids], opts.show_progress, title)
        values.append(fqe.estimate(s0, pi_rows[ids]).double().cpu().numpy())
    return np.concatenate(values)


def selection_rows(scores: DatasetScores, opts: SelectOptions) -> list[dict]:
    """One row per candidate and method, with each method's pick per (cell, seed) marked."""
    rows = []
    cands = scores.cands
    for method, est in scores.estimates.items():
        picked = np.zeros(len(cands), bool)
        cells: dict[tuple, list[int]] = {}
        scored = [i for i in range(len(cands)) if not np.isnan(est[i])]  # q0/td need a Q
        for i in scored:
            cells.setdefault((*_cell(cands[i], opts), cands[i].config.seed), []).append(i)
        for members in cells.values():
            if method == "random":
                continue
            steps = np.array([cands[i].step for i in members])
            picked[members[pick_order_c(est[members], steps)[0]]] = True
        for i in scored:
            c = cands[i]
            # a value comparable with the evaluation's discounted return (same gamma)
            value = method in VALUE_METHODS and _gamma(method, c, opts) == EVAL_DISCOUNT
            rows.append(
                {
                    "run_id": c.run_id,
                    "key": c.config.key(),
                    "algo": c.config.algo,
                    "dataset": c.config.dataset,
                    "seed": c.config.seed,
                    "step": c.step,
                    "method": method,
                    "cell": _cell(c, opts)[2],
                    "estimate": float(est[i]),
                    "estimate_normalized": float(normalized_score(est[i], c.ref_min, c.ref_max))
                    if value
                    else float("nan"),
                    "true_score": c.true_score,
                    "true_value_normalized": float(
                        normalized_score(c.true_value, c.ref_min, c.ref_max)
                    ),
                    "picked": bool(picked[i]),
                    "settings": settings(opts.fqe)
                    if method == "fqe"
                    else proxies.sample_label(c.config.holdout)
                    if method in proxies.SAMPLED
                    else "",
                }
            )
    return rows


def _cell(c: Candidate, opts: SelectOptions) -> tuple[str, str, str]:
    dataset, algo, key = c.cell
    return dataset, algo, key if opts.over == "checkpoints" else ALL_CONFIGS


def _gamma(method: str, c: Candidate, opts: SelectOptions) -> float | None:
    if method == "fqe":
        return opts.fqe.gamma
    cfg = c.config.algo_config
    return cfg.get("gamma", cfg.get("discount_factor"))


def metrics_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per cell (dataset, algo, cell: a run key, or ALL_CONFIGS) and method, and over all cells per method: regret@1,
    regret@3, rank correlation, absolute error (means over seeds, 95% bootstrap CIs) and the
    mean true score of the picks."""
    per_seed = []
    for (dataset, algo, key, seed, method), g in table.groupby(
        ["dataset", "algo", "cell", "seed", "method"], sort=True
    ):
        g = g.sort_values("step")
        err = None
        if method in VALUE_METHODS and g["true_value_normalized"].notna().all():
            err = (g["estimate_normalized"] - g["true_value_normalized"]).abs().to_numpy()
        m = seed_metrics(
            method, g["estimate"].to_numpy(), g["true_score"].to_numpy(), g["step"].to_numpy(), err
        )
        per_seed.append(
            {
                "dataset": dataset,
                "algo": algo,
                "key": key,
                "seed": seed,
                "method": method,
                "candidates": len(g),
            }
            | m
        )
    seeds = pd.DataFrame(per_seed)
    out = []
    metrics = ("regret_1", "regret_3", "rank_corr", "abs_error")

    def summarize(frames: list[pd.DataFrame]) -> dict:
        row: dict = {
            "seeds": sum(len(f) for f in frames),
            "candidates": int(sum(f["candidates"].sum() for f in frames)),
        }
        for name in metrics:
            tasks = [f[name].dropna().to_numpy() for f in frames]
            point, lo, hi = interval_estimate(tasks, _mean_of_task_means)
            row |= {name: point, f"{name}_lo": lo, f"{name}_hi": hi}
        row["picked_score"] = float(np.mean([f["picked_score"].mean() for f in frames]))
        return row

    for (dataset, algo, key, method), g in seeds.groupby(["dataset", "algo", "key", "method"]):
        out.append(
            {"dataset": dataset, "algo": algo, "key": key, "method": method} | summarize([g])
        )
    for method, g in seeds.groupby("method"):
        cells = [c for _, c in g.groupby(["dataset", "algo", "key"])]
        out.append({"dataset": "(all)", "algo": "", "key": "", "method": method} | summarize(cells))
    order = {m: i for i, m in enumerate(METHODS)}
    frame = pd.DataFrame(out)
    frame["_o"] = frame["method"].map(order)
    frame["_all"] = frame["dataset"] == "(all)"
    return frame.sort_values(["_all", "dataset", "algo", "key", "_o"]).drop(columns=["_o", "_all"])


def _mean_of_task_means(tasks: list[np.ndarray]) -> np.ndarray:
    means = [t.mean(-1) for t in tasks if t.shape[-1]]
    return np.mean(means, axis=0) if means else np.array(np.nan)


def run_selection(opts: SelectOptions) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Score every candidate, write selection.parquet (replacing the rows of the datasets scored
    here), and return (the table, its metrics, FQE seconds per dataset)."""
    cands = find_candidates(opts.results_dir, opts.datasets)
    by_dataset: dict[str, list[Candidate]] = {}
    for c in cands:
        by_dataset.setdefault(c.config.dataset, []).append(c)
    for group in by_dataset.values():  # every mix refused before anything trains
        check_one_dataset(group)
    rows, seconds = [], {}
    for dataset, group in by_dataset.items():
        scores = score_dataset(group, opts)
        rows += selection_rows(scores, opts)
        seconds[dataset] = scores.fqe_seconds
    table = pd.DataFrame(rows)
    path = Path(opts.results_dir) / SELECTION_TABLE
    merged = table
    if path.is_file():
        old = read_selection(path)
        same_scope = (old["cell"] == ALL_CONFIGS) == (opts.over == "configs")
        keep = old[
            ~(old["dataset"].isin(by_dataset) & old["method"].isin(opts.methods) & same_scope)
        ]
        merged = pd.concat([keep, table], ignore_index=True) if len(keep) else table
    write_selection(path, merged)
    return table, metrics_table(table), seconds


def write_selection(path: Path, table: pd.DataFrame) -> None:
    atomic_write_table(path, table[SELECTION_SCHEMA.names].to_dict("records"), SELECTION_SCHEMA)


def read_selection(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise BenchError(f"{path}: not a readable parquet table ({type(e).__name__})") from None
    missing = [n for n in SELECTION_SCHEMA.names if n not in table.column_names]
    if missing:
        raise BenchError(f"{path}: not a bench selection table (no columns {', '.join(missing)})")
    return table.select(SELECTION_SCHEMA.names).to_pandas()
