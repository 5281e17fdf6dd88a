"""Kept policies: the acting weights of every evaluated policy, for offline policy selection.

At every evaluation each seed writes <run_dir>/policies/step_<step>.pt: the networks act() needs
(Algorithm.policy_modules) and, where the algorithm has a Q function, the networks of its own Q
estimate (Algorithm.q_modules), with the tensors they read (observation statistics, a reward
scale). No optimizer state and no target networks: an MLP policy is a few hundred KiB, a Nature
CNN one a few MiB to 13 MiB (measured sizes are in README). `--keep-policies N` keeps the last N
evaluations' files of a run (0: none); by default all are kept. A kept policy is loaded back into
an algorithm whose seed dimension holds candidates (bench.ope.candidates). They are written after
the evaluation's checkpoints: a run stopped in between resumes without that one kept policy (one
candidate fewer), never without its checkpoint.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from bench.data.safe_load import load_torch, plain
from bench.errors import BenchError
from bench.results.schema import atomic_write_bytes
from bench.seeding import split_seeds, stack_seeds

POLICY_DIR = "policies"
#: Kept-policy file layout: one seed's slice ([1, ...] tensors) of the kept networks.
POLICY_FORMAT = 1


def policy_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / POLICY_DIR / f"step_{step:010d}.pt"


def kept_steps(run_dir: Path) -> list[int]:
    """The steps whose policy run_dir keeps, ascending."""
    folder = Path(run_dir) / POLICY_DIR
    steps = []
    for path in folder.glob("step_*.pt") if folder.is_dir() else []:
        digits = path.stem.removeprefix("step_")
        if digits.isdigit():
            steps.append(int(digits))
    return sorted(steps)


def kept_modules(algo) -> dict[str, torch.nn.Module]:
    return algo.policy_modules() | algo.q_modules()


def _kept_state(algo) -> dict[str, Any]:
    return {
        "modules": {k: m.state_dict() for k, m in kept_modules(algo).items()},
        "tensors": {k: t.detach() for k, t in algo.tensors().items()},
    }


def save_policies(dirs: list[Path], run_ids: list[str], algo, step: int, keep: int | None) -> None:
    """Each seed's kept policy at this step; then only the last `keep` files stay (None: all)."""
    if keep == 0:
        return
    per_seed = split_seeds(_kept_state(algo), len(dirs))
    for run_dir, run_id, state in zip(dirs, run_ids, per_seed, strict=True):
        path = policy_path(run_dir, step)
        try:
            path.parent.mkdir(exist_ok=True)
        except OSError as e:
            raise BenchError(f"cannot create {path.parent}: {e.strerror}") from None
        buf = io.BytesIO()
        torch.save(
            plain(
                {"format": POLICY_FORMAT, "run_id": run_id, "algo": algo.name, "step": step} | state
            ),
            buf,
        )
        atomic_write_bytes(path, buf.getvalue())
        if keep is not None:
            for old in kept_steps(run_dir)[:-keep]:
                policy_path(run_dir, old).unlink(missing_ok=True)


def load_policy_state(run_dir: Path, step: int, run_id: str) -> dict[str, Any]:
    """One kept policy's state ({"modules", "tensors"}, one seed's slice); one error line when
    the file is unreadable or not this run's."""
    path = policy_path(run_dir, step)
    payload = load_torch(path, "kept policy")
    if (
        not isinstance(payload, dict)
        or payload.get("format") != POLICY_FORMAT
        or payload.get("run_id") != run_id
        or payload.get("step") != step
    ):
        raise BenchError(f"{path} is not the kept policy of run {run_id} at step {step}")
    return {"modules": payload["modules"], "tensors": payload["tensors"]}


def load_policies(algo, states: list[dict[str, Any]]) -> None:
    """Kept states of one configuration, one per member of algo's seed dimension, loaded into
    algo's kept networks and tensors (candidate i = member i)."""
    if len(states) != algo.num_seeds:
        raise ValueError(f"{len(states)} kept policies for {algo.num_seeds} members")
    stacked = stack_seeds(states)
    for k, m in kept_modules(algo).items():
        m.load_state_dict(stacked["modules"][k])
    with torch.no_grad():
        for k, t in algo.tensors().items():
            t.copy_(stacked["tensors"][k].to(t.device))
