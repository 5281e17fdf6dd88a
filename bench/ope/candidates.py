"""Candidates for offline policy selection: every kept policy of a results folder, with the true
score its periodic evaluation measured, loaded back many at a time.

A candidate is one (run, step) whose policy the run kept (bench.run.policies) and evaluated. The
candidates of one configuration load into one algorithm object whose seed dimension holds them
(candidate i = member i), so that acting and Q estimates for all of them are one batched call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from bench.algos import get_algorithm
from bench.algos.base import resolve_config
from bench.errors import BenchError
from bench.results.schema import runs_dir
from bench.results.store import read_runs
from bench.run.config import RunConfig
from bench.run.policies import kept_steps, load_policies, load_policy_state

#: Observations per acting call (bounds the memory of a Nature CNN forward pass).
ACT_CHUNK = 4096


@dataclass(frozen=True)
class Candidate:
    run_id: str
    run_dir: Path
    config: RunConfig
    step: int
    true_score: float  # normalized score of the periodic evaluation at this step
    true_return: float  # its mean undiscounted return
    true_value: float  # its mean discounted return (EVAL_DISCOUNT); nan in older tables
    ref_min: float
    ref_max: float

    @property
    def cell(self) -> tuple[str, str, str]:
        """The leaderboard cell: dataset, algorithm, configuration key."""
        return self.config.dataset, self.config.algo, self.config.key()


def find_candidates(results_dir: Path, datasets: list[str] | None = None) -> list[Candidate]:
    """All kept and evaluated policies under results_dir (of these datasets, when given).
    One error line when there are none."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise BenchError(f"--results {results_dir}: no such folder")
    configs, evals, _ = read_runs(results_dir)
    if not configs:
        raise BenchError(f"--results {results_dir}: no runs there")
    out: list[Candidate] = []
    seen_datasets: set[str] = set()
    for run_id, raw in sorted(configs.items()):
        config = RunConfig.from_json(raw, f"{run_id}/config.json")
        seen_datasets.add(config.dataset)
        if datasets and config.dataset not in datasets:
            continue
        run_dir = runs_dir(results_dir) / run_id
        rows = evals[evals["run_id"] == run_id].set_index("step")
        for step in kept_steps(run_dir):
            if step not in rows.index:
                continue  # kept but its evaluation not written (a killed run): not a candidate
            row = rows.loc[step]
            if isinstance(row, pd.DataFrame):
                row = row.iloc[-1]
            value = row["discounted_return_mean"]
            out.append(
                Candidate(
                    run_id,
                    run_dir,
                    config,
                    int(step),
                    float(row["normalized_score"]),
                    float(row["return_mean"]),
                    math.nan if pd.isna(value) else float(value),
                    float(row["ref_min"]),
                    float(row["ref_max"]),
                )
            )
    if datasets:
        unknown = sorted(set(datasets) - seen_datasets)
        if unknown:
            raise BenchError(f"--dataset {unknown[0]}: no runs of it under {results_dir}")
    if not out:
        raise BenchError(
            f"--results {results_dir}: no kept policies (runs made with --keep-policies 0, or by "
            "a bench that did not keep them); run them again to select among their checkpoints"
        )
    return out


def check_one_dataset(cands: list[Candidate]) -> None:
    """Candidates of one selection must share one dataset (the same build)."""
    builds = {(c.config.minari_id, c.config.dataset_hash) for c in cands}
    if len(builds) > 1:
        names = ", ".join(f"{m} ({h[:8]})" for m, h in sorted(builds))
        raise BenchError(
            f"candidates of different datasets in one selection: {names}; select them apart"
        )


def by_configuration(cands: list[Candidate]) -> dict[str, list[Candidate]]:
    """Candidates grouped by configuration key, each group in (seed, step) order."""
    groups: dict[str, list[Candidate]] = {}
    for c in sorted(cands, key=lambda c: (c.config.key(), c.config.seed, c.step)):
        groups.setdefault(c.config.key(), []).append(c)
    return groups


def load_stacked(cands: list[Candidate], info, device: torch.device):
    """One algorithm object holding these candidates (one configuration) as its members.
    Member i is seeded i: a policy that samples even when acting deterministically (BCQ's
    perturbed samples) draws from a fixed stream of its own, not the run's."""
    config = cands[0].config
    cls = get_algorithm(config.algo)
    algo = cls(
        resolve_config(cls, config.preset, config.overrides), info, device, list(range(len(cands)))
    )
    states = [load_policy_state(c.run_dir, c.step, c.run_id) for c in cands]
    try:
        load_policies(algo, states)
    except (KeyError, RuntimeError, ValueError) as e:
        raise BenchError(
            f"kept policies of {cands[0].run_id} do not fit {config.algo}'s networks "
            f"({type(e).__name__}); they were saved by another version"
        ) from None
    return algo


def _as_input(obs: torch.Tensor) -> torch.Tensor:
    return obs if obs.dtype == torch.uint8 else obs.float()


@torch.no_grad()
def policy_actions(algo, data, rows: torch.Tensor) -> torch.Tensor:
    """Each member's deterministic action at the observations of these obs rows:
    [C, R] (discrete) or [C, R, act_dim]."""
    C, out = algo.num_seeds, []
    for i in range(0, len(rows), ACT_CHUNK):
        r = rows[i : i + ACT_CHUNK]
        obs = _as_input(data.observations(r))
        mask = None if data.action_mask is None else data.action_mask[r].expand(C, -1, -1)
        out.append(algo.act(obs.expand(C, *obs.shape), mask=mask, deterministic=True))
    return torch.cat(out, 1)


@torch.no_grad()
def q_values(algo, data, rows: torch.Tensor, actions: torch.Tensor) -> torch.Tensor | None:
    """Each member's own Q(s, a) at these obs rows and actions [C, R, ...] -> [C, R], or None
    when the algorithm has no Q function."""
    C, out = algo.num_seeds, []
    for i in range(0, len(rows), ACT_CHUNK):
        obs = _as_input(data.observations(rows[i : i + ACT_CHUNK]))
        q = algo.q_value(obs.expand(C, *obs.shape), actions[:, i : i + ACT_CHUNK])
        if q is None:
            return None
        out.append(q)
    return torch.cat(out, 1)


def initial_rows(data) -> torch.Tensor:
    """Obs rows of the dataset's initial states s_0: each episode's first observation."""
    t = torch.arange(len(data), device=data.episode_end.device)
    first = torch.ones_like(t, dtype=torch.bool)
    first[1:] = data.episode_end[:-1] == t[1:]  # the previous transition's episode ends here
    return data.obs_index[first]
