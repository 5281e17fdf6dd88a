"""One table of bad inputs to the tool commands (`bench datasets import|export`, `bench run` on
a D4RL file, `bench perf`, `bench behavior train`): each ends with exit status 2, exactly one
`bench: error:` line on stderr, and nothing left behind in the case's folder (no dataset, no
card, no namespace folder, no temp file, no output folder).

Cases run in-process through the console entry point (bench.cli.main). The Minari root and the
user cards folder live in the case's temp folder, whose whole tree is compared before and after.
A read-only file system is simulated by making the relevant call fail with EROFS (tests run as
root, which ignores permission bits). The benchmark and training loops are replaced by ones
that fail the test: a refusal must come before them."""

import errno
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

from bench.cli import main
from tests.data.test_d4rl_io import d4rl_file
from tests.helpers import refused


@dataclass
class Case:
    id: str
    args: list  # after `bench`; "{tmp}" is replaced by the case's temp folder
    message: str
    setup: object = None  # callable(tmp, monkeypatch), run before


# ------------------------------------------------------------------------------- D4RL files
def _replace(key, make):
    """A Pendulum-shaped D4RL file f.hdf5 whose `key` is replaced by make(f, n) (None: deleted)."""

    def setup(tmp, monkeypatch):
        path = d4rl_file(tmp / "f.hdf5", n=250)
        with h5py.File(path, "r+") as f:
            del f[key]
            value = make(f, 250)
            if value is not None:
                f[key] = value

    return setup


def _good_file(tmp, monkeypatch):
    d4rl_file(tmp / "f.hdf5", n=250)


def _cartpole_file(actions):
    def setup(tmp, monkeypatch):
        d4rl_file(tmp / "f.hdf5", n=250, obs_dim=4, actions=lambda rng, n: actions(n))

    return setup


def _hopper_shaped_wrong(tmp, monkeypatch):
    """A file for `bench run --dataset f.hdf5 --env Hopper-v5` (known D4RL references) whose
    observations are 5-dimensional, not Hopper's 11."""
    d4rl_file(
        tmp / "f.hdf5",
        n=250,
        obs_dim=5,
        actions=lambda rng, n: rng.uniform(-1, 1, (n, 3)).astype(np.float32),
    )


def _folder_named_hdf5(tmp, monkeypatch):
    (tmp / "x.hdf5").mkdir()


def _h5py_multiline_error(tmp, monkeypatch):
    """h5py's messages can hold newlines (its time stamps end with one)."""
    _good_file(tmp, monkeypatch)

    def fail(*args, **kwargs):
        raise OSError("Unable to synchronously open file (file read failed: time = Mon\n, x)")

    monkeypatch.setattr("bench.data.d4rl_io.h5py.File", fail)


def _a_file(tmp, monkeypatch):
    _good_file(tmp, monkeypatch)
    (tmp / "a-file").write_text("a file where a folder should go")


def _under_a_file(variable, name):
    """The folder named by environment `variable` lies under a regular file."""

    def setup(tmp, monkeypatch):
        _a_file(tmp, monkeypatch)
        monkeypatch.setenv(variable, str(tmp / "a-file" / name))

    return setup


def _read_only_minari_root(tmp, monkeypatch):
    """mkdir anywhere under the Minari root fails as on a read-only file system."""
    _good_file(tmp, monkeypatch)
    real = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if str(self).startswith(str(tmp / "minari")):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)


def _imported(tmp, monkeypatch):
    """A dataset test/exp-v0 imported into the case's Minari root, to export."""
    from bench.data.d4rl_io import import_d4rl

    import_d4rl(
        _good_file(tmp, monkeypatch) or tmp / "f.hdf5",
        "Pendulum-v1",
        "test/exp-v0",
        ref_min=-1300,
        ref_max=-150,
    )
    (tmp / "out").mkdir()


def _export_read_only(tmp, monkeypatch):
    """The export folder is on a read-only file system: creating the temp file fails, and so
    does removing it (even though it does not exist: EROFS comes before ENOENT)."""
    _imported(tmp, monkeypatch)
    real_file, real_unlink = h5py.File, Path.unlink
    ro = str(tmp / "out")

    def create(name, *args, **kwargs):
        if str(name).startswith(ro):
            raise OSError(errno.EROFS, "Unable to create file (Read-only file system\n)")
        return real_file(name, *args, **kwargs)

    def unlink(self, missing_ok=False):
        if str(self).startswith(ro):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(h5py, "File", create)
    monkeypatch.setattr(Path, "unlink", unlink)


