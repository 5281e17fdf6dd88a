"""`bench run` and `bench algos`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bench.cli.app import app, stdout
from bench.cli.options import with_run_options
from bench.errors import BenchError
from bench.run.config import RunOptions


def _help(name: str) -> str:
    return RunOptions.__dataclass_fields__[name].metadata["help"]


@app.command("run")
@with_run_options()
def run_cmd(
    algo: str | None = typer.Option(None, "--algo", help=_help("algo")),
    dataset: str | None = typer.Option(None, "--dataset", help=_help("dataset")),
    seed: int | None = typer.Option(None, "--seed", help=_help("seed") + " [default: 0]"),
    seeds: str | None = typer.Option(
        None, "--seeds", help="Several seeds (0-9, 0,3,7), trained together in this process."
    ),
    seeds_per_job: int | None = typer.Option(
        None,
        "--seeds-per-job",
        help="With --seeds: seeds trained together, at most (memory). [default: 32]",
    ),
    vectorize: bool | None = typer.Option(
        None,
        "--vectorize/--no-vectorize",
        help="--no-vectorize: with --seeds, train the seeds one after another.",
    ),
    results_dir: Path | None = typer.Option(
        None, help="Where <dir>/runs/<run_id>/ go. [default: results]"
    ),
    resume: list[Path] = typer.Option(
        [],
        help="Continue RUN_DIR from its last checkpoint (taken at every evaluation); repeat it "
        "to continue the seeds of one job together. The other options come from config.json "
        "(only --device, --threads and --compile may differ).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    run_options: dict | None = None,
):
    """Train ALGO offline on DATASET, evaluate it periodically, write results/runs/<run_id>/.

    With --seeds, the seeds train together in one process (networks with a seed dimension),
    each writing its own run directory. After a crash or a kill, `bench run --resume RUN_DIR`
    continues from the last evaluation."""
    from bench.algos.base import parse_overrides
    from bench.data.catalog import HDF5_SUFFIXES
    from bench.run.loop import run_job
    from bench.sweep import MAX_SEEDS_PER_JOB, parse_seeds

    given = dict(run_options or {})
    given["overrides"] = parse_overrides(given["overrides"])
    if seeds_per_job is not None and not 1 <= seeds_per_job <= MAX_SEEDS_PER_JOB:
        raise BenchError(
            f"--seeds-per-job must be between 1 and {MAX_SEEDS_PER_JOB}, got {seeds_per_job}"
        )
    if seed is not None and seeds is not None:
        raise BenchError("give --seed or --seeds, not both")
    if resume and (seed is not None or seeds is not None):
        raise BenchError("--resume continues the runs' own seeds: drop --seed/--seeds")
    if resume:
        _check_resume(
            resume,
            given,
            algo=algo,
            dataset=dataset,
            results_dir=results_dir,
            seeds_per_job=seeds_per_job,
            vectorize=vectorize,
        )
        opts = RunOptions(
            device=given["device"], threads=given["threads"], compile=given["compile"]
        )
        results = run_job(opts, [], show_progress=not quiet, resume=resume)
    else:
        if algo is None or dataset is None:
            raise BenchError("--algo and --dataset are required (or --resume RUN_DIR)")
        if given["env"] is not None and not dataset.endswith(HDF5_SUFFIXES):
            raise BenchError(
                f"--env is the env of a D4RL HDF5 file; dataset '{dataset}' brings its own "
                "(drop --env)"
            )
        seed_list = parse_seeds(seeds) if seeds is not None else [seed or 0]
        opts = RunOptions(algo=algo, dataset=dataset, seed=seed_list[0], **given)
        results_dir = Path("results") if results_dir is None else results_dir
        size = (seeds_per_job or 32) if vectorize is not False else 1
        from bench.cli.sweep import run_seed_bytes
        from bench.perf import check_job_memory
        from bench.run.loop import check_device

        device = str(check_device(opts.device))
        what = "give a smaller --seeds-per-job" if len(seed_list) > 1 else "give a smaller batch"
        check_job_memory([(run_seed_bytes(opts), min(size, len(seed_list)))], what, device)
        results = []
        for i in range(0, len(seed_list), size):
            results += run_job(
                opts, seed_list[i : i + size], show_progress=not quiet, results_dir=results_dir
            )
    if len(results) == 1:
        _print_run(results[0])
    else:
        _print_seeds(results)


#: What a resume may change: how it runs, not what it computes.
RESUME_TAKES = ("device", "threads", "compile")


def _check_resume(dirs: list[Path], given: dict, **own) -> None:
    """--resume takes its options from each run's config.json: any other option given with it
    (a budget, --set, --algo, --results-dir, ...) is refused rather than silently ignored, and
    so is a run directory given twice."""
    import dataclasses
    import os

    from bench.run.config import flag_of

    seen: dict[str, Path] = {}
    for d in dirs:
        real = os.path.realpath(d)
        if real in seen:
            same = "" if str(seen[real]) == str(d) else f" (as {seen[real]})"
            raise BenchError(f"--resume {d} is given twice{same}: name each run directory once")
        seen[real] = d
    flags = {
        "algo": "--algo",
        "dataset": "--dataset",
        "results_dir": "--results-dir",
        "seeds_per_job": "--seeds-per-job",
        "vectorize": "--vectorize/--no-vectorize",
    }
    extra = [flags[name] for name, value in own.items() if value is not None]
    for f in dataclasses.fields(RunOptions):
        if f.name in given and f.name not in RESUME_TAKES:
            default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            if given[f.name] != default:
                extra.append(flag_of(f))
    if extra:
        raise BenchError(
            f"--resume continues each run with the options in its config.json: drop "
            f"{', '.join(extra)} (only {', '.join('--' + n for n in RESUME_TAKES)} may be given)"
        )


def _print_run(result) -> None:
    c = result.config
    table = Table(title=f"{c.algo} on {c.dataset}, seed {c.seed} (normalized score: 0-100 scale)")
    for col in ("step", "return mean", "return std", "episodes", "normalized score"):
        table.add_column(col, justify="right")
    final = [] if result.final_row is None else [result.final_row]
    for r in result.eval_rows + final:
        table.add_row(
            str(r["step"]) + (" (final)" if r is result.final_row else ""),
            f"{r['return_mean']:.1f}",
            f"{r['return_std']:.1f}",
            str(r["episodes"]),
            f"{r['normalized_score']:.1f}",
        )
    stdout.print(table)
    stdout.print(f"key {c.key()}; wall time {result.wall_time_s:.1f} s", markup=False)
    print(result.run_dir)


def _print_seeds(results) -> None:
    c = results[0].config
    table = Table(title=f"{c.algo} on {c.dataset}, {len(results)} seeds (normalized score)")
    final = c.final_episodes
    cols = ["seed", "step", "last eval", "best eval"] + [f"final ({final} ep)"] * bool(final)
    for col in cols + ["run"]:
        table.add_column(col, justify="right" if col != "run" else "left")
    for r in results:
        scores = [row["normalized_score"] for row in r.eval_rows]
        cells = [f"{r.final_row['normalized_score']:.1f}"] if r.final_row else []
        table.add_row(
            str(r.config.seed),
            str(r.eval_rows[-1]["step"]),
            f"{scores[-1]:.1f}",
            f"{max(scores):.1f}",
            *cells,
            r.run_dir.name,
        )
    stdout.print(table)
    stdout.print(
        f"key {c.key()}; wall time {max(r.wall_time_s for r in results):.1f} s", markup=False
    )
    for r in results:
        print(r.run_dir)


@app.command("algos")
def algos_cmd():
    """List the registered algorithms (bench's own and installed plugins') with their config
    defaults and presets."""
    import sys

    from bench.algos import REGISTRY
    from bench.algos.base import config_fields, field_docs
    from bench.algos.plugins import FAILED

    for name, cls in sorted(REGISTRY.items()):
        plugin = "" if cls.__module__.startswith("bench.") else f"; plugin {cls.__module__}"
        table = Table(
            title=f"{name}  ({', '.join(cls.action_kinds)} actions{plugin})",
            title_justify="left",
            caption=cls.source or None,
            caption_justify="left",
        )
        table.add_column("key", no_wrap=True)
        table.add_column("default", justify="right", no_wrap=True)
        if cls.presets:  # one column, a line per preset that sets the key
            table.add_column("presets", no_wrap=True)
        table.add_column("meaning")
        defaults = cls.Config()
        docs = field_docs(cls.Config)
        for key in config_fields(cls.Config):
            cells = []
            if cls.presets:
                sets = [f"{p}: {v[key]}" for p, v in cls.presets.items() if key in v]
                cells = ["\n".join(sets)]
            table.add_row(key, str(getattr(defaults, key)), *cells, docs.get(key, ""))
        stdout.print(table)
    for name, why in sorted(FAILED.items()):
        print(f"bench: warning: algorithm plugin '{name}' not loaded: {why}", file=sys.stderr)
