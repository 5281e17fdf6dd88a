"""A Ray cluster of separate nodes on one machine, as a cluster user has them: a head node and a
worker node started with `ray start`, all inside a network namespace of their own (only loopback,
so Ray binds 127.0.0.1 and nothing leaves the machine), and the worker node inside a mount
namespace of its own with a tmpfs over the driver's folders (its results folder, Minari root and
user cards), so that its jobs share no disk with the driver. The worker has its own Minari root
and scratch folder. Needs root (namespaces) and Ray; `available()` says why not.

Used by tests/test_cluster.py, and from the command line to measure the overhead per job:
    python -m tests.cluster overhead [JOBS]
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORT = 6379  # the namespace is ours: any port is free
BIN = Path(sys.executable).parent
ADDRESS = f"127.0.0.1:{PORT}"


def available() -> str | None:
    """None when a cluster can be started here, else why not."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "Ray is not installed (pip install 'bench[ray]')"
    if os.geteuid() != 0:
        return "starting nodes in their own network and mount namespaces needs root"
    for tool in ("unshare", "nsenter", "ip", "mount"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = subprocess.run(
        ["unshare", "--net", "-m", "--propagation", "private", "true"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"cannot create namespaces here: {probe.stderr.strip()}"
    return None


def _ns_of(pid: int, kind: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def _pids_in(kind: str, ns: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and _ns_of(int(entry), kind) == ns:
            out.append(int(entry))
    return out


def _kill_all(kind: str, ns: str | None) -> None:
    if ns is None:
        return
    for _ in range(20):
        pids = _pids_in(kind, ns)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


class Cluster:
    """Start with `with Cluster(root) as c:`; everything it started is killed on exit."""

    def __init__(self, root: Path, head_cpus: int = 1, worker_cpus: int = 1):
        self.root = Path(root)
        self.driver = self.root / "driver"  # the driver's results, Minari root, user cards
        self.shared = self.root / "shared"  # a results folder every node sees
        self.worker_minari = self.root / "worker-minari"
        self.worker_scratch = self.root / "worker-scratch"
        for d in (self.driver, self.shared, self.worker_minari, self.worker_scratch):
            d.mkdir(parents=True, exist_ok=True)
        self.head_cpus, self.worker_cpus = head_cpus, worker_cpus
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="br", dir="/tmp"))  # short: socket paths
        self.env = os.environ | {
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_AUTH_MODE": "token",  # as `ray start --head` sets up a cluster by default
            "RAY_AUTH_TOKEN": secrets.token_hex(16),
            "MINARI_DATASETS_PATH": str(self.driver / "minari"),
            "BENCH_CARDS_DIR": str(self.driver / "bench-cards"),
            "OMP_NUM_THREADS": "1",
        }
        self.holder: subprocess.Popen | None = None
        self.head: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.worker_id: str | None = None  # the worker node's Ray node id
        self.net_ns: str | None = None

    # -- lifecycle --
    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", "ip link set lo up && exec sleep infinity"],
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while _ns_of(self.holder.pid, "net") == _ns_of(os.getpid(), "net"):
            if time.monotonic() > deadline:
                raise RuntimeError("the network namespace did not come up")
            time.sleep(0.05)
        self.net_ns = _ns_of(self.holder.pid, "net")
        time.sleep(0.2)  # `ip link set lo up` before anything binds
        self.head = self._popen(
            [
                str(BIN / "ray"),
                "start",
                "--head",
                "--block",
                *self._node_args(self.head_cpus),
                "--port",
                str(PORT),
                "--include-dashboard",
                "false",
            ],
            self.env,
        )
        self.wait_nodes(1)
        self.start_worker()

    def start_worker(self) -> None:
        """A worker node in a mount namespace of its own: tmpfs over the driver's folders."""
        env = self.env | {
            "MINARI_DATASETS_PATH": str(self.worker_minari),
            "BENCH_CARDS_DIR": str(self.worker_minari.parent / "worker-cards"),
            "BENCH_SCRATCH": str(self.worker_scratch),
        }
        ray_start = " ".join(
            [
                str(BIN / "ray"),
                "start",
                "--block",
                "--address",
                ADDRESS,
                *self._node_args(self.worker_cpus),
            ]
        )
        script = f"mount -t tmpfs none {self.driver} && exec {ray_start}"
        self.worker = self._popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script], env
        )
        # up once the cluster lists its raylet's node as alive (a node killed just before may
        # still be listed too, until the cluster notices: counting nodes would race with that)
        deadline = time.monotonic() + 120
        while True:
            node = self._worker_raylet_node()
            if node is not None and node in {n["id"] for n in self.alive_nodes()}:
                self.worker_id = node
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker node did not come up:\n{self._logs()}")
            time.sleep(1)

    def _worker_raylet_node(self) -> str | None:
        """The node id of the raylet in the worker's mount namespace, once it runs."""
        ns = _ns_of(self.worker.pid, "mnt")
        if ns is None or ns == _ns_of(os.getpid(), "mnt"):  # not yet in a namespace of its own
            return None
        for pid in _pids_in("mnt", ns):
            try:
                args = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
            except OSError:
                continue
            for arg in args:
                if arg.startswith("--node_id="):
                    return arg.split("=", 1)[1]
        return None

    def _logs(self) -> str:
        return "".join(p.read_text()[-2000:] for p in sorted(self.root.glob("node-*.log")))

    def _node_args(self, cpus: int) -> list[str]:
        return [
            "--node-ip-address",
            "127.0.0.1",
            "--num-cpus",
            str(cpus),
            "--temp-dir",
            str(self.ray_tmp),
            "--disable-usage-stats",
            "--object-store-memory",
            str(200 * 2**20),
        ]

    def _popen(self, argv: list[str], env: dict) -> subprocess.Popen:
        log = open(self.root / f"node-{len(list(self.root.glob('node-*')))}.log", "w")  # noqa: SIM115
        return subprocess.Popen(
            self.in_ns(argv), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def in_ns(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", *argv]

    def kill_worker(self) -> None:
        """The worker node lost: every process of it killed at once (kill -9), as a machine
        that goes down."""
        _kill_all("mnt", _ns_of(self.worker.pid, "mnt"))
        self.worker.wait(timeout=30)

    def stop(self) -> None:
        _kill_all("net", self.net_ns)
        for p in (self.worker, self.head, self.holder):
            if p is not None:
                with contextlib.suppress(OSError):
                    p.kill()
                with contextlib.suppress(Exception):
                    p.wait(timeout=10)
        shutil.rmtree(self.ray_tmp, ignore_errors=True)

    # -- the driver side --
    def python(self, code: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.in_ns([sys.executable, "-c", code]),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def alive_nodes(self) -> list[dict]:
        code = (
            f"import json, ray; ray.init(address={ADDRESS!r}, log_to_driver=False); "
            "print('NODES', json.dumps([{'id': n['NodeID'], 'cpus': n['Resources'].get('CPU', 0)} "
            "for n in ray.nodes() if n['Alive']]))"
        )
        import json

        res = self.python(code)
        if res.returncode != 0:
            return []
        lines = [ln for ln in res.stdout.splitlines() if ln.startswith("NODES ")]
        return json.loads(lines[-1][len("NODES ") :]) if lines else []

    def wait_nodes(self, n: int, timeout: float = 120) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.alive_nodes()
            if len(nodes) >= n:
                return nodes
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(nodes)} of {n} Ray nodes came up:\n{self._logs()}")
            time.sleep(1)

    def bench(
        self,
        *args,
        timeout: float = 600,
        env_extra: dict | None = None,
        background: bool = False,
        cwd: Path | None = None,
    ):
        """`bench ARGS` on the driver (this machine's disk, inside the cluster's network)."""
        argv = self.in_ns([str(BIN / "bench"), *map(str, args)])
        env = self.env | (env_extra or {})
        if background:
            return subprocess.Popen(
                argv,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
                cwd=cwd,
            )
        return subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd
        )


def overhead(jobs: int = 100) -> None:
    """Seconds per job of `jobs` tiny one-seed jobs on the two-node cluster, beside the same
    grid on the local pool (2 workers)."""
    root = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    seeds = f"0-{jobs - 1}"
    tiny = [
        "--algo",
        "bc",
        "--dataset",
        "cartpole-mixed",
        "--seeds",
        seeds,
        "--seeds-per-job",
        "1",
        "--steps",
        "10",
        "--eval-every",
        "10",
        "--eval-episodes",
        "1",
        "--final-episodes",
        "0",
        "--workers",
        "2",
        "-q",
    ]
    try:
        with Cluster(root) as c:
            built = c.bench("datasets", "build", "cartpole-mixed", "--size", "3000", "-q")
            assert built.returncode == 0, built.stderr
            for name, extra in (
                ("local pool", []),
                ("two-node Ray cluster", ["--executor", "ray", "--address", ADDRESS]),
            ):
                t0 = time.perf_counter()
                res = c.bench(
                    "sweep", *tiny, "--results-dir", root / name.split()[0], *extra, timeout=3600
                )
                wall = time.perf_counter() - t0
                assert res.returncode == 0, res.stdout + res.stderr
                print(f"{name}: {jobs} jobs in {wall:.1f} s, {wall / jobs:.2f} s per job")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "overhead":
        why = available()
        if why:
            sys.exit(f"cannot start a cluster: {why}")
        overhead(int(sys.argv[2]) if len(sys.argv) > 2 else 100)
    else:
        sys.exit(__doc__)
