"""Sweeps on a Ray cluster: jobs that bring their dataset with them and their results home.

A job (the cells of one configuration, bench.sweep.group_jobs) runs as a Ray task that asks for as
many CPUs as it has torch threads. The nodes need bench installed, not the driver's files:

- The dataset. The card the driver resolved travels with every job (an imported file's or a
  `minari:` id's card exists only there). A node that has the dataset uses it when its content
  hash is the driver's. A node without it builds it from the card when the driver's copy is the
  card's reference build (the same bytes on any host), and otherwise unpacks the copy the driver
  put once into Ray's object store (imported files, `minari:` ids, builds of another size). Any
  other content fails the job with one line naming the node and both hashes.
- The results. Without shared storage a job trains in node-local scratch ($BENCH_SCRATCH, else the
  temp folder) and its run directories (config, tables, checkpoint, kept policies, final
  evaluation) travel home in the task's return value; the driver installs them into the results
  folder (a new run appears with one rename). A run to resume travels to the node with its job.
  With shared results (--shared-results, or Ray started locally) jobs write in place.
- Retries. Ray runs a job again when its worker or node was lost, at most `retries` times. In
  place, the new attempt reads the results folder again: a run the lost attempt completed is kept
  and one it began resumes from its checkpoint. Otherwise the lost attempt brought nothing home
  and the job starts again. Either way every cell ends in the results exactly once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import socket
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.data.cards import Card
from bench.errors import BenchError, DatasetError, one_line
from bench.results.schema import atomic_write_json, runs_dir
from bench.run.checkpoint import LOCK_FILE, is_locked, run_lock
from bench.sweep import Planned, SweepSpec, group_jobs, run_cells

#: Node-local scratch for the run directories of jobs that send theirs home.
SCRATCH_ENV = "BENCH_SCRATCH"
#: A lost attempt's process may hold its runs' locks for a moment after Ray starts the retry.
LOCK_WAIT_S = 60.0
#: Jobs still waiting when no live node has had the CPUs for one this long are failed.
NO_NODE_GRACE_S = 60.0
#: How long a TCP probe of --address may take before the cluster is called unreachable.
PROBE_TIMEOUT_S = 5.0
#: Retries of a job whose worker or node was lost (--retries), at most.
MAX_RETRIES = 10


@dataclass(frozen=True)
class RayOptions:
    """How a sweep uses a Ray cluster."""

    address: str | None = None  # None: start Ray on this machine
    shared_results: bool = False  # every node sees the results folder: jobs write in place
    retries: int = 2  # runs of a job again after its worker or node was lost


@dataclass(frozen=True)
class Shipment:
    """What a node needs to train on one of the sweep's datasets exactly as the driver would."""

    dataset: str  # the id as given (a card id, minari:<id>, a file path)
    env: str | None
    card: Card  # the card the driver resolved
    content: str  # the driver's content hash (bench.data.identity)
    copy: list  # [ObjectRef of the packed dataset folder], or [] (build it from the card); a list
    # so that Ray hands the job the reference, and the job fetches the bytes only when needed


# ---- packing folders (run directories home, datasets and runs to resume out) ----


def _transient(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    name = info.name.rsplit("/", 1)[-1]
    if name == LOCK_FILE or (name.startswith(".") and name.endswith(".tmp")):
        return None  # a lock and a half-written temp file belong to the writer, not the run
    return info


def pack(folders: list[tuple[Path, str]]) -> bytes:
    """An uncompressed tar of the folders, each under its name in the archive."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for folder, name in folders:
            tar.add(folder, arcname=name, filter=_transient)
    return buf.getvalue()


def unpack(data: bytes, into: Path) -> None:
    """The archive's regular files and folders under `into` (links and absolute names refused)."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")


def install_runs(data: bytes, results_dir: Path) -> dict[str, Path]:
    """Run directories that came home, into results_dir/runs: a new run appears whole with one
    rename; a resumed run's files replace its older ones one by one, each with one rename (as a
    run resumed here rewrites them). Returns run_id -> its directory here."""
    home = runs_dir(results_dir)
    incoming = Path(results_dir) / ".incoming" / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    out = {}
    try:
        unpack(data, incoming)
        home.mkdir(parents=True, exist_ok=True)
        for run in sorted(p for p in incoming.iterdir() if p.is_dir()):
            final = home / run.name
            if not final.exists():
                os.rename(run, final)
            else:
                for f in sorted(p for p in run.rglob("*") if p.is_file()):
                    target = final / f.relative_to(run)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(f, target)
            out[run.name] = final
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
        with contextlib.suppress(OSError):
            incoming.parent.rmdir()
    return out


# ---- on a node ----


def node_info() -> dict:
    """The node this process runs on: Ray's node id, its address and host name."""
    import ray

    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "ip": ray.util.get_node_ip_address(),
        "host": socket.gethostname(),
    }


