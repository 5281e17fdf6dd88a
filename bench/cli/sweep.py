"""`bench sweep`: grids of runs, with a live table of the grid."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer
from rich.table import Table

from bench.cli.app import app, stdout, wide_console
from bench.cli.options import with_run_options
from bench.errors import BenchError
from bench.run.config import RunOptions


def _help(name: str, sweep: bool = False) -> str:
    return RunOptions.__dataclass_fields__[name].metadata["sweep_help" if sweep else "help"]


ADDRESS_HELP = (
    "Ray cluster address (HOST:PORT of `ray start --head`, or ray://HOST:10001); default: start "
    "Ray on this machine."
)
SHARED_HELP = (
    "With --executor ray: the results folder is on storage every node sees (NFS, a cluster file "
    "system), so jobs write their runs in place, checkpoints included, and a job retried after a "
    "lost node resumes. Without it, jobs train in node-local scratch and send their run "
    "directories home."
)
RETRIES_HELP = (
    "With --executor ray: how many times a job runs again after its worker or node was lost "
    "(default 2; 0 to 10)."
)


class _GridView:
    """A rich table of the grid: one row per algo x dataset, one column per seed."""

    SYMBOL = {
        "new": "[dim]pending[/]",
        "resume": "[yellow]to resume[/]",
        "skip": "[blue]done[/]",
        "running": "[cyan]running[/]",
        "queued": "[cyan]queued[/]",
    }

    def __init__(self, jobs, seeds):
        self.seeds = seeds
        self.state = {j.cell: self.SYMBOL[j.action] for j in jobs}
        for j in jobs:
            if j.action == "running":
                self.state[j.cell] = "[cyan]running elsewhere[/]"
        self.rows = list(dict.fromkeys((j.cell.algo, j.cell.dataset) for j in jobs))
        self.scores = {}
        for j in jobs:
            if j.action == "skip":
                self.state[j.cell] = "[blue]done (kept)[/]"

    def update(self, cell, state, result=None):
        if state in ("running", "queued"):
            self.state[cell] = self.SYMBOL[state]
        elif state == "retried":  # on Ray: its worker or node was lost, and it runs again
            self.state[cell] = f"[yellow]running (retry {result['retry']})[/]"
        elif state == "done":
            self.state[cell] = f"[green]{result['score']:.1f}[/]"
        else:
            self.state[cell] = "[red]failed[/]"

    def log_line(self, cell, state, result=None) -> str | None:
        """One line per event of a job on a cluster, for logs (a sweep under nohup or a batch
        system has no terminal to redraw a table in): where it runs, retries, ends."""
        where = ""
        if result and isinstance(result.get("node"), dict):
            node = result["node"]
            where = f" on node {node['ip']} ({node['host']}, {node['node_id'][:8]})"
        if state == "running":
            return f"running: {cell.label()}{where}"
        if state == "retried":
            return f"retried: {cell.label()}{where} (retry {result['retry']})"
        if state == "done":
            return f"done: {cell.label()}: {result['score']:.1f}{where}"
        return None  # queued: every cell at once; failed: printed at the end with its reason

    def __rich__(self):
        t = Table(title="sweep: final normalized score per run", title_justify="left")
        t.add_column("algo x dataset", no_wrap=True)
        for s in self.seeds:
            t.add_column(f"seed {s}", no_wrap=True, justify="right")
        from bench.sweep import Cell

        for algo, dataset in self.rows:
            t.add_row(
                f"{algo} x {dataset}", *(self.state[Cell(algo, dataset, s)] for s in self.seeds)
            )
        return t


@app.command("sweep")
@with_run_options(sweep=True)
def sweep_cmd(
    algo: str = typer.Option(..., "--algo", help=_help("algo", sweep=True)),
    dataset: str = typer.Option(..., "--dataset", help=_help("dataset", sweep=True)),
    seeds: str = typer.Option("0-4", "--seeds", help="Seeds: a range 0-4, a list 0,2,5, or both."),
    results_dir: Path = typer.Option(Path("results"), help="Shared results folder (runs/ inside)."),
    workers: int = typer.Option(0, help="Jobs at once (default: one per 2 cores, at least 1)."),
    seeds_per_job: int = typer.Option(
        32,
        "--seeds-per-job",
        help="Seeds of one configuration trained together in one job, at most (bounds its memory).",
    ),
    vectorize: bool = typer.Option(
        True,
        "--vectorize/--no-vectorize",
        help="--no-vectorize: one seed per job and process (each seed trained alone).",
    ),
    executor: str = typer.Option("local", help="local (a process pool) or ray."),
    address: str | None = typer.Option(None, help=ADDRESS_HELP),
    shared_results: bool = typer.Option(False, "--shared-results", help=SHARED_HELP),
    retries: int | None = typer.Option(None, help=RETRIES_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live grid display."),
    run_options: dict | None = None,
):
    """Run a grid of algos x datasets x seeds (local process pool or Ray).

    The seeds of one configuration train together in one job (networks with a seed dimension;
    --seeds-per-job bounds how many), and the pool dispatches jobs. Every cell is resolved to
    its run configuration first (a bad option fails before anything runs). Runs already in
    the results folder with the same configuration key and seed are kept when complete, left
    alone while another process writes them, and resumed from their last checkpoint when
    incomplete, so re-running a stopped sweep finishes it. Threads per run are set so that
    workers x threads <= cores."""

    from bench.algos.base import parse_overrides
    from bench.data.catalog import HDF5_SUFFIXES
    from bench.run.config import RunOptions, check_algorithm
    from bench.run.loop import check_device
    from bench.run.precision import check_precision
    from bench.sweep import SweepSpec, parse_list, parse_seeds

    n_workers, threads = check_pool(executor, workers, seeds_per_job)
    on_ray = ray_options(executor, address, shared_results, retries)
    given = dict(run_options or {})
    given["overrides"] = parse_overrides(given["overrides"])
    options = RunOptions(**given)  # budgets checked here
    check_precision(options.precision, check_device(options.device))
    datasets = parse_list(dataset, "dataset")
    if options.env is not None and not any(d.endswith(HDF5_SUFFIXES) for d in datasets):
        raise BenchError(
            "--env is the env of D4RL HDF5 files; none of the datasets is one (drop --env)"
        )
    algos = parse_list(algo, "algo")
    for a in algos:  # unknown names, presets, --set keys and values: before anything is built
        check_algorithm(dataclasses.replace(options, algo=a))
    spec = SweepSpec(
        algos=algos,
        datasets=datasets,
        seeds=parse_seeds(seeds),
        options=options,
        results_dir=results_dir,
        workers=n_workers,
        threads=threads,
        seeds_per_job=seeds_per_job,
        vectorize=vectorize,
    )
    run_grids([spec], executor, on_ray, quiet)


def ray_options(executor: str, address: str | None, shared_results: bool, retries: int | None):
    """The Ray options of a sweep, checked: given only with --executor ray."""
    from bench.cluster import MAX_RETRIES, RayOptions

    given = [
        name
        for name, v in (
            ("--address", address),
            ("--shared-results", shared_results),
            ("--retries", retries),
        )
        if v not in (None, False)
    ]
    if executor != "ray":
        if given:
            raise BenchError(f"{given[0]} is an option of --executor ray")
        return None
    if retries is not None and not 0 <= retries <= MAX_RETRIES:
        raise BenchError(f"--retries must be between 0 and {MAX_RETRIES}, got {retries}")
    if address is not None and not address.strip():
        raise BenchError("--address is empty: give HOST:PORT, or leave it out to start Ray here")
    if address is not None:
        from bench.cluster import probe

        probe(address)  # before any dataset is built or folder made
    return RayOptions(
        address=address, shared_results=shared_results, retries=2 if retries is None else retries
    )


def check_pool(executor: str, workers: int, seeds_per_job: int) -> tuple[int, int]:
    """(workers, torch threads per job) from the options: workers x threads <= cores."""
    import os

    from bench.sweep import MAX_SEEDS_PER_JOB

    if executor not in ("local", "ray"):
        raise BenchError(f"unknown executor '{executor}'; choose local or ray")
    cores = os.cpu_count() or 1
    if workers < 0 or workers > 1024:
        raise BenchError(f"--workers must be between 1 and 1024, got {workers}")
    if not 1 <= seeds_per_job <= MAX_SEEDS_PER_JOB:
        raise BenchError(
            f"--seeds-per-job must be between 1 and {MAX_SEEDS_PER_JOB}, got {seeds_per_job}"
        )
    n_workers = workers or max(1, cores // 2)
    return n_workers, max(1, cores // n_workers)


def check_local_memory(planned: list) -> None:
    """The largest jobs the local pool runs at once (its workers each, seeds trained together)
    fit in this machine's memory: refused before anything trains, not killed midway."""
    from bench.perf import check_job_memory
    from bench.run.loop import check_device
    from bench.sweep import group_jobs

    per_seed: dict[tuple[str, str], int] = {}
    sizes = []
    for cells, spec in planned:
        for job in group_jobs(cells, spec):
            cell = job[0].cell
            if (cell.algo, cell.dataset) not in per_seed:
                per_seed[(cell.algo, cell.dataset)] = run_seed_bytes(spec.cell_options(cell))
            sizes.append((per_seed[(cell.algo, cell.dataset)], len(job)))
    workers = planned[0][1].workers if planned else 1
    biggest = sorted(sizes, key=lambda s: -s[0] * s[1])[:workers]
    if biggest:
        device = str(check_device(planned[0][1].options.device))
        check_job_memory(biggest, "give fewer --workers or --seeds-per-job", device)


