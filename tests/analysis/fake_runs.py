"""Results folders written directly in the results schema (no training), for analysis tests."""

from pathlib import Path

from bench.results import EVAL_SCHEMA, atomic_write_json, atomic_write_table, runs_dir


def make_run(
    results: Path,
    algo: str,
    dataset: str,
    seed: int,
    scores: list[float],
    eval_every: int = 100,
    steps: int | None = None,
    behavior: float = 40.0,
) -> str:
    """A run whose evaluations at eval_every, 2 * eval_every, ... have these normalized
    scores (ref 0 / 100, so returns equal scores). steps: configured total (default: the
    last evaluation's step, i.e. a complete run)."""
    run_id = f"{algo}__{dataset}__s{seed}__fake"
    d = runs_dir(results) / run_id
    d.mkdir(parents=True, exist_ok=True)
    last = eval_every * len(scores)
    atomic_write_json(d / "config.json", {
        "run_id": run_id, "algo": algo, "dataset": dataset, "seed": seed,
        "steps": steps if steps is not None else last, "eval_every": eval_every,
        "eval_episodes": 10, "batch_size": 64, "preset": None, "overrides": {},
        "config": {"eval_eps": 0.001}, "env": None, "behavior_score": behavior,
    })  # fmt: skip
    rows = [
        {"run_id": run_id, "algo": algo, "dataset": dataset, "seed": seed,
         "step": eval_every * (i + 1), "wall_time_s": float(i), "return_mean": s,
         "return_std": 0.0, "episodes": 10, "ref_min": 0.0, "ref_max": 100.0,
         "ref_source": "test", "normalized_score": s}
        for i, s in enumerate(scores)
    ]  # fmt: skip
    atomic_write_table(d / "eval.parquet", rows, EVAL_SCHEMA)
    return run_id
