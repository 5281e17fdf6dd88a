"""Evaluating a job's seeds: the periodic evaluations that make the learning curve (each written
to the seeds' tables with a checkpoint per seed, then the evaluated policies are kept), and the
final evaluation of the last policy (final.parquet, on env seeds of its own)."""

from __future__ import annotations

import time
from pathlib import Path

from bench.evaluate import EVAL_DISCOUNT, algorithm_returns, normalized_score
from bench.results.schema import (
    EVAL_SCHEMA,
    FINAL_TABLE,
    TRAIN_SCHEMA,
    atomic_write_table,
)
from bench.run.checkpoint import save_checkpoint
from bench.run.config import RunConfig
from bench.run.policies import save_policies
from bench.run.prepare import Prepared
from bench.seeding import env_seed, split_seeds


def evaluate_and_checkpoint(
    dirs: list[Path],
    configs: list[RunConfig],
    prep: Prepared,
    algo,
    sampler,
    step: int,
    t0: float,
    eval_rows: list[list[dict]],
    train_rows: list[list[dict]],
    on_eval=None,
) -> list[dict]:
    """The evaluation at `step` of every seed: its row appended to eval_rows, both tables and
    the seed's checkpoint written (in that order), on_eval called, then the evaluated policies
    kept. Returns the rows."""
    c, S = prep.config, len(configs)
    run_ids = [d.name for d in dirs]
    algo.act_rng.reseed("eval", step)  # a seed's acting noise is its own
    seeds = [env_seed("eval", cfg.seed) for cfg in configs]
    t_eval = time.perf_counter()
    returns, discounted = algorithm_returns(
        algo, prep.card.env, c.eval_episodes, seeds, EVAL_DISCOUNT
    )
    wall = time.perf_counter() - t0
    took = time.perf_counter() - t_eval
    rows = [
        eval_row(run_ids[s], c.key(), configs[s], step, wall, returns[s], prep, discounted[s], took)
        for s in range(S)
    ]
    per_seed = split_seeds({"algo": algo.state_dict(), "sampler": sampler.state_dict()}, S)
    for s, run_dir in enumerate(dirs):
        eval_rows[s].append(rows[s])
        atomic_write_table(run_dir / "eval.parquet", eval_rows[s], EVAL_SCHEMA)
        atomic_write_table(run_dir / "train.parquet", train_rows[s], TRAIN_SCHEMA)
        save_checkpoint(
            run_dir / "checkpoint.pt",
            run_ids[s],
            configs[s].fingerprint(),
            per_seed[s],
            step,
            wall,
            eval_rows[s],
            train_rows[s],
        )
        if on_eval is not None:
            on_eval(rows[s])
    # the evaluated policies, after the checkpoints (a resume needs only those)
    save_policies(dirs, run_ids, algo, step, c.keep_policies)
    return rows


def final_evaluation(
    dirs: list[Path], configs: list[RunConfig], prep: Prepared, algo, t0: float
) -> list[dict]:
    """The last policy of every seed, over final_episodes episodes on env seeds of its own
    (the seed plan's "final" purpose), written to final.parquet apart from the
    learning curve. A run is complete once this file exists; a job killed before it resumes from
    its last checkpoint (the last step's) and only evaluates."""
    c = prep.config
    algo.act_rng.reseed("final", c.steps)
    seeds = [env_seed("final", cfg.seed) for cfg in configs]
    t_eval = time.perf_counter()
    returns, discounted = algorithm_returns(
        algo, prep.card.env, c.final_episodes, seeds, EVAL_DISCOUNT
    )
    wall = time.perf_counter() - t0
    took = time.perf_counter() - t_eval
    rows: list[dict] = []
    for s, run_dir in enumerate(dirs):
        rows.append(
            eval_row(
                run_dir.name,
                c.key(),
                configs[s],
                c.steps,
                wall,
                returns[s],
                prep,
                discounted[s],
                took,
            )
        )
        atomic_write_table(run_dir / FINAL_TABLE, [rows[-1]], EVAL_SCHEMA)
    return rows


def eval_row(
    run_id,
    key,
    config: RunConfig,
    step: int,
    wall: float,
    returns,
    prep,
    discounted,
    eval_time: float,
) -> dict:
    return {
        "run_id": run_id,
        "key": key,
        "algo": config.algo,
        "dataset": config.dataset,
        "seed": config.seed,
        "step": step,
        "wall_time_s": wall,
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "episodes": len(returns),
        "ref_min": prep.ref_min,
        "ref_max": prep.ref_max,
        "ref_source": prep.card.ref_source,
        "normalized_score": float(normalized_score(returns.mean(), prep.ref_min, prep.ref_max)),
        "discounted_return_mean": float(discounted.mean()),
        "eval_time_s": eval_time,
    }