def _zero_transitions(tmp, monkeypatch):
    """Every episode is one step ending in a timeout, and there are no next_observations: all
    of them are dropped (their next observation is unknown)."""
    with h5py.File(tmp / "f.hdf5", "w") as f:
        f["observations"] = np.zeros((3, 3), np.float32)
        f["actions"] = np.zeros((3, 1), np.float32)
        f["rewards"] = np.zeros(3, np.float32)
        f["terminals"] = np.zeros(3, bool)
        f["timeouts"] = np.ones(3, bool)


def _huge_declared_arrays(tmp, monkeypatch):
    """A 2 KiB file that declares 10^10 transitions (unwritten HDF5 chunks take no space)."""
    n = 10**10
    with h5py.File(tmp / "f.hdf5", "w") as f:
        for k, shape, dtype in (
            ("observations", (n, 3), "f4"),
            ("actions", (n, 1), "f4"),
            ("rewards", (n,), "f4"),
            ("terminals", (n,), "?"),
        ):
            f.create_dataset(k, shape=shape, dtype=dtype, chunks=True, compression="gzip")


def _acrobot_file(tmp, monkeypatch):
    d4rl_file(tmp / "f.hdf5", n=250, obs_dim=6, actions=lambda rng, n: rng.integers(0, 3, n))


def _truncated_dataset(tmp, monkeypatch):
    """An imported dataset whose main_data.hdf5 was cut to 5000 bytes."""
    _imported(tmp, monkeypatch)
    with open(tmp / "minari" / "test" / "exp-v0" / "data" / "main_data.hdf5", "r+b") as f:
        f.truncate(5000)


def _fifo(tmp, monkeypatch):
    os.mkfifo(tmp / "f.hdf5")  # h5py would wait on it forever


def _export_into_the_dataset(tmp, monkeypatch):
    _imported(tmp, monkeypatch)
    (tmp / "link.hdf5").symlink_to(tmp / "minari" / "test" / "exp-v0" / "data" / "main_data.hdf5")


# ------------------------------------------------------------------------------- bench select
def _fake_runs(policies="folder", minari_id=None):
    """Two complete runs of bc on dataset `ds` in {tmp}/res, each keeping one policy file (never
    read: the refusals come first); policies: 'folder', 'file' (seed 1's policies/ is a file)
    or 'dangling' (a link to nowhere)."""

    def setup(tmp, monkeypatch):
        from tests.analysis.fake_runs import make_run

        if minari_id is not None:
            _imported(tmp, monkeypatch)
        changes = {} if minari_id is None else {"minari_id": minari_id}
        for seed in (0, 1):
            run_id = make_run(tmp / "res", "bc", "ds", seed, [10, 20], **changes)
            folder = tmp / "res" / "runs" / run_id / "policies"
            if seed == 1 and policies == "file":
                folder.write_text("not a folder")
            elif seed == 1 and policies == "dangling":
                folder.symlink_to(tmp / "nowhere")
            else:
                folder.mkdir()
                (folder / "step_0000000200.pt").write_bytes(b"never read")

    return setup


def _selection_table(what):
    """Fake runs, and selection.parquet as a folder ('folder') or garbage ('garbage')."""

    def setup(tmp, monkeypatch):
        _fake_runs()(tmp, monkeypatch)
        table = tmp / "res" / "selection.parquet"
        table.mkdir() if what == "folder" else table.write_bytes(b"garbage")

    return setup


def _results_read_only(tmp, monkeypatch):
    _fake_runs()(tmp, monkeypatch)
    real = os.access
    ro = tmp / "res"
    monkeypatch.setattr(
        os,
        "access",
        lambda p, mode, **k: False if Path(p) == ro and mode & os.W_OK else real(p, mode),
    )


