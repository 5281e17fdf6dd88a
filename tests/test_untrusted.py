"""Nothing bench reads is unpickled: a planted pickle whose loading would create a marker file is
refused in one line, unread, wherever bench reads a torch or numpy file (a run's checkpoint
before --resume, a kept policy read by `bench select`, a card's behavior weights, a card's
replay record). What bench itself writes, and the shipped behavior files, load with
torch.load(weights_only=True)."""

import dataclasses
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.cli import main
from bench.collect.online import load_policy
from bench.data.safe_load import load_torch, plain
from bench.errors import BenchError
from bench.run.policies import kept_steps, policy_path
from tests.helpers import train

SMALL = dict(
    algo="bc",
    dataset="cartpole-mixed",
    steps=40,
    eval_every=20,
    eval_episodes=1,
    batch_size=16,
    overrides={"hidden_sizes": "16,16"},
)
SHIPPED = Path(__file__).resolve().parents[1] / "bench" / "cards"
REFUSED = "may execute code, so it was not loaded"


class Touch:
    """Unpickling this calls Path.touch(marker): the stand-in for any code a pickle can run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def plant(path: Path, marker: Path, payload: dict | None = None, **save) -> None:
    """Replace path by a torch file that holds payload (the original's contents, say) plus an
    object whose unpickling creates marker."""
    torch.save({**(payload or {}), "note": Touch(marker)}, path, **save)


def test_a_planted_pickle_does_run_code_when_unpickled(tmp_path):
    """The planted files are live: loaded the unsafe way, they create the marker (so the tests
    below would fail on a reader that unpickles)."""
    marker = tmp_path / "marker"
    plant(tmp_path / "x.pt", marker)
    torch.load(tmp_path / "x.pt", weights_only=False)
    assert marker.exists()


def bench_cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["bench", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    return exit_info.value.code, out.err.strip().splitlines()


def refused_in_one_line(code, err, marker, *expected):
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("bench: error: "), err
    for text in expected:
        assert text in err[0], err
    assert not marker.exists(), "the planted pickle ran"


# ------------------------------------------------------------------------- run checkpoints
class Stop(Exception):
    pass


def _stop(row):
    raise Stop


@pytest.fixture
def stopped_run(tiny_cartpole, tmp_path):
    """A run stopped right after its first evaluation: checkpoint.pt at step 20."""
    with pytest.raises(Stop):
        train(tmp_path / "results", seed=0, on_eval=_stop, **SMALL)
    return next((tmp_path / "results" / "runs").iterdir())


def test_resume_refuses_a_checkpoint_that_would_run_code(
    stopped_run, tmp_path, monkeypatch, capsys
):
    marker = tmp_path / "marker"
    ckpt = stopped_run / "checkpoint.pt"
    plant(ckpt, marker, torch.load(ckpt, weights_only=True))
    code, err = bench_cli(monkeypatch, capsys, "run", "--resume", stopped_run, "-q")
    refused_in_one_line(code, err, marker, f"--resume {stopped_run}", "checkpoint", REFUSED)


def test_resume_refuses_a_legacy_format_pickle_too(stopped_run, tmp_path, monkeypatch, capsys):
    marker = tmp_path / "marker"
    ckpt = stopped_run / "checkpoint.pt"
    plant(ckpt, marker, torch.load(ckpt, weights_only=True), _use_new_zipfile_serialization=False)
    code, err = bench_cli(monkeypatch, capsys, "run", "--resume", stopped_run, "-q")
    refused_in_one_line(code, err, marker, REFUSED)


def test_what_a_run_writes_loads_without_unpickling_and_resumes(stopped_run, monkeypatch, capsys):
    torch.load(stopped_run / "checkpoint.pt", weights_only=True)
    for step in kept_steps(stopped_run):
        torch.load(policy_path(stopped_run, step), weights_only=True)
    code, err = bench_cli(monkeypatch, capsys, "run", "--resume", stopped_run, "-q")
    assert code == 0, err


# ------------------------------------------------------------------------- kept policies
@pytest.fixture
def finished_run(tiny_cartpole, tmp_path):
    """One finished run that kept its policies at steps 20 and 40."""
    results = tmp_path / "results"
    train(results, seed=0, **SMALL)
    run = next((results / "runs").iterdir())
    assert kept_steps(run) == [20, 40]
    return results, run


def test_select_refuses_a_kept_policy_that_would_run_code(
    finished_run, tmp_path, monkeypatch, capsys
):
    results, run = finished_run
    marker = tmp_path / "marker"
    kept = policy_path(run, 20)
    plant(kept, marker, torch.load(kept, weights_only=True))
    code, err = bench_cli(
        monkeypatch, capsys, "select", "--results", results, "--steps", 5, "--quiet"
    )
    refused_in_one_line(code, err, marker, "kept policy", str(kept), REFUSED)
    assert not (results / "selection.parquet").exists()


# ------------------------------------------------------------------ behavior weights of a card
def test_load_policy_refuses_a_behavior_file_that_would_run_code(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    shipped = torch.load(SHIPPED / "behaviors" / "pendulum_redq_medium.pt", weights_only=True)
    plant(path, marker, shipped)
    with pytest.raises(BenchError, match=REFUSED) as e:
        load_policy(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)
    assert not marker.exists()


def _cards_folder(tmp_path, monkeypatch, card: str, new_id: str, replace: dict) -> Path:
    """A cards folder (BENCH_DATASETS_DIR) holding a copy of a shipped card as new_id, with
    replace applied to its text, and a private Minari root."""
    cards = tmp_path / "cards"
    (cards / "behaviors").mkdir(parents=True)
    text = (SHIPPED / f"{card}.toml").read_text().replace(card, new_id)
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    (cards / f"{new_id}.toml").write_text(text)
    monkeypatch.setenv("BENCH_DATASETS_DIR", str(cards))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return cards


def test_building_a_card_refuses_its_behavior_file_that_would_run_code(
    tmp_path, monkeypatch, capsys
):
    cards = _cards_folder(
        tmp_path,
        monkeypatch,
        "pendulum-medium",
        "evil-medium",
        {
            "behaviors/pendulum_redq_medium.pt": "behaviors/evil.pt",
            "size = 100_000": "size = 400",
        },
    )
    marker = tmp_path / "marker"
    plant(
        cards / "behaviors" / "evil.pt",
        marker,
        torch.load(SHIPPED / "behaviors" / "pendulum_redq_medium.pt", weights_only=True),
    )
    code, err = bench_cli(monkeypatch, capsys, "datasets", "build", "evil-medium", "-q")
    refused_in_one_line(code, err, marker, "evil.pt", REFUSED)
    assert not list((tmp_path / "minari").rglob("*.hdf5"))


def test_building_a_card_refuses_a_replay_record_holding_a_pickle(tmp_path, monkeypatch, capsys):
    cards = _cards_folder(
        tmp_path,
        monkeypatch,
        "pendulum-replay",
        "evil-replay",
        {
            "behaviors/pendulum_redq_replay.npz": "behaviors/evil.npz",
            "size = 3_000": "size = 400",
        },
    )
    marker = tmp_path / "marker"
    with np.load(SHIPPED / "behaviors" / "pendulum_redq_replay.npz") as f:
        arrays = dict(f)
    arrays["seeds"] = np.array([Touch(marker)] + [0] * 29, dtype=object)
    np.savez(cards / "behaviors" / "evil.npz", **arrays)  # object arrays are pickled
    code, err = bench_cli(monkeypatch, capsys, "datasets", "build", "evil-replay", "-q")
    refused_in_one_line(code, err, marker, "evil.npz")
    assert not list((tmp_path / "minari").rglob("*.hdf5"))


# ----------------------------------------------------------------------- the shipped files
@pytest.mark.parametrize("name", sorted(p.name for p in (SHIPPED / "behaviors").glob("*.pt")))
def test_shipped_behavior_files_load_without_unpickling(name):
    path = SHIPPED / "behaviors" / name
    payload = torch.load(path, weights_only=True)
    assert payload["command"].startswith("bench ")
    algo = load_policy(path)
    assert algo.act(torch.zeros(1, 2, *payload["obs_shape"])).shape[:2] == (1, 2)


@pytest.mark.parametrize("name", sorted(p.name for p in (SHIPPED / "behaviors").glob("*.npz")))
def test_shipped_replay_records_are_plain_arrays(name):
    with np.load(SHIPPED / "behaviors" / name, allow_pickle=False) as f:
        assert {"seeds", "lengths", "actions"} <= set(f.files)
        assert all(f[k].dtype != object for k in f.files)


# --------------------------------------------------------------------------- load_torch
def test_load_torch_tells_a_damaged_file_from_one_that_would_run_code(tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file at all")
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "folder.pt").mkdir()
    for name, expected in (
        ("garbage.pt", "cannot read thing"),
        ("empty.pt", "cannot read thing"),
        ("folder.pt", "is a folder"),
        ("missing.pt", "no such file"),
    ):
        with pytest.raises(BenchError) as e:
            load_torch(tmp_path / name, "thing")
        assert expected in str(e.value) and REFUSED not in str(e.value)
        assert "\n" not in str(e.value)


def test_load_torch_refuses_a_plain_pickle_and_numpy_values(tmp_path):
    import pickle

    marker = tmp_path / "marker"
    (tmp_path / "raw.pkl").write_bytes(pickle.dumps({"a": Touch(marker)}))
    torch.save({"a": np.zeros(3)}, tmp_path / "numpy.pt")
    for name in ("raw.pkl", "numpy.pt"):
        with pytest.raises(BenchError, match=REFUSED):
            load_torch(tmp_path / name, "thing")
    assert not marker.exists()


def test_load_torch_reads_tensors_and_plain_values(tmp_path):
    value = {
        "t": torch.arange(3),
        "l": [1, 2.5, "x", None, True],
        "tup": (1, 2),
        "sd": torch.nn.Linear(2, 2).state_dict(),
    }
    torch.save(value, tmp_path / "ok.pt")
    back = load_torch(tmp_path / "ok.pt", "thing")
    assert back["l"] == value["l"] and back["tup"] == (1, 2)
    assert torch.equal(back["t"], value["t"]) and back["sd"].keys() == value["sd"].keys()


def test_plain_makes_numpy_values_and_dataclasses_loadable(tmp_path):
    @dataclasses.dataclass
    class Row:
        x: float

    value = {
        "f": np.float64(1.5),
        "i": [np.int64(3)],
        "b": (np.bool_(True),),
        "a": np.arange(3, dtype=np.float32),
        "row": Row(2.0),
        "t": torch.ones(2),
    }
    out = plain(value)
    torch.save(out, tmp_path / "p.pt")
    back = torch.load(tmp_path / "p.pt", weights_only=True)
    assert back["f"] == 1.5 and type(back["f"]) is float
    assert back["i"] == [3] and type(back["i"][0]) is int and back["b"] == (True,)
    assert torch.equal(back["a"], torch.arange(3, dtype=torch.float32))
    assert back["row"] == {"x": 2.0} and torch.equal(back["t"], torch.ones(2))
    # a module's state_dict needing no change is kept as it is (its type and _metadata)
    sd = torch.nn.Linear(2, 2).state_dict()
    assert plain({"m": sd})["m"] is sd


def test_a_checkpoint_is_written_with_plain_values(tmp_path):
    """save_checkpoint turns numpy values in rows into Python numbers: the file loads with
    weights_only and the rows read back equal."""
    from bench.run.checkpoint import save_checkpoint

    rows = [{"run_id": "r", "step": np.int64(20), "return_mean": np.float64(9.5)}]
    state = {"algo": {"w": torch.ones(1, 2)}, "sampler": {"states": torch.zeros(1, 4)}}
    save_checkpoint(tmp_path / "checkpoint.pt", "r", "f", state, 20, 1.0, rows, [])
    back = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert back["eval_rows"] == [{"run_id": "r", "step": 20, "return_mean": 9.5}]


def test_a_policy_file_of_another_layout_is_one_line(tmp_path):
    path = tmp_path / "p.pt"
    payload = torch.load(SHIPPED / "behaviors" / "pendulum_redq_medium.pt", weights_only=True)
    torch.save({**payload, "policy": {}}, path)
    with pytest.raises(BenchError, match="is not a behavior policy bench can load"):
        load_policy(path)
    shutil.copy(SHIPPED / "behaviors" / "pendulum_redq_medium.pt", path)
    load_policy(path)