def run_seed_bytes(opts) -> int:
    """Estimated memory of one seed of a run with these options (its dataset prepared)."""
    from bench.algos import get_algorithm
    from bench.algos.base import resolve_config
    from bench.data.catalog import resolve_card
    from bench.perf import card_shape, seed_bytes
    from bench.run.config import resolve_preset

    card = resolve_card(opts.dataset, opts.env)
    cls = get_algorithm(opts.algo)
    config = resolve_config(cls, resolve_preset(cls, card, opts.preset), opts.overrides)
    batch = opts.batch_size if opts.batch_size is not None else card.train.batch_size
    if card.size > 0:  # a larger batch is refused with the dataset's size when it is loaded
        batch = min(batch, card.size)
    return seed_bytes(opts.algo, config, card_shape(card), batch)


def run_grids(specs: list, executor: str, on_ray, quiet: bool) -> None:
    """Build the grids' datasets, resolve and plan every cell, then dispatch all the grids' jobs
    to one pool with a live table; exit 1 when a cell failed."""
    from rich.live import Live

    from bench.sweep import (
        check_writable,
        execute_grids,
        group_jobs,
        plan,
        prepare_datasets,
        resolve_keys,
    )

    datasets = list(dict.fromkeys(d for spec in specs for d in spec.datasets))
    prepare_datasets(datasets, specs[0].options.env, show_progress=not quiet)
    planned = [(plan(spec, resolve_keys(spec)), spec) for spec in specs]
    jobs = [j for js, _ in planned for j in js]
    if executor == "local":
        check_local_memory(planned)
    results_dir = specs[0].results_dir
    if any(j.action in ("new", "resume") for j in jobs):
        check_writable(results_dir)
    counts = {a: sum(j.action == a for j in jobs) for a in ("new", "resume", "skip", "running")}
    running = f", {counts['running']} running elsewhere" if counts["running"] else ""
    n_jobs = sum(len(group_jobs(js, spec)) for js, spec in planned)
    spec = specs[0]
    stdout.print(
        f"sweep: {len(jobs)} runs ({counts['new']} new, {counts['resume']} to resume, "
        f"{counts['skip']} complete{running}) in {n_jobs} job(s); {spec.workers} worker(s) x "
        f"{spec.threads} thread(s), executor {executor}",
        soft_wrap=True,
    )
    seeds = sorted({s for spec in specs for s in spec.seeds})
    view = _GridView(jobs, seeds)
    if executor == "ray":
        from bench.cluster import execute_grids as execute_on_ray
    if quiet:
        results = execute_on_ray(planned, on_ray) if executor == "ray" else execute_grids(planned)
    else:
        console = stdout if stdout.is_terminal else wide_console()
        update = view.update
        if executor == "ray" and not console.is_terminal:

            def update(cell, state, result=None):
                view.update(cell, state, result)
                line = view.log_line(cell, state, result)
                if line:
                    console.print(line, markup=False, soft_wrap=True)

        with Live(view, console=console, refresh_per_second=2):
            results = (
                execute_on_ray(planned, on_ray, update)
                if executor == "ray"
                else execute_grids(planned, update)
            )
        stdout.print()
    failed = [r for r in results if not r["ok"]]
    for r in failed:
        c = r["cell"]
        stdout.print(
            f"failed: {c['algo']} x {c['dataset']} seed {c['seed']}: {r['error']}",
            markup=False,
            soft_wrap=True,
        )
    stdout.print(
        f"results in {results_dir}/runs; `bench leaderboard --results {results_dir}`",
        soft_wrap=True,
        markup=False,
    )
    if failed:
        raise typer.Exit(1)
