"""Results folders written directly in the results schema (no training), for analysis tests."""

from pathlib import Path

from bench.results.schema import (
    EVAL_SCHEMA,
    FINAL_TABLE,
    atomic_write_json,
    atomic_write_table,
    runs_dir,
)
from bench.run.config import RunConfig


def fake_config(
    algo: str, dataset: str, seed: int, steps: int, eval_every: int = 100, **changes
) -> RunConfig:
    values = dict(
        algo=algo,
        dataset=dataset,
        env=None,
        minari_id=f"test/{dataset}-v0",
        dataset_hash="0123456789abcdef",
        seed=seed,
        steps=steps,
        eval_every=eval_every,
        eval_episodes=10,
        batch_size=64,
        preset=None,
        overrides={},
        algo_config={"eval_eps": 0.001, "lr": 0.001},
        eval_env={"id": "CartPole-v1", "kwargs": {}, "atari": None, "frame_stack": 1},
    )
    return RunConfig(**(values | changes))


def make_run(
    results: Path,
    algo: str,
    dataset: str,
    seed: int,
    scores: list[float],
    eval_every: int = 100,
    steps: int | None = None,
    behavior: float = 40.0,
    suffix: str = "fake",
    final: float | None = None,
    **changes,
) -> str:
    """A run whose evaluations at eval_every, 2 * eval_every, ... have these normalized
    scores (ref 0 / 100, so returns equal scores). steps: configured total (default: the
    last evaluation's step, i.e. a complete run). changes: other RunConfig fields."""
    run_id = f"{algo}__{dataset}__s{seed}__{suffix}"
    d = runs_dir(results) / run_id
    d.mkdir(parents=True, exist_ok=True)
    last = eval_every * len(scores)
    cfg = fake_config(
        algo, dataset, seed, steps if steps is not None else last, eval_every, **changes
    )
    atomic_write_json(
        d / "config.json", cfg.to_json() | {"run_id": run_id, "behavior_score": behavior}
    )
    rows = [
        {
            "run_id": run_id,
            "key": cfg.key(),
            "algo": algo,
            "dataset": dataset,
            "seed": seed,
            "step": eval_every * (i + 1),
            "wall_time_s": float(i),
            "return_mean": s,
            "return_std": 0.0,
            "episodes": 10,
            "ref_min": 0.0,
            "ref_max": 100.0,
            "ref_source": "test",
            "normalized_score": s,
        }
        for i, s in enumerate(scores)
    ]
    atomic_write_table(d / "eval.parquet", rows, EVAL_SCHEMA)
    if final is not None:
        row = rows[-1] | {
            "return_mean": final,
            "normalized_score": final,
            "episodes": cfg.final_episodes,
        }
        atomic_write_table(d / FINAL_TABLE, [row], EVAL_SCHEMA)
    return run_id
