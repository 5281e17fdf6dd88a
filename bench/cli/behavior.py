"""`bench behavior train`: online training of behavior policies."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bench.cli.app import behavior_app, stdout


@behavior_app.command("train")
def behavior_train(
    algo: str = typer.Option(
        ..., "--algo", help="An online-capable algorithm: redq or discrete_sac."
    ),
    env: str = typer.Option(..., "--env", help="gymnasium env id, e.g. Pendulum-v1."),
    steps: int = typer.Option(
        ..., "--steps", help="Environment steps to collect (1 to 100,000,000)."
    ),
    utd: int = typer.Option(
        1, "--utd", help="Updates per environment step (update-to-data ratio G), 1 to 1000."
    ),
    seed: int = typer.Option(
        0, help="Seed of networks, exploration and env resets (0 to 2**31-1)."
    ),
    batch_size: int = typer.Option(256, help="Batch size of each update."),
    start_steps: int = typer.Option(
        1000, help="Uniform-random steps before the policy acts and updates begin (0 or more)."
    ),
    eval_every: int = typer.Option(
        1000, help="Evaluate and save a policy checkpoint every N env steps (at most --steps)."
    ),
    eval_episodes: int = typer.Option(10, help="Episodes per evaluation."),
    preset: str | None = typer.Option(None, help="Named config preset."),
    set_: list[str] = typer.Option([], "--set", help="Override a config field: --set key=value."),
    out: Path = typer.Option(
        Path("behaviors"), help="Folder for checkpoints, checkpoints.json, replay.npz."
    ),
    threads: int | None = typer.Option(None, help="torch threads, 1 to 1024 (default: torch's)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Train ALGO online on ENV; save evaluated policy checkpoints and the replay buffer."""
    import torch

    from bench.algos.base import parse_overrides
    from bench.collect.online import (
        OnlineSpec,
        check_spec,
        check_threads,
        train_online,
    )

    spec = OnlineSpec(
        algo=algo,
        env=env,
        steps=steps,
        utd=utd,
        seed=seed,
        batch_size=batch_size,
        start_steps=start_steps,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        preset=preset,
        overrides=parse_overrides(set_),
        out=out,
    )
    check_threads(threads)
    check_spec(spec)
    if threads:
        torch.set_num_threads(threads)
    records = train_online(spec, show_progress=not quiet).records
    table = Table(title=f"{algo} online on {env}: saved policies in {out}")
    for col in ("step", "return mean", "return std", "file"):
        table.add_column(col, justify="right")
    for r in records:
        table.add_row(
            str(r["step"]), f"{r['return_mean']:.1f}", f"{r['return_std']:.1f}", r["file"]
        )
    stdout.print(table)
