"""Runs -> scores. Every run is read back once with its RunConfig; runs are grouped by their
configuration's key (never by algorithm name alone), labelled by what sets a configuration apart
from the others of its algorithm on the same dataset (e.g. `bc (steps=1000)`), and one
configuration and seed is one run: a second run of the same key and seed is kept out and named.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.results.schema import runs_dir
from bench.results.store import is_complete, read_runs
from bench.run.checkpoint import is_locked
from bench.run.config import RunConfig

#: The scores a run can be ranked by (ScoreSpec.kind), and selected:METHOD (bench select).
SCORE_KINDS = ("final", "last", "best")
#: The selection methods whose pick can score a run (`random` scores its expectation).
SELECTED = ("fqe", "q0", "td", "likelihood", "last", "random")


@dataclass(frozen=True)
class ScoreSpec:
    """Which evaluation makes a run's score: its final evaluation (final; runs without one: the
    mean of their last k evaluations), the mean of the learning curve's last k (last), or the
    max over it (best, optimistic)."""

    kind: str = "final"
    last_k: int = 3

    def __post_init__(self):
        if self.kind not in SCORE_KINDS and self.method not in SELECTED:
            raise BenchError(
                f"unknown score '{self.kind}'; choose {', '.join(SCORE_KINDS)} or "
                f"selected:METHOD ({', '.join(SELECTED)})"
            )
        if isinstance(self.last_k, bool) or not isinstance(self.last_k, int) or self.last_k < 1:
            raise BenchError(f"--last-k must be an integer >= 1, got {self.last_k}")

    @property
    def method(self) -> str | None:
        """The selection method of a selected:METHOD score, else None."""
        head, _, method = self.kind.partition(":")
        return method if head == "selected" else None

    def describe(self) -> str:
        if self.method is not None:
            what = (
                "the mean true score of a seed's candidates (a uniform pick's expectation)"
                if self.method == "random"
                else f"the true score of the checkpoint {self.method} picks per seed from the "
                "data alone"
            )
            return (
                f"{self.kind}: {what} (bench select; periodic evaluations); runs without "
                "a pick are left out"
            )
        if self.kind == "best":
            return "best: the max over all evaluations of a run (optimistic: selects on the test)"
        last = f"the mean of each run's last {self.last_k} periodic evaluation(s)"
        if self.kind == "last":
            return f"last: {last}"
        return (
            f"final: each run's final evaluation of its last policy (env seeds apart from "
            f"the learning curve's; runs without one: {last})"
        )


RUN_COLUMNS = (
    "run_id key label algo dataset seed score return_mean step complete running duplicate_of "
    "episodes eval_eps behavior_score scored"
).split()
#: RUN_COLUMNS' `scored`: what a run's score was taken from
SCORED_FINAL, SCORED_CURVE = "final evaluation", "learning curve"


@dataclass
class Results:
    """A results folder read back: configs by run id, all eval rows, and one row per run."""

    folder: Path
    configs: dict[str, RunConfig]
    meta: dict[str, dict]  # run_id -> config.json as written (behavior score, provenance, ...)
    evals: pd.DataFrame
    runs: pd.DataFrame  # RUN_COLUMNS
    finals: pd.DataFrame  # the final evaluations (EVAL_SCHEMA), one row per run that has one

    @property
    def counted(self) -> pd.DataFrame:
        """Complete runs, one per configuration and seed: what tables and plots count."""
        r = self.runs
        return r[r.complete & r.duplicate_of.isna() & r.score.notna()]

    @property
    def in_progress(self) -> pd.DataFrame:
        r = self.runs
        return r[~r.complete & r.duplicate_of.isna()]

    @property
    def duplicates(self) -> pd.DataFrame:
        return self.runs[self.runs.duplicate_of.notna()]

    def command(self, key: str, seeds: list[int]) -> str:
        """The command that reproduces the runs of one configuration and these seeds."""
        cfg = next(c for c in self.configs.values() if c.key() == key)
        if len(seeds) == 1:
            return dataclasses.replace(cfg, seed=int(seeds[0])).command()
        return cfg.command(seed_list(seeds))


def load_results(results_dir: Path, spec: ScoreSpec = ScoreSpec()) -> Results:
    raw, evals, finals = read_runs(results_dir)
    configs = {
        run_id: RunConfig.from_json(cfg, str(runs_dir(results_dir) / run_id / "config.json"))
        for run_id, cfg in raw.items()
    }
    keys = {run_id: c.key() for run_id, c in configs.items()}
    evals = evals[evals.run_id.isin(configs)].copy()
    evals["key"] = evals.run_id.map(keys)
    finals = finals[finals.run_id.isin(configs)].drop_duplicates("run_id").copy()
    finals["key"] = finals.run_id.map(keys)
    final_of = finals.set_index("run_id")
    picks = _selected_scores(results_dir, spec.method) if spec.method else {}
    rows = []
    by_run = dict(tuple(evals.groupby("run_id", sort=False)))
    for run_id, c in configs.items():
        ev = by_run.get(run_id)
        score = ret = float("nan")
        step, episodes, scored = 0, c.eval_episodes, SCORED_CURVE
        has_final = run_id in final_of.index
        if ev is not None and len(ev):
            ev = ev.sort_values("step")
            step, episodes = int(ev.step.iloc[-1]), int(ev.episodes.iloc[-1])
            if spec.method is not None:
                score, at = picks.get(run_id, (float("nan"), None))
                picked = ev[ev.step == at]
                ret = float(picked.return_mean.iloc[-1]) if len(picked) else float("nan")
            elif spec.kind == "best":
                best = ev.loc[ev.normalized_score.idxmax()]
                score, ret = float(best.normalized_score), float(best.return_mean)
            elif spec.kind == "final" and has_final:
                fin = final_of.loc[run_id]
                score, ret = float(fin.normalized_score), float(fin.return_mean)
                episodes, scored = int(fin.episodes), SCORED_FINAL
            else:
                tail = ev.tail(spec.last_k)
                score, ret = float(tail.normalized_score.mean()), float(tail.return_mean.mean())
        complete = is_complete(
            {"steps": c.steps, "final_episodes": c.final_episodes}, step, has_final
        )
        rows.append(
            {
                "run_id": run_id,
                "key": keys[run_id],
                "label": c.algo,
                "algo": c.algo,
                "dataset": c.dataset,
                "seed": c.seed,
                "score": score,
                "return_mean": ret,
                "step": step,
                "complete": complete,
                "running": not complete and is_locked(runs_dir(results_dir) / run_id),
                "duplicate_of": None,
                "episodes": episodes,
                "eval_eps": c.algo_config.get("eval_eps"),
                "behavior_score": raw[run_id].get("behavior_score"),
                "scored": scored,
            }
        )
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS)
    runs["behavior_score"] = pd.to_numeric(runs.behavior_score, errors="coerce")
    if len(runs):
        runs["duplicate_of"] = _duplicates(runs)
        # labels tell apart what the tables show: the counted runs; the rest among all runs
        counted = runs[runs.complete & runs.duplicate_of.isna()]
        runs["label"] = _labels(counted, configs).reindex(runs.index)
        runs["label"] = runs.label.fillna(_labels(runs, configs))
    return Results(Path(results_dir), configs, raw, evals, runs, finals)


def _selected_scores(results_dir: Path, method: str) -> dict[str, tuple[float, int | None]]:
    """run_id -> (the true score of the method's pick, its step); random: the candidates' mean
    score, no step."""
    from bench.ope.select import SELECTION_TABLE, read_selection

    path = Path(results_dir) / SELECTION_TABLE
    if not path.is_file():
        raise BenchError(f"no {SELECTION_TABLE} under {results_dir}: run `bench select` first")
    table = read_selection(path)
    rows = table[(table.method == method) & (table.cell == table.key)]  # per configuration
    if not len(rows):
        raise BenchError(f"{path} has no picks of method {method}: run `bench select` with it")
    if method == "fqe":  # estimates of another FQE are not this bench's picks
        from bench.ope.fqe import FQE_VERSION, settings_version

        made = {settings_version(s) for s in rows.settings}
        if made != {FQE_VERSION}:
            by = ", ".join("no version" if v is None else f"v{v}" for v in sorted(made, key=str))
            raise BenchError(
                f"{path}: its fqe picks were made by FQE {by}, this bench's FQE is "
                f"v{FQE_VERSION}: run `bench select` again"
            )
    if method == "random":
        return {k: (v, None) for k, v in rows.groupby("run_id").true_score.mean().items()}
    picked = rows[rows.picked]
    return {r.run_id: (float(r.true_score), int(r.step)) for r in picked.itertuples()}


def _labels(runs: pd.DataFrame, configs: dict[str, RunConfig]) -> pd.Series:
    """algo, plus what differs between the configurations of that algorithm on that dataset."""
    first = runs.drop_duplicates("key").set_index("key").run_id
    label = {}
    for _, g in runs.groupby(["algo", "dataset"], sort=False):
        keys = list(dict.fromkeys(g.key))
        cfgs = {k: configs[first[k]] for k in keys}
        for k in keys:
            diff = cfgs[k].differences([cfgs[o] for o in keys if o != k])
            text = ", ".join(f"{n}={_fmt(v)}" for n, v in diff.items())
            label[k] = f"{cfgs[k].algo} ({text})" if text else cfgs[k].algo
    return runs.key.map(label).astype(object)


def _fmt(v) -> str:
    if isinstance(v, list | tuple):
        return ",".join(map(str, v))
    return str(v)


def _duplicates(runs: pd.DataFrame) -> pd.Series:
    """One configuration and seed is one run: keep the complete one, else the most advanced,
    ties to the earliest; the others name the run kept."""
    order = runs.assign(_rank=~runs.complete).sort_values(
        ["_rank", "step", "run_id"], ascending=[True, False, True]
    )
    kept = order.drop_duplicates(["key", "seed"]).set_index(["key", "seed"]).run_id
    dup = [
        None if kept[(k, s)] == r else kept[(k, s)]
        for r, k, s in zip(runs.run_id, runs.key, runs.seed, strict=True)
    ]
    return pd.Series(dup, index=runs.index, dtype=object)


def seed_list(seeds: list[int]) -> str:
    """[0, 1, 2] -> "0-2"; [0, 2] -> "0,2" (the --seeds syntax of bench sweep)."""
    seeds = sorted(set(int(s) for s in seeds))
    if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def per_task(runs: pd.DataFrame, datasets: list[str]) -> list[np.ndarray]:
    """The scores of runs, one array per dataset in the given order (the stratified bootstrap's
    strata)."""
    return [runs.score[runs.dataset == d].to_numpy(dtype=np.float64) for d in datasets]
