"""`bench perf`: throughput and memory benchmark."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bench.cli.app import app, stdout
from bench.errors import BenchError

#: The largest batch `bench perf` takes (its synthetic datasets hold 100,000 transitions; the
#: Atari one 10,000).
MAX_BATCH = 65_536


@app.command("perf")
def perf_cmd(
    algos: str = typer.Option("all", help="Comma-separated algorithm names, or 'all'."),
    threads: str = typer.Option("1,2", help="Comma-separated torch thread counts (1-1024)."),
    seeds: str = typer.Option(
        "1,10", help="Comma-separated seed counts S trained together per case (1-1024)."
    ),
    device: str = typer.Option("auto", help="auto (CUDA when present, else CPU), cpu, cuda[:N]."),
    precision: str = typer.Option(
        "fp32",
        help="Comma-separated update precisions, fp32 and/or bf16 (bf16 is refused where the "
        "CPU or GPU has no native bf16); each case is measured in each, side by side.",
    ),
    batch_sizes: str = typer.Option(
        "32,256",
        "--batch-sizes",
        help="Comma-separated batch sizes of the vector cases (1-65536); the Atari CNN runs at "
        "batch 32, the Atari protocol's.",
    ),
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
        "(~7.1 GB for 1M), removed afterwards and on any failure; refused up front when it "
        "does not fit on disk with a 10% + 8 MiB margin, or its loading in memory.",
    ),
    json_path: Path | None = typer.Option(
        None, "--json", help="Also write the results as JSON (its folder must exist)."
    ),
):
    """Throughput benchmark: training, acting, and Atari loading memory.

    For S seeds trained together, in each precision: seed-updates/s (updates/s x S, incl.
    sampling) at each batch size (Atari CNN: 32), FLOPs per vectorized update, GFLOP/s against
    the matmul roofline of the same shapes, peak memory per seed; acting throughput on 10 envs per seed, all seeds' envs
    stepped together; and the memory of loading Atari datasets (frames stored once, stacks
    gathered at sample time)."""
    import json

    from bench.algos import REGISTRY
    from bench.errors import UnknownNameError
    from bench.perf import (
        check_options,
        check_seed_memory,
        default_cases,
        measure_acting,
        measure_atari_memory,
        measure_case,
    )
    from bench.results.schema import atomic_write_bytes, check_target_file
    from bench.run.loop import check_device
    from bench.run.precision import check_precision
    from bench.sweep import MAX_SEEDS_PER_JOB

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
    seed_counts = _counts(seeds, "--seeds", "seed counts, e.g. 1,4,10", MAX_SEEDS_PER_JOB)
    dev = str(check_device(device))
    precisions = [p.strip() for p in precision.split(",") if p.strip()]
    if not precisions:
        raise BenchError("--precision needs at least one of fp32, bf16")
    for p in precisions:
        check_precision(p, dev)
    batches = _counts(batch_sizes, "--batch-sizes", "e.g. 100,256", MAX_BATCH)
    if json_path is not None:
        check_target_file(json_path)  # before minutes of measuring, not after
    cases = [c for c in default_cases(seed_counts, batches, precisions) if c.algo in names]
    check_seed_memory(cases, dev)
    rows = []
    table = Table(
        title=f"training on {dev}: S seeds per update; upd/s incl. sampling (median of repeats); "
        "seed-upd/s = upd/s x S; MFLOP per update; GF/s achieved; roof: GF/s of the same "
        "matmuls alone; %roof = achieved / roof; MiB/seed: peak memory per seed",
        title_justify="left",
    )
    for col in (
        "case",
        "B",
        "S",
        "prec",
        "thr",
        "upd/s",
        "seed-upd/s",
        "MFLOP",
        "GF/s",
        "roof",
        "%roof",
        "MiB/seed",
    ):
        table.add_column(col, justify="right", no_wrap=True)
    for case in cases:
        for t in thread_counts:
            r = measure_case(case, t, repeats, min_time, dev)
            rows.append(r)
            label = r["algo"] if r["shape"] == "vector" else f"{r['algo']} ({r['shape']})"
            table.add_row(
                label,
                str(r["batch_size"]),
                str(r["seeds"]),
                r["precision"],
                str(t),
                f"{r['updates_per_s']:.1f}",
                f"{r['seed_updates_per_s']:.1f}",
                f"{r['mflop_per_update']:.1f}",
                f"{r['achieved_gflops']:.1f}",
                f"{r['roofline_gflops']:.1f}",
                f"{100 * r['roofline_fraction']:.0f}%",
                f"{r['peak_mib_per_seed']:.1f}",
            )
    stdout.print(table)
    acting_rows = []
    if acting:
        act_table = Table(
            title=f"acting throughput on {dev} (evaluation policy, 10 envs per seed, all "
            "seeds' envs stepped together)"
        )
        for col in ("algo", "env", "S", "threads", "env steps/s", "batched vs per-obs loop"):
            act_table.add_column(col, justify="right", no_wrap=True)
        for t in thread_counts:
            for n_seeds in seed_counts:
                for r in measure_acting(t, repeats, n_seeds, dev, names):
                    acting_rows.append(r)
                    speedup = r.get("batched_vs_loop_speedup")
                    act_table.add_row(
                        r["algo"],
                        r["env"],
                        str(n_seeds),
                        str(t),
                        f"{r['env_steps_per_s']:.0f}",
                        f"{speedup:.1f}x" if speedup else "",
                    )
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
                f"{n:,}",
                f"{r['frame_bytes'] / 2**20:,.0f} MiB",
                f"{r['rss_delta'] / 2**20:,.0f} MiB",
                f"{r['rss_over_frames']:.3f}",
                f"{r['load_s']:.1f}",
            )
        stdout.print(mem_table)
    if json_path is not None:
        result = {"training": rows, "acting": acting_rows, "atari_memory": memory_rows}
        atomic_write_bytes(json_path, json.dumps(result, indent=2).encode())


def _counts(text: str, flag: str, example: str, most: int) -> list[int]:
    """A comma-separated list of counts in 1..most, or one error line."""
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise BenchError(f"bad {flag} '{text}': expected {example}") from None
    if not values or any(not 1 <= x <= most for x in values):
        raise BenchError(f"{flag}: each count must be between 1 and {most:,}")
    return values