def describe(node: dict) -> str:
    return f"node {node['ip']} ({node['host']}, {node['node_id'][:8]})"


def obtain_dataset(ship: Shipment, where: str) -> None:
    """This node's copy of the dataset, identical to the driver's (content hash), else one line."""
    from bench.collect.build import ensure_dataset
    from bench.data.catalog import give_card
    from bench.data.identity import content_hash
    from bench.data.minari_io import dataset_exists, open_dataset, staged_dataset

    give_card(ship.dataset, ship.env, ship.card)
    minari_id = ship.card.minari_id
    if not dataset_exists(minari_id):
        if ship.copy:
            import ray

            data = ray.get(ship.copy[0])
            try:
                with staged_dataset(minari_id, exclusive=True) as staging:
                    unpack(data, staging)
            except DatasetError:
                if not dataset_exists(minari_id):  # not just another job's copy, landed first
                    raise
        else:
            try:
                ensure_dataset(ship.card, show_progress=False)
            except DatasetError:
                if not dataset_exists(minari_id):  # another job's build landed first
                    raise
    have = content_hash(open_dataset(minari_id))
    if have != ship.content:
        raise DatasetError(
            f"{where}: its dataset {minari_id} has content {have[:12]}, the driver's has "
            f"{ship.content[:12]}; remove or rebuild it on that node, or share one Minari root"
        )


def scratch_root() -> Path:
    return Path(os.environ.get(SCRATCH_ENV) or tempfile.gettempdir())


def new_scratch() -> Path:
    """A job's scratch folder, bench-job-<host>-<pid>-*: those of this host's dead processes
    (a job killed with its driver or node) are removed first."""
    from bench.data.minari_io import remove_orphans

    prefix = f"bench-job-{socket.gethostname()}-"
    root = scratch_root()
    remove_orphans(root, prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=root))


def _failed(job: list[Planned], error: str) -> list[dict]:
    return [{"cell": dataclasses.asdict(p.cell), "ok": False, "error": error} for p in job]


def _done(p: Planned, run_dir: Path) -> dict:
    """The result of a cell whose run is already complete (a lost attempt finished it)."""
    from bench.results.schema import FINAL_TABLE
    from bench.results.store import read_eval_table

    final = run_dir / FINAL_TABLE
    table = read_eval_table(final if final.is_file() else run_dir / "eval.parquet")
    return {
        "cell": dataclasses.asdict(p.cell),
        "ok": True,
        "run_dir": str(run_dir),
        "score": float(table.normalized_score.iloc[-1]),
        "wall_s": 0.0,
    }


def _last_step(run_dir: Path) -> tuple[int, bool]:
    from bench.results.schema import FINAL_TABLE
    from bench.results.store import read_eval_table

    evals = run_dir / "eval.parquet"
    step = int(read_eval_table(evals).step.max()) if evals.is_file() else 0
    return step, (run_dir / FINAL_TABLE).is_file()


def _wait_unlocked(run_dir: Path) -> bool:
    deadline = time.monotonic() + LOCK_WAIT_S
    while is_locked(run_dir):
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)
    return True


def replan(job: list[Planned], spec: SweepSpec, key: str) -> tuple[list[Planned], list[dict]]:
    """In a shared results folder: the job's cells as they stand now. A run of the cell that is
    complete is kept (its result returned), one that is not resumes, else the cell starts fresh.
    Returns (cells still to train, results of the kept ones and of cells that cannot run)."""
    from bench.results.store import is_complete, read_config
    from bench.run.config import RunConfig

    todo, results = [], []
    home = runs_dir(spec.results_dir)
    for p in job:
        mine = []
        for run_dir in sorted(home.glob(f"{p.cell.algo}__*__s{p.cell.seed}__*")):
            try:
                cfg = read_config(run_dir / "config.json")
                if (
                    RunConfig.from_json(cfg, run_dir.name).key() == key
                    and cfg["seed"] == p.cell.seed
                ):
                    mine.append((run_dir, cfg))
            except (BenchError, KeyError, TypeError):
                continue
        steps = {d: _last_step(d) for d, _ in mine}
        complete = [d for d, cfg in mine if is_complete(cfg, *steps[d])]
        if complete:
            results.append(_done(p, complete[0]))
        elif mine:
            run_dir = max((d for d, _ in mine), key=lambda d: steps[d][0])
            if not _wait_unlocked(run_dir):
                results += _failed([p], f"run {run_dir} is being written by another process")
                continue
            todo.append(
                dataclasses.replace(p, action="resume", run_dir=run_dir, step=steps[run_dir][0])
            )
        else:
            todo.append(dataclasses.replace(p, action="new", run_dir=None, step=0))
    return todo, results