def _select_running(tmp, monkeypatch):
    """Another `bench select` holds the results folder's lock (flock on the folder)."""
    import fcntl

    _fake_runs()(tmp, monkeypatch)
    fd = os.open(tmp / "res", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    monkeypatch.setattr("bench.ope.select.run_selection", _must_not_run)
    monkeypatch.setattr("bench.cli.select.preflight", lambda *a, **k: None)
    _HELD.append(fd)  # kept open: the lock holds until the test process ends (its folder is
    # the case's own temp folder, never used again)


_HELD: list[int] = []


def _memory(available):
    """The memory available (MemAvailable) is `available` bytes."""

    def setup(tmp, monkeypatch):
        monkeypatch.setattr("bench.data.minari_io.free_memory_bytes", lambda: available)

    return setup


# -------------------------------------------------------------------------------- bench perf
def _disk(free):
    def setup(tmp, monkeypatch):
        usage = shutil.disk_usage(tmp)
        monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=free))

    return setup


_no_disk_for_synthetic_data = _disk(100 * 2**20)


def _read_only_folder(name):
    def setup(tmp, monkeypatch):
        (tmp / name).mkdir()
        real = os.access
        monkeypatch.setattr(
            os,
            "access",
            lambda p, mode, **k: (
                False if Path(p) == tmp / name and mode & os.W_OK else real(p, mode)
            ),
        )

    return setup


def _read_only_fs(tmp, monkeypatch):
    """Creating anything under tmp/ro fails with EROFS."""
    real = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if str(self).startswith(str(tmp / "ro")):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)


