"""Bad inputs to `bench sweep` and `bench suite run`: exit status 2, one `bench: error:` line,
and no run directory, results folder or suite copy left behind. In-process, on the tiny fuzz
dataset of tests/data/test_validate.py (already built: no dataset is written either)."""

import shutil
from dataclasses import dataclass

import pytest

from tests.data.test_validate import built  # noqa: F401 - a fixture
from tests.helpers import refused


@dataclass
class Case:
    id: str
    args: list  # after `bench`; "{tmp}" is the case's temp folder
    message: str
    setup: object = None  # callable(tmp, monkeypatch)


SUITE = """
name = "mini"
version = 1
seeds = "0-1"

[[grid]]
datasets = ["fuzz"]
algos = ["bc"]
steps = 2
eval_every = 2
eval_episodes = 1
final_episodes = 0
batch_size = 8
"""


def _memory(available):
    def setup(tmp, monkeypatch):
        monkeypatch.setattr("bench.data.minari_io.free_memory_bytes", lambda: available)

    return setup


def _suite(text=SUITE):
    def setup(tmp, monkeypatch):
        (tmp / "mini.toml").write_text(text)

    return setup


def _suites_a_file(tmp, monkeypatch):
    _suite()(tmp, monkeypatch)
    (tmp / "res").mkdir()
    (tmp / "res" / "suites").write_text("a file where the suite copies go")


def _copy_differs(tmp, monkeypatch):
    """The suite ran as v1; then its file changed without a new version."""
    _suite(SUITE.replace("steps = 2", "steps = 4"))(tmp, monkeypatch)
    (tmp / "res" / "suites").mkdir(parents=True)
    (tmp / "res" / "suites" / "mini-v1.toml").write_text(SUITE)


def _two_algos_little_memory(tmp, monkeypatch):
    _suite(SUITE.replace('algos = ["bc"]', 'algos = ["bc", "discrete_bcq"]'))(tmp, monkeypatch)
    _memory(1 << 30)(tmp, monkeypatch)


def _a_file(tmp, monkeypatch):
    (tmp / "file").write_text("a file where the results folder would go")


def _huge_suite(tmp, monkeypatch):
    (tmp / "mini.toml").write_text(SUITE + "#" * (1 << 20))


SWEEP = (
    "sweep --algo bc --dataset fuzz --steps 2 --eval-every 2 --eval-episodes 1 --final-episodes "
    "0 --batch-size 8 -q --results-dir {tmp}/res"
).split()
RUN_SUITE = ["suite", "run", "{tmp}/mini.toml", "--results-dir", "{tmp}/res", "-q"]
CASES = [
    Case(
        "sweep env without a file",
        [*SWEEP, "--env", "Acrobot-v1"],
        "--env is the env of D4RL HDF5 files; none of the datasets is one (drop --env)",
    ),
    Case(
        "sweep workers beyond the memory",
        [*SWEEP, "--seeds", "0-199", "--seeds-per-job", "1", "--workers", "200"],
        "200 job(s) at once training 200 seed(s) need ~",
        _memory(4 << 30),
    ),
    Case(
        "sweep seeds together beyond the memory",
        [*SWEEP, "--seeds", "0-1023", "--seeds-per-job", "1024", "--set", "hidden_sizes=4096,4096"],
        "give fewer --workers or --seeds-per-job",
        _memory(4 << 30),
    ),
    Case("sweep workers negative", [*SWEEP, "--workers", "-1"], "--workers must be between"),
    Case("sweep workers huge", [*SWEEP, "--workers", "100000"], "--workers must be between"),
    Case(
        "sweep ray address unreachable",
        [*SWEEP, "--executor", "ray", "--address", "127.0.0.1:1"],
        "cannot reach the Ray cluster at 127.0.0.1:1 (Connection refused)",
    ),
    Case(
        "sweep ray address without a port",
        [*SWEEP, "--executor", "ray", "--address", "head"],
        "bad --address 'head': use HOST:PORT or ray://HOST:PORT",
    ),
    Case(
        "sweep ray address empty",
        [*SWEEP, "--executor", "ray", "--address", " "],
        "--address is empty",
    ),
    Case(
        "sweep ray retries negative",
        [*SWEEP, "--executor", "ray", "--retries", "-1"],
        "--retries must be between 0 and 10, got -1",
    ),
    Case(
        "sweep ray retries huge",
        [*SWEEP, "--executor", "ray", "--retries", "1000"],
        "--retries must be between 0 and 10, got 1000",
    ),
    Case(
        "sweep address without ray",
        [*SWEEP, "--address", "127.0.0.1:6379"],
        "--address is an option of --executor ray",
    ),
    Case(
        "sweep shared results without ray",
        [*SWEEP, "--shared-results"],
        "--shared-results is an option of --executor ray",
    ),
    Case(
        "sweep ray results folder a file",
        [*SWEEP[:-1], "{tmp}/file/res", "--executor", "ray"],
        "cannot write results to {tmp}/file/res/runs",
        _a_file,
    ),
    Case(
        "suite ray address unreachable",
        [*RUN_SUITE, "--executor", "ray", "--address", "127.0.0.1:1"],
        "cannot reach the Ray cluster at 127.0.0.1:1",
        _suite(),
    ),
    Case("suite copies' folder a file", RUN_SUITE, "res/suites is not a folder", _suites_a_file),
    Case(
        "suite changed without a new version",
        RUN_SUITE,
        "res/suites/mini-v1.toml holds another file for suite mini v1: {tmp}/mini.toml changed "
        "since that version ran; bump its version",
        _copy_differs,
    ),
    Case("suite file too big", RUN_SUITE, "a suite file is at most 1,048,576", _huge_suite),
    Case(
        "suite workers beyond the memory",
        [*RUN_SUITE, "--workers", "2"],
        "2 job(s) at once training 4 seed(s) need",
        _two_algos_little_memory,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_sweep_input_is_one_line_exit_2_and_writes_nothing(
    case,
    built,  # noqa: F811 - the fixture imported above
    tmp_path,
    monkeypatch,
    capsys,
):
    cards, root = built
    mine = tmp_path / "minari"
    shutil.copytree(root, mine)
    monkeypatch.setenv("BENCH_DATASETS_DIR", str(cards))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(mine))
    monkeypatch.chdir(tmp_path)
    if case.setup is not None:
        case.setup(tmp_path, monkeypatch)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    args = [a.replace("{tmp}", str(tmp_path)) for a in case.args]
    refused(monkeypatch, capsys, args, case.message.replace("{tmp}", str(tmp_path)))
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