def _record_node(run_dir: Path, node: dict) -> None:
    """Append this node to the run's config.json 'nodes' (where each of its jobs ran)."""
    from bench.results.store import read_config

    cfg = read_config(run_dir / "config.json")
    if cfg is not None:
        atomic_write_json(run_dir / "config.json", cfg | {"nodes": [*cfg.get("nodes", []), node]})


def _train_here(job: list[Planned], spec: SweepSpec, node: dict, key: str) -> list[dict]:
    """The job's cells, resumed ones first, then new ones (after checking that this node's bench
    resolves them to the driver's key)."""
    from bench.run.loop import prepare

    out = []
    resumed = [p for p in job if p.action == "resume"]
    new = [p for p in job if p.action == "new"]
    if resumed:
        for p in resumed:
            _record_node(p.existing_dir, node)
        out += run_cells(resumed, spec)
    if new:
        try:
            prep = prepare(spec.cell_options(new[0].cell), show_progress=False)
        except BenchError as e:
            return out + _failed(new, f"{describe(node)}: {e}")
        if prep.config.key() != key:
            return out + _failed(
                new,
                f"{describe(node)} resolves the job to key "
                f"{prep.config.key()}, the driver to {key}: install the same "
                "bench (and packages) on every node",
            )
        tagged = dataclasses.replace(spec, tags=spec.tags | {"nodes": [node]})
        out += run_cells(new, tagged, prepared=prep)
    return out


def remote_job(
    job: list[Planned],
    spec: SweepSpec,
    ship: Shipment,
    key: str,
    shared: bool,
    runs: list,
    progress,
    index: int,
) -> dict:
    """One job, as a Ray task on some node. Returns {"node", "results" (one per cell, in the
    job's order), "runs" (the run directories, packed, when they travel home; else None)}."""
    node = node_info() | {"attempt": uuid.uuid4().hex[:8]}
    if progress is not None:
        progress.started.remote(index, node)  # fire and forget: progress never fails a job
    where = describe(node)
    order = [p.cell for p in job]
    scratch = None
    try:
        try:
            obtain_dataset(ship, where)
        except BenchError as e:
            msg = str(e) if str(e).startswith(where) else f"{where}: {e}"
            return {"node": node, "results": _failed(job, msg), "runs": None}
        if shared:
            job, kept = replan(job, spec, key)
            here = spec
        else:
            kept = []
            try:
                scratch = new_scratch()
            except OSError as e:
                reason = one_line(e.strerror or e)
                return {
                    "node": node,
                    "runs": None,
                    "results": _failed(
                        job,
                        f"{where}: no scratch folder in {scratch_root()} ({reason}); set "
                        f"{SCRATCH_ENV} on that node",
                    ),
                }
            here = dataclasses.replace(spec, results_dir=scratch)
            if runs:
                import ray

                unpack(ray.get(runs[0]), runs_dir(scratch))
                job = [
                    dataclasses.replace(p, run_dir=runs_dir(scratch) / p.existing_dir.name)
                    if p.action == "resume"
                    else p
                    for p in job
                ]
        results = kept + _train_here(job, here, node, key) if job else kept
        by_cell = {(r["cell"]["algo"], r["cell"]["dataset"], r["cell"]["seed"]): r for r in results}
        results = [by_cell[(c.algo, c.dataset, c.seed)] for c in order]
        back = None
        if scratch is not None and runs_dir(scratch).is_dir():
            dirs = sorted(d for d in runs_dir(scratch).iterdir() if d.is_dir())
            back = pack([(d, d.name) for d in dirs]) if dirs else None
        return {"node": node, "results": results, "runs": back}
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


class Progress:
    """A small actor on the head node: jobs say where they started, the driver reads it."""

    def __init__(self):
        self.events: list[tuple[int, dict]] = []

    def started(self, index: int, node: dict) -> None:
        self.events.append((index, node))

    def since(self, seen: int) -> list[tuple[int, dict]]:
        """The events after the first `seen` (a read that fails on the way loses none)."""
        return self.events[seen:]


# ---- on the driver ----


def _import_ray():
    try:
        import ray
    except ImportError:
        raise BenchError(
            "the ray executor needs Ray: pip install 'bench[ray]' (or pip install ray)"
        ) from None
    return ray