IMPORT = ["datasets", "import", "{tmp}/f.hdf5", "--env", "Pendulum-v1", "--as", "test/x-v0"]
REFS = ["--ref-min", "-1300", "--ref-max", "-150"]
PERF = ["perf", "--algos", "bc", "--no-acting", "--memory-sizes", ""]
SELECT = ["select", "--results", "{tmp}/res", "--steps", "10", "-q"]
BEHAVIOR = (
    "behavior train --algo discrete_sac --env CartPole-v1 --steps 300 --eval-every 150 --out "
    "{tmp}/behaviors"
).split()
CASES = [
    # A1: keys that are no numeric arrays
    Case(
        "observations a group",
        [*IMPORT, *REFS],
        "observations is an HDF5 group, not an array",
        _replace("observations", lambda f, n: f.create_group("observations") and None),
    ),
    Case(
        "rewards a scalar",
        [*IMPORT, *REFS],
        "rewards is a scalar",
        _replace("rewards", lambda f, n: np.float32(1.0)),
    ),
    Case(
        "string observations",
        [*IMPORT, *REFS],
        "observations holds |S3 values, not numbers",
        _replace("observations", lambda f, n: np.array([b"abc"] * n)),
    ),
    Case(
        "string terminals",
        [*IMPORT, *REFS],
        "terminals holds object values",
        _replace("terminals", lambda f, n: np.array(["no"] * n, dtype=h5py.string_dtype())),
    ),
    # A2: one line whatever h5py says
    Case(
        "folder named .hdf5",
        [*IMPORT[:2], "{tmp}/x.hdf5", *IMPORT[3:], *REFS],
        "x.hdf5: is a folder, not an HDF5 file",
        _folder_named_hdf5,
    ),
    Case("missing file", [*IMPORT, *REFS], "no such file"),
    Case(
        "h5py message with a newline",
        [*IMPORT, *REFS],
        "cannot be read as HDF5 (Unable to synchronously open file (file read failed: time = "
        "Mon , x))",
        _h5py_multiline_error,
    ),
    # A3: per-transition values with extra dimensions
    Case(
        "rewards (N, 2)",
        [*IMPORT, *REFS],
        "rewards has shape (250, 2); expected one value",
        _replace("rewards", lambda f, n: np.zeros((n, 2), np.float32)),
    ),
    Case(
        "timeouts (N, 1, 1)",
        [*IMPORT, *REFS],
        "timeouts has shape (250, 1, 1)",
        _replace("timeouts", lambda f, n: np.zeros((n, 1, 1), bool)),
    ),
    Case(
        "terminals NaN",
        [*IMPORT, *REFS],
        "terminals must be 0 or 1 (row 5 holds nan)",
        _replace("terminals", lambda f, n: np.where(np.arange(n) == 5, np.nan, 0.0)),
    ),
    Case(
        "timeouts 2",
        [*IMPORT, *REFS],
        "timeouts must be 0 or 1 (row 0 holds 2)",
        _replace("timeouts", lambda f, n: np.full(n, 2, np.int8)),
    ),
    Case(
        "observations beyond float32",
        [*IMPORT, *REFS],
        "observations hold values beyond float32's range, which training reads them in (first "
        "at row 4)",
        _replace(
            "observations",
            lambda f, n: np.where(np.arange(n)[:, None] == 4, 1e300, np.zeros((n, 3))),
        ),
    ),
    # A4: the file does not fit the env
    Case(
        "observation shape",
        [*IMPORT, *REFS],
        "observations have shape (4,) per step, but Pendulum-v1 observes (3,)",
        _replace("observations", lambda f, n: np.zeros((n, 4), np.float32)),
    ),
    Case(
        "next_observations shape",
        [*IMPORT, *REFS],
        "next_observations have shape (2,)",
        _replace("next_observations", lambda f, n: np.zeros((n, 2), np.float32)),
    ),
    Case(
        "action shape",
        [*IMPORT, *REFS],
        "actions have shape (2,) per step",
        _replace("actions", lambda f, n: np.zeros((n, 2), np.float32)),
    ),
    Case(
        "action above the bounds",
        [*IMPORT, *REFS],
        "actions outside Pendulum-v1's action bounds [[-2.], [2.]] (first at row 7: [2.5])",
        _replace("actions", lambda f, n: np.where(np.arange(n)[:, None] == 7, 2.5, 0.0)),
    ),
    Case(
        "NaN action",
        [*IMPORT, *REFS],
        "actions hold NaN or inf (first at row 3)",
        _replace("actions", lambda f, n: np.where(np.arange(n)[:, None] == 3, np.nan, 0.0)),
    ),
    Case(
        "NaN observation",
        [*IMPORT, *REFS],
        "observations hold NaN or inf (first at row 9)",
        _replace(
            "observations",
            lambda f, n: np.where(np.arange(n)[:, None] == 9, np.nan, np.zeros((n, 3))),
        ),
    ),
    Case(
        "inf reward",
        [*IMPORT, *REFS],
        "rewards hold NaN or inf (first at row 0)",
        _replace("rewards", lambda f, n: np.full(n, np.inf)),
    ),
    Case(
        "discrete action out of range",
        [*IMPORT[:4], "CartPole-v1", *IMPORT[5:], *REFS],
        "actions must be in [0, 2) for CartPole-v1 (row 0 holds 2)",
        _cartpole_file(lambda n: np.full(n, 2, np.int64)),
    ),
    Case(
        "discrete action not an integer",
        [*IMPORT[:4], "CartPole-v1", *IMPORT[5:], *REFS],
        "actions must be integers for CartPole-v1's discrete actions (row 0 holds 0.5)",
        _cartpole_file(lambda n: np.full(n, 0.5, np.float32)),
    ),
    Case(
        "unknown env",
        [*IMPORT[:4], "NoSuchEnv-v9", *IMPORT[5:], *REFS],
        "cannot make env NoSuchEnv-v9",
        _good_file,
    ),
    Case(
        "run on a file that does not fit the env",
        (
            "run --algo bc --dataset {tmp}/f.hdf5 --env Hopper-v5 -q --results-dir {tmp}/results"
        ).split(),
        "observations have shape (5,) per step, but Hopper-v5 observes (11,)",
        _hopper_shaped_wrong,
    ),
    # B: reference returns
    Case(
        "ref-min nan",
        [*IMPORT, "--ref-min", "nan", "--ref-max", "1"],
        "must be finite numbers",
        _good_file,
    ),
    Case(
        "ref-max inf",
        [*IMPORT, "--ref-min", "0", "--ref-max", "inf"],
        "must be finite numbers",
        _good_file,
    ),
    Case(
        "refs equal",
        [*IMPORT, "--ref-min", "5", "--ref-max", "5"],
        "--ref-max (5) must be greater than --ref-min (5)",
        _good_file,
    ),
    Case(
        "refs reversed",
        [*IMPORT, "--ref-min", "10", "--ref-max", "-10"],
        "--ref-max (-10) must be greater than --ref-min (10)",
        _good_file,
    ),
    Case(
        "only ref-max",
        [*IMPORT[:4], "Hopper-v5", *IMPORT[5:], "--ref-max", "10"],
        "give both --ref-min and --ref-max, or neither",
        _good_file,
    ),
    # A5: export to a read-only folder
    Case(
        "export to a read-only file system",
        ["datasets", "export", "minari:test/exp-v0", "{tmp}/out/b.hdf5"],
        "out/b.hdf5: Unable to create file (Read-only file system )",
        _export_read_only,
    ),
    Case(
        "export onto a device",
        ["datasets", "export", "minari:test/exp-v0", "/dev/null"],
        "cannot write /dev/null: it is not a regular file",
        _imported,
    ),
    Case(
        "export onto a folder",
        ["datasets", "export", "minari:test/exp-v0", "{tmp}/out"],
        "out: it is a folder",
        _imported,
    ),
    # C: a Minari root that cannot be written, a card that cannot be written
    Case(
        "Minari root under a file",
        [*IMPORT, *REFS],
        "cannot write to the Minari root {tmp}/a-file/minari (Not a directory)",
        _under_a_file("MINARI_DATASETS_PATH", "minari"),
    ),
    Case(
        "Minari root read-only",
        [*IMPORT, *REFS],
        "cannot write to the Minari root {tmp}/minari (Read-only file system)",
        _read_only_minari_root,
    ),
    Case(
        "build into a Minari root under a file",
        ["datasets", "build", "cartpole-mixed", "--size", "1000"],
        "cannot write to the Minari root {tmp}/a-file/minari (Not a directory)",
        _under_a_file("MINARI_DATASETS_PATH", "minari"),
    ),
    Case(
        "build into a read-only Minari root",
        ["datasets", "build", "cartpole-mixed", "--size", "1000"],
        "cannot write to the Minari root {tmp}/minari (Read-only file system)",
        _read_only_minari_root,
    ),
    Case(
        "card folder under a file",
        [*IMPORT, *REFS],
        "cannot write the dataset card {tmp}/a-file/cards/test/x-v0.toml",
        _under_a_file("BENCH_CARDS_DIR", "cards"),
    ),
    # D: bench perf
    Case("perf repeats 0", [*PERF, "--repeats", "0"], "--repeats must be between 1 and 1000"),
    Case("perf repeats huge", [*PERF, "--repeats", "1001"], "--repeats must be between"),
    Case("perf min-time 0", [*PERF, "--min-time", "0"], "--min-time must be a number of seconds"),
    Case("perf min-time nan", [*PERF, "--min-time", "nan"], "--min-time must be"),
    Case("perf min-time inf", [*PERF, "--min-time", "inf"], "--min-time must be"),
    Case("perf min-time huge", [*PERF, "--min-time", "601"], "in (0, 600] (got 601.0)"),
    Case("perf threads 0", [*PERF, "--threads", "1,0"], "--threads: each count must be between"),
    Case("perf threads huge", [*PERF, "--threads", "1025"], "between 1 and 1024 (got 1025)"),
    Case("perf seeds 0", [*PERF, "--seeds", "1,0"], "--seeds: each count must be between 1 and"),
    Case("perf seeds text", [*PERF, "--seeds", "ten"], "bad --seeds 'ten'"),
    Case("perf batch 0", [*PERF, "--batch-sizes", "32,0"], "--batch-sizes: each count must be"),
    Case("perf batch huge", [*PERF, "--batch-sizes", "100000"], "between 1 and 65,536"),
    Case("perf batch text", [*PERF, "--batch-sizes", "x"], "bad --batch-sizes 'x'"),
    Case("perf precision", [*PERF, "--precision", "fp32,fp16"], "--precision must be one of"),
    Case("perf precision none", [*PERF, "--precision", ","], "--precision needs at least one"),
    Case("perf device", [*PERF, "--device", "cuda:7"], "device 'cuda:7' is not available"),
    Case(
        "perf memory size small",
        ["perf", "--algos", "bc", "--memory-sizes", "10"],
        "--memory-sizes: each size must be between 1,000 and 10,000,000 transitions (got 10)",
    ),
    Case(
        "perf memory size huge",
        ["perf", "--algos", "bc", "--memory-sizes", "20000000"],
        "(got 20,000,000)",
    ),
    Case(
        "perf memory size without disk",
        ["perf", "--algos", "bc", "--memory-sizes", "100000"],
        "--memory-sizes 100,000 needs ~753 MiB in the temp folder",
        _no_disk_for_synthetic_data,
    ),
    Case(
        "perf memory size with the disk but no margin",
        ["perf", "--algos", "bc", "--memory-sizes", "100000"],
        "for its synthetic dataset (margin included), 677 MiB free",
        _disk(100_000 * 7_100 + 1),
    ),
    Case(
        "perf memory size beyond the memory",
        ["perf", "--algos", "bc", "--memory-sizes", "1000000"],
        "--memory-sizes 1,000,000 needs ~9,215 MiB of memory to load, 4,096 MiB available",
        _memory(4 << 30),
    ),
    Case(
        "perf memory size of 10M",
        ["perf", "--algos", "bc", "--memory-sizes", "10000000"],
        "--memory-sizes 10,000,000 needs ~",
        _memory(4 << 30),
    ),
    Case("perf memory size negative", [*PERF[:-1], "-5"], "(got -5)"),
    Case("perf memory size nan", [*PERF[:-1], "nan"], "bad --memory-sizes 'nan'"),
    Case(
        "perf seeds beyond the memory",
        ["perf", "--algos", "discrete_bcq", "--no-acting", "--memory-sizes", "", "--seeds", "1,64"],
        "1 job(s) at once training 64 seed(s) need ~11,892 MiB (up to 160.8 MiB per seed), "
        "2,048 MiB available; give fewer --seeds than 64 (discrete_bcq, atari, batch 32)",
        _memory(2 << 30),
    ),
    Case(
        "perf seeds 1024, vector only",
        [*PERF, "--seeds", "1024"],
        "give fewer --seeds than 1024 (bc, vector, batch 256)",
        _memory(2 << 30),
    ),
    Case(
        "perf json in a missing folder",
        [*PERF, "--json", "{tmp}/no/r.json"],
        "cannot write {tmp}/no/r.json: {tmp}/no does not exist",
    ),
    Case(
        "perf json under a file",
        [*PERF, "--json", "{tmp}/a-file/r.json"],
        "{tmp}/a-file is not a folder",
        _a_file,
    ),
    Case(
        "perf json onto a device",
        [*PERF, "--json", "/dev/null"],
        "cannot write /dev/null: it is not a regular file",
    ),
    Case(
        "perf json read-only",
        [*PERF, "--json", "{tmp}/ro/r.json"],
        "folder {tmp}/ro is not writable",
        _read_only_folder("ro"),
    ),
    # F: bench select
    Case(
        "select batch beyond the memory",
        [*SELECT, "--batch-size", "100000000"],
        "--batch-size 100,000,000: FQE on ds (2 candidates trained together) needs ~",
        _fake_runs(),
    ),
    Case(
        "select batch beyond the memory, one at a time",
        [*SELECT, "--batch-size", "100000000", "--no-vectorize"],
        "FQE on ds (one candidate) needs ~1,718,758 MiB",
        _fake_runs(),
    ),
    Case(
        "select batch above the dataset",
        [*SELECT, "--batch-size", "251"],
        "--batch-size 251 is larger than dataset ds (250 transitions)",
        _fake_runs(minari_id="test/exp-v0"),
    ),
    Case("select batch 0", [*SELECT, "--batch-size", "0"], "--batch-size must be positive"),
    Case("select batch nan", [*SELECT, "--batch-size", "nan"], "Invalid value for '--batch-size'"),
    Case(
        "select policies a file",
        SELECT,
        "policies is not a folder: the run's kept policies cannot be read",
        _fake_runs("file"),
    ),
    Case(
        "select policies a dangling link",
        SELECT,
        "policies is not a folder",
        _fake_runs("dangling"),
    ),
    Case(
        "select table a folder",
        SELECT,
        "selection.parquet: it is a folder or a broken link",
        _selection_table("folder"),
    ),
    Case(
        "select table garbage",
        SELECT,
        "selection.parquet: not a readable parquet table",
        _selection_table("garbage"),
    ),
    Case(
        "select results read-only", SELECT, "folder {tmp}/res is not writable", _results_read_only
    ),
    Case(
        "select while another one runs",
        SELECT,
        "another `bench select` is scoring {tmp}/res now",
        _select_running,
    ),
    # G: what an import keeps, and a dataset that cannot be read back
    Case(
        "import keeping 0 transitions",
        [*IMPORT, *REFS],
        "no transitions left to import",
        _zero_transitions,
    ),
    Case(
        "import of arrays that cannot fit in memory",
        [*IMPORT, *REFS],
        "f.hdf5: its arrays take 200,272 MiB; reading and importing them needs",
        _huge_declared_arrays,
    ),
    Case(
        "export of a truncated dataset",
        ["datasets", "export", "minari:test/exp-v0", "{tmp}/out/b.hdf5"],
        "dataset test/exp-v0: cannot be read (OSError: Unable to synchronously open file "
        "(truncated file",
        _truncated_dataset,
    ),
    Case("import from a FIFO", [*IMPORT, *REFS], "f.hdf5: not a regular file", _fifo),
    Case(
        "run on a FIFO",
        (
            "run --algo bc --dataset {tmp}/f.hdf5 --env Pendulum-v1 -q --results-dir {tmp}/results"
        ).split(),
        "f.hdf5: not a regular file",
        _fifo,
    ),
    Case(
        "run on a folder named .hdf5",
        ["run", "--algo", "bc", "--dataset", "{tmp}/x.hdf5", "--env", "Pendulum-v1", "-q"],
        "x.hdf5: not a regular file",
        _folder_named_hdf5,
    ),
    Case(
        "import from a device",
        [*IMPORT[:2], "/dev/zero", *IMPORT[3:], *REFS],
        "/dev/zero: not a regular file",
    ),
    Case(
        "export onto the dataset's own file",
        [
            "datasets",
            "export",
            "minari:test/exp-v0",
            "{tmp}/minari/test/exp-v0/data/main_data.hdf5",
        ],
        "is inside the folder of dataset test/exp-v0",
        _imported,
    ),
    Case(
        "export through a link onto the dataset's file",
        ["datasets", "export", "minari:test/exp-v0", "{tmp}/link.hdf5"],
        "cannot write {tmp}/link.hdf5: it is inside the folder of dataset test/exp-v0",
        _export_into_the_dataset,
    ),
    Case(
        "run on a file of an env without references",
        (
            "run --algo bc --dataset {tmp}/f.hdf5 --env Acrobot-v1 -q --results-dir {tmp}/results"
        ).split(),
        "`bench run` takes no --ref-min and --ref-max: import the file with them, `bench "
        "datasets import {tmp}/f.hdf5 --env Acrobot-v1 --as NAME --ref-min MIN --ref-max MAX`",
        _acrobot_file,
    ),
    # E: bench behavior train
    Case("behavior seed negative", [*BEHAVIOR, "--seed", "-1"], "--seed must be between 0 and"),
    Case("behavior seed huge", [*BEHAVIOR, "--seed", str(2**31)], "(got 2147483648)"),
    Case("behavior threads 0", [*BEHAVIOR, "--threads", "0"], "--threads must be between 1"),
    Case("behavior threads huge", [*BEHAVIOR, "--threads", "1025"], "and 1024 (got 1025)"),
    Case(
        "behavior steps huge",
        [*BEHAVIOR, "--steps", "100000001"],
        "--steps must be at most 100,000,000",
    ),
    Case("behavior utd huge", [*BEHAVIOR, "--utd", "1001"], "--utd must be at most 1000"),
    Case(
        "behavior eval-every above steps",
        [*BEHAVIOR, "--eval-every", "301"],
        "--eval-every (301) is more than --steps (300)",
    ),
    Case(
        "behavior start-steps negative",
        [*BEHAVIOR, "--start-steps", "-1"],
        "--start-steps must be 0 or more",
    ),
    Case(
        "behavior out under a file",
        [*BEHAVIOR, "--out", "{tmp}/a-file/b"],
        "cannot create the output folder {tmp}/a-file/b",
        _a_file,
    ),
    Case(
        "behavior out on a read-only fs",
        [*BEHAVIOR, "--out", "{tmp}/ro/b"],
        "cannot create the output folder {tmp}/ro/b: Read-only file system",
        _read_only_fs,
    ),
    Case(
        "behavior out read-only",
        [*BEHAVIOR, "--out", "{tmp}/ro"],
        "cannot write to the output folder {tmp}/ro",
        _read_only_folder("ro"),
    ),
]


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _must_not_run(*args, **kwargs):
    raise AssertionError("the refusal came after the work had started")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_tool_input_is_one_line_exit_2_and_leaves_nothing(case, tmp_path, monkeypatch, capsys):
    tmp = tmp_path
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp / "minari"))
    monkeypatch.setenv("BENCH_CARDS_DIR", str(tmp / "cards"))
    monkeypatch.chdir(tmp)
    for name in ("measure_case", "measure_acting", "measure_atari_memory"):
        monkeypatch.setattr(f"bench.perf.{name}", _must_not_run)
    monkeypatch.setattr("bench.collect.online.progress_bar", _must_not_run)
    if case.setup is not None:
        case.setup(tmp, monkeypatch)
    args = [a.replace("{tmp}", str(tmp)) for a in case.args]
    before = _tree(tmp)
    refused(monkeypatch, capsys, args, case.message.replace("{tmp}", str(tmp)))
    assert _tree(tmp) == before  # no dataset, card, namespace, temp file or output folder


