"""Bad input found by hostile testing: names longer than a file name may be, and `bench
behavior train` with an algorithm that cannot train online. Each is exit status 2, one
`bench: error:` line, before any work starts, and nothing is left in the case's folder (the
harness of tests/test_bad_input_tools.py)."""

import pytest

from tests.helpers import refused
from tests.test_bad_input_tools import (
    BEHAVIOR,
    IMPORT,
    REFS,
    Case,
    _good_file,
    _must_not_run,
    _tree,
)

LONG = "a" * 300  # a file name may have 255 bytes
CASES = [
    Case(
        "run: dataset name too long",
        ["run", "--algo", "bc", "--dataset", LONG, "-q", "--results-dir", "{tmp}/results"],
        f"unknown dataset '{LONG}'",
    ),
    Case(
        "sweep: dataset name too long",
        [
            "sweep",
            "--algo",
            "bc",
            "--dataset",
            LONG,
            "--seeds",
            "0",
            "--results-dir",
            "{tmp}/results",
        ],
        f"unknown dataset '{LONG}'",
    ),
    Case("datasets build: name too long", ["datasets", "build", LONG], "unknown dataset"),
    Case(
        "run: file name too long",
        ["run", "--algo", "bc", "--dataset", f"{LONG}.hdf5", "--env", "CartPole-v1", "-q"],
        "File name too long",
    ),
    Case(
        "run: folder name too long",
        ["run", "--algo", "bc", "--dataset", f"{LONG}/x.hdf5", "--env", "CartPole-v1", "-q"],
        "File name too long",
    ),
    Case(
        "run: minari id too long",
        ["run", "--algo", "bc", "--dataset", f"minari:{LONG}", "-q"],
        "invalid Minari id",
    ),
    Case("datasets info: name too long", ["datasets", "info", LONG], "unknown dataset"),
    Case(
        "import: id too long",
        [*IMPORT[:-1], LONG, *REFS],
        "(300 characters): an id has at most 200 characters and at most 100 between slashes",
        _good_file,
    ),
    Case(
        "import: namespaced id too long",
        [*IMPORT[:-1], f"mine/{LONG}-v0", *REFS],
        "invalid dataset id 'mine/aaaa",
        _good_file,
    ),
    Case(
        "import: one segment too long",
        [*IMPORT[:-1], f"mine/{'b' * 101}", *REFS],
        "at most 100 between slashes",
        _good_file,
    ),
    Case(
        "behavior: offline-only algorithm",
        [*BEHAVIOR[:3], "bc", *BEHAVIOR[4:]],
        "algorithm 'bc' cannot train online (it has no exploration policy); choose one of: "
        "discrete_sac, redq",
    ),
    Case(
        "behavior: offline-only algorithm, eval before start steps",
        [*BEHAVIOR[:3], "discrete_bcq", *BEHAVIOR[4:], "--start-steps", "300"],
        "algorithm 'discrete_bcq' cannot train online",
    ),
    Case(
        "behavior: unknown algorithm",
        [*BEHAVIOR[:3], "nope", *BEHAVIOR[4:]],
        "unknown algorithm 'nope'",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_before_any_work_and_leaves_nothing(
    case, tmp_path, monkeypatch, capsys
):
    tmp = tmp_path
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp / "minari"))
    monkeypatch.setenv("BENCH_CARDS_DIR", str(tmp / "cards"))
    (tmp / "cards").mkdir()  # a user-cards folder that exists: its lookups reach the disk
    monkeypatch.chdir(tmp)
    monkeypatch.setattr("bench.collect.online.progress_bar", _must_not_run)
    monkeypatch.setattr("bench.collect.online._train", _must_not_run)
    if case.setup is not None:
        case.setup(tmp, monkeypatch)
    args = [a.replace("{tmp}", str(tmp)) for a in case.args]
    before = _tree(tmp)
    refused(monkeypatch, capsys, args, case.message.replace("{tmp}", str(tmp)))
    assert _tree(tmp) == before  # no dataset, card, run, temp file or output folder
