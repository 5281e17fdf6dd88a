"""One table of bad inputs to `bench run`: each ends with exit status 2, one line on stderr
naming the problem, no traceback, and no new run directory.

Cases run in-process through the console entry point (bench.cli.main), so a full disk can be
simulated by mocking fsync; the dataset corruptions reuse the fuzz fixtures of
tests/data/test_validate.py (a tiny real Minari dataset, corrupted in a copy)."""

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

import bench.results.schema as results_module
from tests.data.test_validate import (  # noqa: F401 - `built` is a fixture
    MINARI_ID,
    built,
    empty,
    garbage_file,
    missing_key,
    nan_rewards,
    truncated_file,
)
from tests.helpers import refused


@dataclass
class Case:
    id: str
    args: list  # after `bench run`; "{tmp}" is replaced by the case's temp folder
    message: str
    setup: object = None  # callable(tmp, minari_root, monkeypatch), run before


def _disk_full(tmp, root, monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results_module.os, "fsync", fsync)


def _foreign_dir(tmp, root, monkeypatch):
    (tmp / "foreign").mkdir()
    (tmp / "foreign" / "notes.txt").write_text("not a run")


def _blocker(tmp, root, monkeypatch):
    (tmp / "a-file").write_text("a file where the results folder should go")


def _half_written_dataset(tmp, root, monkeypatch):
    """What an interrupted write leaves: data without metadata.json (never loads as whole)."""
    d = root / "bench" / "half-v0" / "data"
    d.mkdir(parents=True)
    (d / "main_data.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    monkeypatch.setattr("bench.data.catalog._remote_host", lambda: "unreachable.invalid")


def _run_dir(tmp, root, monkeypatch):
    """A folder to resume: refusals of the options come before it is read."""
    (tmp / "run").mkdir()


def _minari_meta(**changes):
    """The fuzz dataset copied to bench/meta-v0 with these metadata values changed."""

    def setup(tmp, root, monkeypatch):
        import json

        shutil.copytree(root / MINARI_ID, root / "bench" / "meta-v0")
        path = root / "bench" / "meta-v0" / "data" / "metadata.json"
        meta = json.loads(path.read_text())
        meta.update(changes, dataset_id="bench/meta-v0")
        path.write_text(json.dumps(meta))  # json writes NaN as NaN, as Minari reads it

    return setup


def _memory(available):
    def setup(tmp, root, monkeypatch):
        monkeypatch.setattr("bench.data.minari_io.free_memory_bytes", lambda: available)

    return setup


def _corrupt(fn):
    return lambda tmp, root, monkeypatch: fn(root)


FUZZ = ["--dataset", "fuzz", "--steps", "2"]
PEND = ["--dataset", "fuzz-pendulum", "--steps", "2"]
CASES = [
    Case("unknown algo", ["--algo", "nope", "--dataset", "fuzz"], "unknown algorithm 'nope'"),
    Case("unknown dataset", ["--algo", "bc", "--dataset", "nope"], "unknown dataset 'nope'"),
    Case("bad --set key", ["--algo", "bc", *FUZZ, "--set", "nope=1"], "nope"),
    Case("bad --set value", ["--algo", "bc", *FUZZ, "--set", "lr=fast"], "lr"),
    Case("bad --set syntax", ["--algo", "bc", *FUZZ, "--set", "lr"], "key=value"),
    Case("zero steps", ["--algo", "bc", "--dataset", "fuzz", "--steps", "0"], "steps"),
    Case(
        "seed and seeds",
        ["--algo", "bc", *FUZZ, "--seed", "1", "--seeds", "0-2"],
        "give --seed or --seeds, not both",
    ),
    Case(
        "seeds per job 0",
        ["--algo", "bc", *FUZZ, "--seeds", "0-2", "--seeds-per-job", "0"],
        "--seeds-per-job must be between 1 and 1024, got 0",
    ),
    Case(
        "seeds per job huge",
        ["--algo", "bc", *FUZZ, "--seeds-per-job", "100000"],
        "--seeds-per-job must be between 1 and 1024",
    ),
    Case("seeds backwards", ["--algo", "bc", *FUZZ, "--seeds", "5-2"], "bad --seeds range"),
    Case("resume with seeds", ["--resume", "{tmp}", "--seeds", "0-1"], "drop --seed/--seeds"),
    Case("device tpu", ["--algo", "bc", *FUZZ, "--device", "tpu"], "device 'tpu' is not available"),
    Case("negative steps", ["--algo", "bc", "--dataset", "fuzz", "--steps", "-5"], "steps"),
    Case(
        "corrupt HDF5", ["--algo", "bc", *FUZZ], "cannot be read (OSError", _corrupt(garbage_file)
    ),
    Case(
        "truncated HDF5",
        ["--algo", "bc", *FUZZ],
        "cannot be read (OSError",
        _corrupt(truncated_file),
    ),
    Case(
        "missing keys", ["--algo", "bc", *FUZZ], "cannot be read (KeyError", _corrupt(missing_key)
    ),
    Case(
        "NaN rewards",
        ["--algo", "bc", *FUZZ],
        "NaN or infinite values in rewards",
        _corrupt(nan_rewards),
    ),
    Case("empty dataset", ["--algo", "bc", *FUZZ], "no transitions", _corrupt(empty)),
    Case(
        "wrong obs shape",
        ["--algo", "bc", "--dataset", "fuzz-pendulum", "--steps", "2"],
        "observations have shape (4,), the env's are (3,)",
    ),
    Case(
        "built for another env",
        ["--algo", "bc", "--dataset", "fuzz-acrobot", "--steps", "2"],
        "observations have shape (4,), the env's are (6,)",
    ),
    Case("continuous algo, discrete data", ["--algo", "bcq", *FUZZ], "discrete"),
    Case("resume of a missing run dir", ["--resume", "{tmp}/nowhere"], "nowhere"),
    Case(
        "resume of a foreign dir",
        ["--resume", "{tmp}/foreign"],
        "not a bench run directory",
        _foreign_dir,
    ),
    Case(
        "results dir not writable",
        ["--algo", "bc", *FUZZ, "--results-dir", "{tmp}/a-file/r"],
        "cannot create run directory",
        _blocker,
    ),
    Case("disk full", ["--algo", "bc", *FUZZ], "No space left on device", _disk_full),
    Case(
        "interrupted dataset build",
        ["--algo", "bc", "--dataset", "minari:bench/half-v0"],
        "bench/half-v0 is not local",
        _half_written_dataset,
    ),
    # numbers at 0, negative, nan, inf, absurdly large
    Case("seed negative", ["--algo", "bc", *FUZZ, "--seed", "-1"], "--seed must be in 0.."),
    Case("seed huge", ["--algo", "bc", *FUZZ, "--seed", "99999999999"], "--seed must be in 0.."),
    Case("seed nan", ["--algo", "bc", *FUZZ, "--seed", "nan"], "Invalid value for '--seed'"),
    Case(
        "steps huge",
        ["--algo", "bc", "--dataset", "fuzz", "--steps", "1e30"],
        "Invalid value for '--steps'",
    ),
    Case(
        "steps absurd",
        ["--algo", "bc", "--dataset", "fuzz", "--steps", "99999999999"],
        "--steps must be at most",
    ),
    Case(
        "eval-every 0",
        ["--algo", "bc", *FUZZ, "--eval-every", "0"],
        "--eval-every must be positive",
    ),
    Case(
        "eval-episodes absurd",
        ["--algo", "bc", *FUZZ, "--eval-episodes", "1000000000"],
        "--eval-episodes must be at most",
    ),
    Case(
        "final-episodes negative",
        ["--algo", "bc", *FUZZ, "--final-episodes", "-1"],
        "--final-episodes must be >= 0",
    ),
    Case(
        "final-episodes absurd",
        ["--algo", "bc", *FUZZ, "--final-episodes", "100001"],
        "--final-episodes must be at most",
    ),
    Case(
        "final-episodes nan",
        ["--algo", "bc", *FUZZ, "--final-episodes", "nan"],
        "Invalid value for '--final-episodes'",
    ),
    Case("holdout 1", ["--algo", "bc", *FUZZ, "--holdout", "1"], "--holdout must be in [0, 1)"),
    Case(
        "holdout negative",
        ["--algo", "bc", *FUZZ, "--holdout", "-0.1"],
        "--holdout must be in [0, 1)",
    ),
    Case("holdout nan", ["--algo", "bc", *FUZZ, "--holdout", "nan"], "--holdout must be in [0, 1)"),
    Case("holdout inf", ["--algo", "bc", *FUZZ, "--holdout", "inf"], "--holdout must be in [0, 1)"),
    Case(
        "holdout a word",
        ["--algo", "bc", *FUZZ, "--holdout", "half"],
        "Invalid value for '--holdout'",
    ),
    Case(
        "holdout of every episode",
        ["--algo", "bc", *FUZZ, "--holdout", "0.999"],
        "leaving none to train on",
    ),
    Case(
        "batch size above the data",
        ["--algo", "bc", *FUZZ, "--batch-size", "1000000000"],
        "is larger than the dataset",
    ),
    Case(
        "batch size negative",
        ["--algo", "bc", *FUZZ, "--batch-size", "-3"],
        "--batch-size must be positive",
    ),
    Case("threads 0", ["--algo", "bc", *FUZZ, "--threads", "0"], "--threads must be positive"),
    Case("threads huge", ["--algo", "bc", *FUZZ, "--threads", "5000"], "--threads must be at most"),
    Case("width 0", ["--algo", "bc", *FUZZ, "--set", "hidden_sizes=0,0"], "layer widths must be"),
    Case(
        "width negative",
        ["--algo", "bc", *FUZZ, "--set", "hidden_sizes=-1"],
        "layer widths must be",
    ),
    Case(
        "width huge",
        ["--algo", "bc", *FUZZ, "--set", "hidden_sizes=100000,100000"],
        "layer widths must be",
    ),
    Case("lr negative", ["--algo", "bc", *FUZZ, "--set", "lr=-1"], "bc.lr must be > 0"),
    Case("lr nan", ["--algo", "bc", *FUZZ, "--set", "lr=nan"], "expected a finite number"),
    Case(
        "gamma above 1",
        ["--algo", "discrete_sac", *FUZZ, "--set", "gamma=2"],
        "discrete_sac.gamma must be in [0, 1]",
    ),
    Case(
        "n-step 0",
        ["--algo", "discrete_sac", *FUZZ, "--set", "estimation_step=0"],
        "estimation_step must be >= 1",
    ),
    # the offline baselines' own ranges (continuous ones on a Pendulum card: checked before data)
    Case(
        "expectile 1",
        ["--algo", "iql", *PEND, "--set", "expectile=1"],
        "expectile must be in (0, 1)",
    ),
    Case(
        "beta nan (d3rlpy's name)",
        ["--algo", "iql", *PEND, "--set", "weight_temp=nan"],
        "bad value 'nan' for iql.beta",
    ),
    Case(
        "cql_n_actions 0",
        ["--algo", "cql", *PEND, "--set", "cql_n_actions=0"],
        "cql.cql_n_actions must be in 1..4096",
    ),
    Case(
        "cql_n_actions huge",
        ["--algo", "cql", *PEND, "--set", "cql_n_actions=100000"],
        "cql.cql_n_actions must be in 1..4096",
    ),
    Case("cql_temp 0", ["--algo", "cql", *PEND, "--set", "cql_temp=0"], "cql.cql_temp must be > 0"),
    Case(
        "cql clip inverted",
        ["--algo", "cql", *PEND, "--set", "cql_clip_diff_min=2", "--set", "cql_clip_diff_max=1"],
        "must not exceed",
    ),
    Case(
        "policy_freq 0",
        ["--algo", "td3_bc", *PEND, "--set", "policy_freq=0"],
        "td3_bc.policy_freq must be >= 1",
    ),
    Case(
        "discrete_cql alpha negative",
        ["--algo", "discrete_cql", *FUZZ, "--set", "alpha=-1"],
        "alpha must be >= 0",
    ),
    Case(
        "td3_bc on discrete data",
        ["--algo", "td3_bc", *FUZZ],
        "'td3_bc' does not handle discrete actions",
    ),
    # devices other than cpu and cuda
    Case(
        "device meta",
        ["--algo", "bc", *FUZZ, "--device", "meta"],
        "device 'meta' is not available: bench runs on cpu or cuda",
    ),
    Case("device hpu", ["--algo", "bc", *FUZZ, "--device", "hpu"], "device 'hpu' is not available"),
    Case("device cuda", ["--algo", "bc", *FUZZ, "--device", "cuda:9"], "is not available"),
    Case("device empty", ["--algo", "bc", *FUZZ, "--device", ""], "is not available"),
    # --resume takes no options that decide a run: refused, not silently ignored
    Case(
        "resume with steps",
        ["--resume", "{tmp}/run", "--steps", "999"],
        "drop --steps (only --device, --threads, --compile may be given)",
        _run_dir,
    ),
    Case("resume with a set", ["--resume", "{tmp}/run", "--set", "lr=1"], "drop --set", _run_dir),
    Case(
        "resume with algo and results dir",
        ["--resume", "{tmp}/run", "--algo", "bc", "--results-dir", "{tmp}/elsewhere"],
        "drop --algo, --results-dir",
        _run_dir,
    ),
    Case(
        "resume with seeds-per-job",
        ["--resume", "{tmp}/run", "--seeds-per-job", "4"],
        "drop --seeds-per-job",
        _run_dir,
    ),
    Case(
        "resume with final-episodes 0",
        ["--resume", "{tmp}/run", "--final-episodes", "0"],
        "drop --final-episodes",
        _run_dir,
    ),
    Case(
        "resume twice",
        ["--resume", "{tmp}/run", "--resume", "{tmp}/run"],
        "--resume {tmp}/run is given twice",
        _run_dir,
    ),
    Case(
        "resume twice, spelled apart",
        ["--resume", "{tmp}/run", "--resume", "{tmp}/run/../run"],
        "--resume {tmp}/run/../run is given twice (as {tmp}/run)",
        _run_dir,
    ),
    # a Minari dataset whose metadata cannot normalize scores or name its env
    Case(
        "minari reference NaN",
        ["--algo", "bc", "--dataset", "minari:bench/meta-v0"],
        "ref_min_score nan / ref_max_score",
        _minari_meta(ref_min_score=float("nan")),
    ),
    Case(
        "minari reference a word",
        ["--algo", "bc", "--dataset", "minari:bench/meta-v0"],
        "ref_min_score 'low'",
        _minari_meta(ref_min_score="low"),
    ),
    Case(
        "minari references equal",
        ["--algo", "bc", "--dataset", "minari:bench/meta-v0"],
        "they must be finite numbers that differ",
        _minari_meta(ref_min_score=5.0, ref_max_score=5.0),
    ),
    Case(
        "minari eval env spec garbage",
        ["--algo", "bc", "--dataset", "minari:bench/meta-v0"],
        "bench/meta-v0: cannot be read (JSONDecodeError",
        _minari_meta(eval_env_spec="{not json"),
    ),
    Case(
        "minari eval env spec not a spec",
        ["--algo", "bc", "--dataset", "minari:bench/meta-v0"],
        "bench/meta-v0: cannot be read (KeyError",
        _minari_meta(eval_env_spec='{"id": 5}'),
    ),
    Case(
        "minari reference episodes a word",
        ["--algo", "bc", "--dataset", "minari:bench/meta-v0"],
        "bench/meta-v0: its metadata cannot be read (ValueError",
        _minari_meta(num_episodes_average_score="many"),
    ),
    # Minari ids are paths under the Minari root: no "..", no absolute path, a version
    Case(
        "minari id with ..",
        ["--algo", "bc", "--dataset", "minari:bench/fuzz-v0/../fuzz-v0"],
        "invalid Minari id 'bench/fuzz-v0/../fuzz-v0'",
    ),
    Case(
        "minari id absolute",
        ["--algo", "bc", "--dataset", "minari:/etc/x-v0"],
        "invalid Minari id '/etc/x-v0'",
    ),
    Case(
        "minari id without a version",
        ["--algo", "bc", "--dataset", "minari:bench/fuzz"],
        "invalid Minari id 'bench/fuzz'",
    ),
    Case(
        "minari id with a space",
        ["--algo", "bc", "--dataset", "minari:be nch/fuzz-v0"],
        "invalid Minari id 'be nch/fuzz-v0'",
    ),
    # --env belongs to a D4RL file; seeds trained together must fit in memory
    Case(
        "env with a card's dataset",
        ["--algo", "bc", *FUZZ, "--env", "Acrobot-v1"],
        "--env is the env of a D4RL HDF5 file; dataset 'fuzz' brings its own (drop --env)",
    ),
    Case(
        "seeds together beyond the memory",
        [
            "--algo",
            "bc",
            *FUZZ,
            "--seeds",
            "0-1023",
            "--seeds-per-job",
            "1024",
            "--set",
            "hidden_sizes=4096,4096",
        ],
        "1 job(s) at once training 1,024 seed(s) need ~",
        _memory(4 << 30),
    ),
    Case(
        "batch beyond the memory",
        ["--algo", "bc", *FUZZ, "--batch-size", "50000"],
        "1 job(s) at once training 1 seed(s) need ~",
        _memory(256 << 20),
    ),
    # option parsing
    Case("unknown option", ["--algo", "bc", *FUZZ, "--nope"], "No such option: --nope"),
    Case(
        "steps not a number",
        ["--algo", "bc", "--dataset", "fuzz", "--steps", "abc"],
        "Invalid value for '--steps'",
    ),
]


@pytest.fixture
def cards(built):  # noqa: F811 - the imported fixture
    """The fuzz cards plus one for another env (Acrobot) that points at the same data."""
    cards, root = built
    text = (cards / "fuzz.toml").read_text()
    (cards / "fuzz-acrobot.toml").write_text(
        text.replace('id = "fuzz"', 'id = "fuzz-acrobot"').replace("CartPole-v1", "Acrobot-v1")
    )
    return cards, root


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    case, cards, tmp_path, monkeypatch, capsys
):
    cards_dir, root = cards
    mine = tmp_path / "minari"
    shutil.copytree(root, mine)
    monkeypatch.setenv("BENCH_DATASETS_DIR", str(cards_dir))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(mine))
    monkeypatch.chdir(tmp_path)  # the default results folder, if any, would appear here
    if case.setup is not None:
        case.setup(tmp_path, mine, monkeypatch)
    args = [a.replace("{tmp}", str(tmp_path)) for a in case.args]
    if "--results-dir" not in args and "--resume" not in args:
        args += ["--results-dir", str(tmp_path / "results")]
    refused(
        monkeypatch, capsys, ["run", "--quiet", *args], case.message.replace("{tmp}", str(tmp_path))
    )
    runs = tmp_path / "results" / "runs"
    assert not runs.exists() or not any(runs.iterdir())
    assert not Path(tmp_path / "results").exists() or not any(
        p for p in (tmp_path / "results").rglob("*") if p.is_file()
    )
    assert not os.path.exists(tmp_path / "a-file" / "r")


def test_every_case_has_its_own_id():
    """pytest makes repeated ids unique by numbering them, so a case copied and edited under the
    same id would run under a name that says nothing: refused here."""
    ids = [c.id for c in CASES]
    assert sorted({i for i in ids if ids.count(i) > 1}) == []