def test_every_case_has_its_own_id():
    """pytest makes repeated ids unique by numbering them, so a case copied and edited under the
    same id would run under a name that says nothing: refused here."""
    ids = [c.id for c in CASES]
    assert sorted({i for i in ids if ids.count(i) > 1}) == []


# ----------------------------------------------------------------- what is fixed, not refused
def test_per_transition_arrays_of_shape_n_1_are_squeezed(tmp_path, minari_root):
    """rewards/terminals/timeouts stored as (N, 1) import as (N,): n-step returns work."""
    from bench.data.d4rl_io import import_d4rl, read_d4rl
    from bench.data.data import OfflineData

    src = d4rl_file(tmp_path / "a.hdf5")
    with h5py.File(src, "r+") as f:
        for k in ("rewards", "terminals", "timeouts"):
            v = f[k][()]
            del f[k]
            f[k] = v[:, None]
    assert all(read_d4rl(src)[k].shape == (250,) for k in ("rewards", "terminals", "timeouts"))
    ds = import_d4rl(src, "Pendulum-v1", "test/squeezed-v0", ref_min=-1300, ref_max=-150)
    data = OfflineData.from_minari(ds)
    data.compute_nstep(0.99, 3)
    assert data.rew.shape == (250,)


def test_export_removes_stale_temp_files_of_killed_exports(tmp_path, minari_root):
    """A kill -9 during export leaves .NAME.<pid>.tmp: the next export into that folder removes
    those of dead processes and keeps those of live ones (an export under way)."""
    import subprocess

    from bench.data.d4rl_io import export_d4rl, import_d4rl

    ds = import_d4rl(
        d4rl_file(tmp_path / "a.hdf5"), "Pendulum-v1", "test/stale-v0", ref_min=-1300, ref_max=-150
    )
    dead = subprocess.Popen(["true"])
    dead.wait()
    out = tmp_path / "out"
    out.mkdir()
    (out / f".b.hdf5.{dead.pid}.tmp").write_bytes(b"half")
    (out / f".other.hdf5.{dead.pid}.tmp").write_bytes(b"another target's")
    (out / ".b.hdf5.1.tmp").write_bytes(b"pid 1 is alive")
    export_d4rl(ds, out / "b.hdf5")
    assert sorted(os.listdir(out)) == [".b.hdf5.1.tmp", f".other.hdf5.{dead.pid}.tmp", "b.hdf5"]


