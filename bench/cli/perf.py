"""`bench perf`: throughput and memory benchmark."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bench.cli.app import app, stdout
from bench.errors import BenchError


@app.command("perf")
def perf_cmd(
    algos: str = typer.Option("all", help="Comma-separated algorithm names, or 'all'."),
    threads: str = typer.Option("1,2", help="Comma-separated torch thread counts (1-1024)."),
    repeats: int = typer.Option(3, help="Timed windows per case (1-1000); the median is reported."),
    min_time: float = typer.Option(1.0, help="Seconds per timed window (over 0, at most 600)."),
    acting: bool = typer.Option(
        True, "--acting/--no-acting", help="Also measure acting throughput."
    ),
    memory_sizes: str = typer.Option(
        "100000,1000000",
        "--memory-sizes",
        help="Atari dataset sizes (transitions, 1,000-10,000,000) whose loading memory is "
        "measured; '' skips. Each writes a synthetic lossless dataset to the temp folder "
        "(~7.1 GB for 1M; refused up front when it does not fit).",
    ),
    json_path: Path | None = typer.Option(
        None, "--json", help="Also write the results as JSON (its folder must exist)."
    ),
):
    """Throughput benchmark: training, acting, and Atari loading memory.

    Updates/s (incl. sampling) at batch 32 and 256 (Atari CNN: 32), FLOPs per update, GFLOP/s
    against the matmul roofline of the same shapes, acting throughput on 10 envs, and the memory
    of loading Atari datasets (frames stored once, stacks gathered at sample time)."""
    import json

    from bench.algos import REGISTRY
    from bench.errors import UnknownNameError
    from bench.perf import (
        check_options,
        check_output_file,
        default_cases,
        measure_acting,
        measure_atari_memory,
        measure_case,
    )
    from bench.results.schema import atomic_write_bytes

    names = sorted(REGISTRY) if algos == "all" else [a.strip() for a in algos.split(",")]
    for name in names:
        if name not in REGISTRY:
            raise UnknownNameError("algorithm", name, list(REGISTRY))
    try:
        thread_counts = [int(t) for t in threads.split(",")]
    except ValueError:
        raise BenchError(f"bad --threads '{threads}': expected e.g. 1,2") from None
    try:
        sizes = [int(n) for n in memory_sizes.split(",") if n.strip()]
    except ValueError:
        raise BenchError(f"bad --memory-sizes '{memory_sizes}': expected e.g. 100000") from None
    check_options(repeats, min_time, thread_counts, sizes)
    if json_path is not None:
        check_output_file(json_path)  # before minutes of measuring, not after
    cases = [c for c in default_cases() if c.algo in names]
    rows = []
    table = Table(
        title="training updates/s incl. sampling (median of repeats); MFLOP per update; GF/s "
        "achieved; roof: GF/s of the same matmuls alone; %roof = achieved / roof",
        title_justify="left",
    )
    for col in ("case", "B", "thr", "upd/s", "MFLOP", "GF/s", "roof", "%roof"):
        table.add_column(col, justify="right", no_wrap=True)
    for case in cases:
        for t in thread_counts:
            r = measure_case(case, t, repeats, min_time)
            rows.append(r)
            label = r["algo"] if r["shape"] == "vector" else f"{r['algo']} ({r['shape']})"
            table.add_row(
                label, str(r["batch_size"]), str(t), f"{r['updates_per_s']:.1f}",
                f"{r['mflop_per_update']:.1f}", f"{r['achieved_gflops']:.1f}",
                f"{r['roofline_gflops']:.1f}", f"{100 * r['roofline_fraction']:.0f}%",
            )  # fmt: skip
    stdout.print(table)
    acting_rows = []
    if acting:
        act_table = Table(title="acting throughput (evaluation policy, 10 vector envs)")
        for col in ("algo", "env", "threads", "env steps/s", "batched vs per-obs loop"):
            act_table.add_column(col, justify="right", no_wrap=True)
        for t in thread_counts:
            for r in measure_acting(t, repeats):
                if r["algo"] in names:
                    acting_rows.append(r)
                    speedup = r.get("batched_vs_loop_speedup")
                    act_table.add_row(
                        r["algo"], r["env"], str(t), f"{r['env_steps_per_s']:.0f}",
                        f"{speedup:.1f}x" if speedup else "",
                    )  # fmt: skip
        stdout.print(act_table)
    memory_rows = []
    if sizes:
        mem_table = Table(
            title="loading Atari transitions (84x84 frames once, 4-stacks at sample time)"
        )
        for col in ("transitions", "frame bytes", "peak RSS added", "RSS / frames", "load s"):
            mem_table.add_column(col, justify="right", no_wrap=True)
        for n in sizes:
            r = measure_atari_memory(n)
            memory_rows.append(r)
            mem_table.add_row(
                f"{n:,}", f"{r['frame_bytes'] / 2**20:,.0f} MiB",
                f"{r['rss_delta'] / 2**20:,.0f} MiB", f"{r['rss_over_frames']:.3f}",
                f"{r['load_s']:.1f}",
            )  # fmt: skip
        stdout.print(mem_table)
    if json_path is not None:
        result = {"training": rows, "acting": acting_rows, "atari_memory": memory_rows}
        atomic_write_bytes(json_path, json.dumps(result, indent=2).encode())
