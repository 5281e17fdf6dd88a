"""One table of bad inputs to `bench run`: each ends with exit status 2, one line on stderr
naming the problem, no traceback, and no new run directory.

Cases run in-process through the console entry point (bench.cli.main), so a full disk can be
simulated by mocking fsync; the dataset corruptions reuse the fuzz fixtures of
tests/data/test_validate.py (a tiny real Minari dataset, corrupted in a copy)."""

import errno
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import bench.results.schema as results_module
from bench.cli import main
from tests.data.test_validate import (  # noqa: F401 - `built` is a fixture
    MINARI_ID,
    built,
    empty,
    garbage_file,
    missing_key,
    nan_rewards,
    truncated_file,
)


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


def _corrupt(fn):
    return lambda tmp, root, monkeypatch: fn(root)


FUZZ = ["--dataset", "fuzz", "--steps", "2"]
CASES = [
    Case("unknown algo", ["--algo", "nope", "--dataset", "fuzz"], "unknown algorithm 'nope'"),
    Case("unknown dataset", ["--algo", "bc", "--dataset", "nope"], "unknown dataset 'nope'"),
    Case("bad --set key", ["--algo", "bc", *FUZZ, "--set", "nope=1"], "nope"),
    Case("bad --set value", ["--algo", "bc", *FUZZ, "--set", "lr=fast"], "lr"),
    Case("bad --set syntax", ["--algo", "bc", *FUZZ, "--set", "lr"], "key=value"),
    Case("zero steps", ["--algo", "bc", "--dataset", "fuzz", "--steps", "0"], "steps"),
    Case("negative steps", ["--algo", "bc", "--dataset", "fuzz", "--steps", "-5"], "steps"),
    Case("corrupt HDF5", ["--algo", "bc", *FUZZ], "cannot be read (OSError",
         _corrupt(garbage_file)),
    Case("truncated HDF5", ["--algo", "bc", *FUZZ], "cannot be read (OSError",
         _corrupt(truncated_file)),
    Case("missing keys", ["--algo", "bc", *FUZZ], "cannot be read (KeyError",
         _corrupt(missing_key)),
    Case("NaN rewards", ["--algo", "bc", *FUZZ], "NaN or infinite values in rewards",
         _corrupt(nan_rewards)),
    Case("empty dataset", ["--algo", "bc", *FUZZ], "no transitions", _corrupt(empty)),
    Case("wrong obs shape", ["--algo", "bc", "--dataset", "fuzz-pendulum", "--steps", "2"],
         "observations have shape (4,), the env's are (3,)"),
    Case("built for another env", ["--algo", "bc", "--dataset", "fuzz-acrobot", "--steps", "2"],
         "observations have shape (4,), the env's are (6,)"),
    Case("continuous algo, discrete data", ["--algo", "bcq", *FUZZ], "discrete"),
    Case("resume of a missing run dir", ["--resume", "{tmp}/nowhere"], "nowhere"),
    Case("resume of a foreign dir", ["--resume", "{tmp}/foreign"], "not a bench run directory",
         _foreign_dir),
    Case("results dir not writable", ["--algo", "bc", *FUZZ, "--results-dir", "{tmp}/a-file/r"],
         "cannot create run directory", _blocker),
    Case("disk full", ["--algo", "bc", *FUZZ], "No space left on device", _disk_full),
    Case("interrupted dataset build", ["--algo", "bc", "--dataset", "minari:bench/half-v0"],
         "bench/half-v0 is not local", _half_written_dataset),
]  # fmt: skip


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
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, cards, tmp_path, monkeypatch,
                                                         capsys):  # fmt: skip
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
    monkeypatch.setattr(sys, "argv", ["bench", "run", "--quiet", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2, err
    assert len(err) == 1 and err[0].startswith("bench: error: "), err
    assert case.message in err[0], err
    runs = tmp_path / "results" / "runs"
    assert not runs.exists() or not any(runs.iterdir())
    assert not Path(tmp_path / "results").exists() or not any(
        p for p in (tmp_path / "results").rglob("*") if p.is_file()
    )
    assert not os.path.exists(tmp_path / "a-file" / "r")


def test_the_table_is_at_least_15_cases():
    assert len(CASES) >= 15