def test_perf_json_is_written_atomically(tmp_path, monkeypatch, capsys):
    """--json goes through atomic_write_bytes: a whole file, no temp file beside it."""
    import json

    import bench.perf
    import bench.results.schema as schema

    row = {
        "algo": "bc",
        "shape": "vector",
        "batch_size": 32,
        "seeds": 1,
        "precision": "fp32",
        "threads": 1,
        "device": "cpu",
        "updates_per_s": 1.0,
        "seed_updates_per_s": 1.0,
        "mflop_per_update": 1.0,
        "achieved_gflops": 1.0,
        "roofline_gflops": 1.0,
        "roofline_fraction": 1.0,
        "peak_mib_per_seed": 1.0,
    }
    monkeypatch.setattr(bench.perf, "measure_case", lambda *a, **k: dict(row))
    writes = []
    real = schema.atomic_write_bytes
    monkeypatch.setattr(schema, "atomic_write_bytes", lambda p, b: (writes.append(p), real(p, b)))
    out = tmp_path / "r.json"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "bench",
            "perf",
            "--algos",
            "bc",
            "--threads",
            "1",
            "--seeds",
            "1",
            "--no-acting",
            "--memory-sizes",
            "",
            "--json",
            str(out),
        ],
    )
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0, capsys.readouterr().err
    assert writes == [out]
    assert json.loads(out.read_text())["training"] == [row, row]  # batch 32 and 256
    assert os.listdir(tmp_path) == ["r.json"]