def probe(address: str) -> None:
    """A TCP connection to the cluster's address, or one line: Ray itself waits a minute and more
    on an address nothing listens on."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise BenchError(f"bad --address '{address}': use HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        reason = one_line(e.strerror or e) if not isinstance(e, TimeoutError) else "timed out"
        raise BenchError(
            f"cannot reach the Ray cluster at {address} ({reason}); start it with "
            "`ray start --head` or check --address"
        ) from None


def connect(ray, address: str | None, cpus: int) -> None:
    if address:
        probe(address)
    import logging

    kwargs = {"address": address} if address else {"num_cpus": cpus}
    try:
        ray.init(
            **kwargs, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR
        )
    except Exception as e:  # noqa: BLE001 - connection failures come in several kinds
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise BenchError(f"cannot start or reach Ray ({address or 'local'}): {first}") from None


def largest_node(ray) -> float:
    """CPUs of the live node that has the most."""
    return max((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")), default=0.0)


def check_fits(ray, threads: int, address: str | None) -> None:
    cpus = largest_node(ray)
    if cpus < threads:
        raise BenchError(
            f"no node of the Ray cluster ({address or 'local'}) has the {threads} CPUs a job asks "
            f"for (one per torch thread; the largest has {cpus:g}): give more --workers (fewer "
            "threads per job) or add larger nodes"
        )


def shipments(ray, datasets: list[str], env: str | None, local: bool) -> dict[str, Shipment]:
    """One Shipment per dataset: a copy in the object store unless nodes can build the same bytes
    from the card (or share this machine's disk: Ray started here)."""
    from bench.data.catalog import resolve_card
    from bench.data.identity import content_hash
    from bench.data.minari_io import dataset_dir, open_dataset

    out = {}
    for d in datasets:
        card = resolve_card(d, env)
        dataset = open_dataset(card.minari_id)
        content = content_hash(dataset)
        reference = card.reference is not None and card.reference.content_hash == content
        copy = []
        if not (local or reference):
            folder = dataset_dir(card.minari_id)
            copy = [ray.put(pack([(folder, card.minari_id)]))]
        out[d] = Shipment(d, env, card, content, copy)
    return out


def _result_error(e: BaseException, retries: int) -> str:
    first = (str(e).strip().splitlines() or [""])[0][:300]
    return f"lost its worker or node {retries + 1} time(s) ({type(e).__name__}: {first})"


def execute_grids(
    grids: list[tuple[list[Planned], SweepSpec]], options: RayOptions | None = None, on_update=None
) -> list[dict]:
    """The grids' jobs (bench.sweep.group_jobs) on Ray: dispatched, watched (queued, running,
    retried, done, failed), and their run directories installed into the results folder as
    each ends."""
    options = options or RayOptions()
    todo = [(job, spec) for jobs, spec in grids for job in group_jobs(jobs, spec)]
    return execute(todo, options.address, options.shared_results, options.retries, on_update)


def execute(
    todo: list[tuple[list[Planned], SweepSpec]],
    address: str | None,
    shared: bool,
    retries: int,
    on_update,
) -> list[dict]:
    """Jobs on Ray (execute_grids)."""
    ray = _import_ray()
    if not todo:
        return []
    # a relative results folder names the driver's: a worker process has another working folder
    todo = [
        (job, dataclasses.replace(spec, results_dir=Path(spec.results_dir).absolute()))
        for job, spec in todo
    ]
    first = todo[0][1]
    started_here = not ray.is_initialized()
    if started_here:
        connect(ray, address, first.workers * first.threads)
    local = address is None
    shared = shared or local
    try:
        check_fits(ray, max(spec.threads for _, spec in todo), address)
        with contextlib.ExitStack() as locks:
            return _dispatch(ray, todo, address, shared, retries, on_update, locks)
    finally:
        if started_here:
            ray.shutdown()


def _notify(on_update, cell, state, result=None):
    if on_update is not None:
        on_update(cell, state, result)


#: The resource Ray gives the head node alone: an actor asking for a sliver of it lives there.
HEAD_RESOURCE = "node:__internal_head__"
#: How long the progress actor may take to start before the sweep goes on without it.
PROGRESS_START_S = 60


def _progress_actor(ray):
    """The Progress actor, on the head node, which outlives any worker node (a node lost with
    the actor on it would take the retried jobs' events with it); where no node is marked as
    the head, on the driver's node."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    try:
        actor = ray.remote(num_cpus=0)(Progress)
        if any(n.get("Alive") and HEAD_RESOURCE in n.get("Resources", {}) for n in ray.nodes()):
            handle = actor.options(resources={HEAD_RESOURCE: 0.001}).remote()
        else:
            here = ray.get_runtime_context().get_node_id()
            strategy = NodeAffinitySchedulingStrategy(here, soft=True)
            handle = actor.options(scheduling_strategy=strategy).remote()
        # alive before any job reports to it: a report sent while the actor is still starting
        # waits in the sender, and is lost with the sender's node
        ray.get(handle.since.remote(0), timeout=PROGRESS_START_S)
        return handle
    except Exception:  # noqa: BLE001 - progress is a display: a sweep runs without it
        return None


def _dispatch(ray, todo, address, shared, retries, on_update, locks) -> list[dict]:
    env = todo[0][1].options.env
    ships = shipments(
        ray,
        list(dict.fromkeys(p.cell.dataset for job, _ in todo for p in job)),
        env,
        address is None,
    )
    progress = _progress_actor(ray)
    task = ray.remote(remote_job)
    refs = {}
    for index, (job, spec) in enumerate(todo):
        runs = []
        if not shared and job[0].action == "resume":  # the runs travel to the node, locked here
            for p in job:
                locks.enter_context(run_lock(p.run_dir))
            runs = [ray.put(pack([(p.run_dir, p.run_dir.name) for p in job]))]
        ref = task.options(num_cpus=spec.threads, max_retries=retries, retry_exceptions=False)
        refs[
            ref.remote(
                job, spec, ships[job[0].cell.dataset], job[0].key, shared, runs, progress, index
            )
        ] = (index, job, spec)
        for p in job:
            _notify(on_update, p.cell, "queued")
    attempts: dict[int, int] = {}
    seen = 0  # progress events read so far
    results: list[dict] = []
    pending = list(refs)
    no_node_since = None
    last_check = time.monotonic()
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=0.5)
            events = _events(ray, progress, seen)
            seen += len(events)
            for index, node in events:
                attempts[index] = attempts.get(index, 0) + 1
                state = "running" if attempts[index] == 1 else "retried"
                for p in todo[index][0]:
                    _notify(on_update, p.cell, state, {"node": node, "retry": attempts[index] - 1})
            for ref in done:
                _, job, spec = refs[ref]
                for p, r in zip(job, _collect(ray, ref, job, spec, shared, retries), strict=True):
                    results.append(r)
                    _notify(on_update, p.cell, "done" if r["ok"] else "failed", r)
            if pending and time.monotonic() - last_check > 5:
                last_check = time.monotonic()
                threads = max(refs[r][2].threads for r in pending)
                if largest_node(ray) >= threads:
                    no_node_since = None
                elif no_node_since is None:
                    no_node_since = last_check
                elif last_check - no_node_since > NO_NODE_GRACE_S:
                    results += _abandon(ray, pending, refs, threads, on_update)
                    pending = []
    except BaseException:
        for ref in pending:  # Ctrl-C: no job goes on writing without its driver
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        raise
    return results


def _events(ray, progress, seen: int) -> list:
    if progress is None:
        return []
    try:
        return ray.get(progress.since.remote(seen), timeout=10)
    except Exception:  # noqa: BLE001 - progress is a display: a sweep runs without it
        return []


def _abandon(ray, pending, refs, threads, on_update) -> list[dict]:
    out = []
    for ref in pending:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)
        _, job, _ = refs[ref]
        for r in _failed(
            job,
            f"no live node of the cluster has the {threads} CPUs a job asks for "
            f"(for {NO_NODE_GRACE_S:.0f} s); run the sweep again once it has",
        ):
            out.append(r)
            _notify(
                on_update,
                next(p.cell for p in job if dataclasses.asdict(p.cell) == r["cell"]),
                "failed",
                r,
            )
    return out


def _collect(ray, ref, job: list[Planned], spec: SweepSpec, shared: bool, retries: int):
    """A job's results; its run directories installed here when they travelled home."""
    try:
        out = ray.get(ref)
    except Exception as e:  # noqa: BLE001 - Ray's errors for lost workers and nodes are many
        return _failed(job, _result_error(e, retries))
    results = out["results"]
    if out["runs"] is not None:
        try:
            installed = install_runs(out["runs"], spec.results_dir)
        except (OSError, tarfile.TarError) as e:
            reason = one_line(getattr(e, "strerror", None) or e)
            return _failed(
                job,
                f"the job's runs came home but cannot be written to "
                f"{runs_dir(spec.results_dir)}: {reason}",
            )
        for r in results:
            if r.get("run_dir"):
                r["run_dir"] = str(installed.get(Path(r["run_dir"]).name, r["run_dir"]))
    for r in results:
        r.setdefault("node", out["node"])
    return results
