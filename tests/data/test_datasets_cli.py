"""`bench datasets`: list stays whole in a pipe (and as csv/json), imports get a user card that
every command finds, and writes that cannot fit on the disk are refused up front."""

import csv
import io
import json
import os
import re
import shutil
import sys

import pytest

from bench.cli import main
from bench.cli.datasets import LIST_FIELDS
from bench.data.cards import load_card, shipped_card_ids
from tests.data.test_d4rl_io import d4rl_file
from tests.helpers import bench


def run_main(monkeypatch, capsys, *args) -> tuple[int, str, list[str]]:
    """The CLI in this process: (exit code, stdout, stderr lines)."""
    monkeypatch.setattr(sys, "argv", ["bench", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code or 0
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


@pytest.fixture
def user_cards(tmp_path, monkeypatch):
    """A private Minari root and user-cards folder (also for the `bench` subprocesses)."""
    env = {
        "MINARI_DATASETS_PATH": str(tmp_path / "minari"),
        "BENCH_CARDS_DIR": str(tmp_path / "cards"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


# ----------------------------------------------------------------- list
def test_list_piped_shows_every_id_whole(user_cards):
    res = bench("datasets", "list", env_extra=user_cards)  # stdout is a pipe, not a terminal
    assert res.returncode == 0, res.stderr
    assert "…" not in res.stdout
    rows = [line for line in res.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == len(shipped_card_ids())
    for cid, row in zip(shipped_card_ids(), rows, strict=True):
        cells = [c.strip() for c in row.strip("│").split("│")]
        card = load_card(cid)
        assert cells[:3] == [cid, card.env.id, card.minari_id]
        assert all(cells[3:5]), cells  # size and built: no collapsed columns
        assert cells[-1] == card.description
    # the bug report's pipe: grep finds the id
    assert re.search(r"^│ atari-breakout-expert\s", res.stdout, re.M)


def test_list_as_csv_and_json(user_cards, monkeypatch, capsys):
    code, out, err = run_main(monkeypatch, capsys, "datasets", "list", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == shipped_card_ids()
    assert tuple(rows[0]) == LIST_FIELDS
    breakout = next(r for r in rows if r["id"] == "atari-breakout-expert")
    assert breakout["remote"] == "atari/breakout/expert-v0" and breakout["built"] == "false"
    assert breakout["size"] == str(load_card("atari-breakout-expert").size)

    code, out, err = run_main(monkeypatch, capsys, "datasets", "list", "--format", "json")
    assert code == 0, err
    records = json.loads(out)
    assert [r["id"] for r in records] == shipped_card_ids()
    assert all(tuple(r) == LIST_FIELDS for r in records)
    mixed = next(r for r in records if r["id"] == "cartpole-mixed")
    assert mixed == {
        "id": "cartpole-mixed",
        "env": "CartPole-v1",
        "minari_id": "bench/cartpole-mixed-v0",
        "size": 100_000,
        "built": False,
        "remote": None,
        "description": load_card("cartpole-mixed").description,
    }

    code, _, err = run_main(monkeypatch, capsys, "datasets", "list", "--format", "xml")
    assert code == 2 and len(err) == 1 and err[0].startswith("bench: error: unknown format")


# ----------------------------------------------------------------- import -> a user card
def acrobot_file(path):
    """Acrobot-shaped D4RL arrays: 6 observations, 3 discrete actions."""
    return d4rl_file(path, obs_dim=6, actions=lambda rng, n: rng.integers(0, 3, n))


def test_import_writes_a_card_that_info_list_and_run_find(user_cards, tmp_path):
    src = acrobot_file(tmp_path / "acrobot.hdf5")
    res = bench(
        "datasets",
        "import",
        src,
        "--env",
        "Acrobot-v1",
        "--as",
        "my-acrobot",
        "--ref-min",
        -500,
        "--ref-max",
        -60,
        env_extra=user_cards,
    )
    assert res.returncode == 0, res.stderr
    # a plain name is stored under a valid Minari id, and the user is told which
    assert "imported/my-acrobot-v0" in res.stdout and "--dataset my-acrobot" in res.stdout
    card_file = tmp_path / "cards" / "my-acrobot.toml"
    assert card_file.is_file() and (tmp_path / "minari" / "imported" / "my-acrobot-v0").is_dir()

    card = load_card("my-acrobot")  # user cards come after the shipped ones
    assert card.behavior.policy == "external" and card.env.id == "Acrobot-v1"
    assert card.minari_id == "imported/my-acrobot-v0" and card.size == 250
    assert (card.ref_min, card.ref_max) == (-500, -60)
    assert card.train.preset == "small"  # vector observations: not discrete_bcq's Atari settings

    res = bench("datasets", "info", "my-acrobot", env_extra=user_cards)
    assert res.returncode == 0, res.stderr
    assert "imported/my-acrobot-v0" in res.stdout and "ref_max -60.00" in res.stdout
    assert "preset small" in res.stdout

    res = bench("datasets", "list", "--format", "json", env_extra=user_cards)
    records = {r["id"]: r for r in json.loads(res.stdout)}
    assert records["my-acrobot"]["built"] is True
    assert records["my-acrobot"]["minari_id"] == "imported/my-acrobot-v0"

    res = bench(
        "run",
        "--algo",
        "discrete_bcq",
        "--dataset",
        "my-acrobot",
        "--steps",
        2,
        "--eval-every",
        2,
        "--eval-episodes",
        1,
        "--batch-size",
        32,
        "-q",
        "--results-dir",
        tmp_path / "r",
        env_extra=user_cards,
    )
    assert res.returncode == 0, res.stderr
    config = json.loads((tmp_path / "r" / "runs").glob("*/config.json").__next__().read_text())
    assert config["minari_id"] == "imported/my-acrobot-v0" and config["preset"] == "small"
    assert config["algo_config"]["target_update_freq"] == 320

    # building an imported card is one line, not a crash
    res = bench("datasets", "build", "my-acrobot", "--force", env_extra=user_cards)
    assert res.returncode == 2 and res.stderr.startswith("bench: error: ")
    assert "cannot be built" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def _import_pendulum(monkeypatch, capsys, src, as_: str, ref_min: int, *extra: str):
    """`bench datasets import SRC --env Pendulum-v1 --as AS --ref-min R --ref-max -150 ...`."""
    args = ["--env", "Pendulum-v1", "--as", as_, "--ref-min", ref_min, "--ref-max", -150]
    return run_main(monkeypatch, capsys, "datasets", "import", src, *args, *extra)


def test_import_under_a_minari_id_keeps_it(user_cards, tmp_path, monkeypatch, capsys):
    src = d4rl_file(tmp_path / "p.hdf5")
    code, out, err = _import_pendulum(monkeypatch, capsys, src, "mine/pend", -1300)
    assert code == 0, err
    card = load_card("mine/pend-v0")  # the version is added; the namespace is kept
    assert card.minari_id == "mine/pend-v0" and card.path == tmp_path / "cards/mine/pend-v0.toml"
    assert card.train.preset == "small"
    # importing again without --force is refused; with it the card is replaced
    code, _, err = _import_pendulum(monkeypatch, capsys, src, "mine/pend-v0", -1000)
    assert code == 2 and len(err) == 1 and "already exists" in err[0]
    code, _, err = _import_pendulum(monkeypatch, capsys, src, "mine/pend-v0", -1000, "--force")
    assert code == 0, err
    assert load_card("mine/pend-v0").ref_min == -1000


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "invalid dataset id"),
        ("   ", "invalid dataset id"),
        ("/my-acrobot-v0", "invalid dataset id"),
        ("mine//acrobot-v0", "invalid dataset id"),
        ("mine/acrobot/", "invalid dataset id"),
        ("my acrobot", "invalid dataset id"),
        ("my.acrobot", "invalid dataset id"),
        ("acrobot:v0", "invalid dataset id"),
        ("akróbat", "invalid dataset id"),
        ("-v0", "invalid dataset id"),
        ("../escape", "invalid dataset id"),
        ("cartpole-mixed", "'cartpole-mixed' is a shipped dataset card"),
        ("bench/cartpole-mixed-v0", "belongs to the shipped card 'cartpole-mixed'"),
    ],
)
def test_bad_import_ids_are_one_line_and_write_nothing(
    name, message, user_cards, tmp_path, monkeypatch, capsys
):
    src = d4rl_file(tmp_path / "p.hdf5")
    code, out, err = run_main(
        monkeypatch,
        capsys,
        "datasets",
        "import",
        src,
        "--env",
        "Pendulum-v1",
        "--as",
        name,
        "--ref-min",
        -1300,
        "--ref-max",
        -150,
    )
    assert code == 2 and len(err) == 1 and err[0].startswith("bench: error: "), err
    assert message in err[0]
    assert not (tmp_path / "cards").exists() and not (tmp_path / "minari").exists()


# ----------------------------------------------------------------- full disk
def fake_disk(monkeypatch, free_bytes):
    """shutil.disk_usage reporting free_bytes() free; like the real one, it needs an existing
    path (the Minari root does not exist before the first build)."""
    usage = shutil.disk_usage("/")

    def disk_usage(path):
        os.stat(path)  # FileNotFoundError for a missing folder
        return usage._replace(free=free_bytes())

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)


def fake_free(monkeypatch, mib: int):
    fake_disk(monkeypatch, lambda: mib * 2**20)


def test_build_on_a_full_disk_is_refused_up_front(user_cards, tmp_path, monkeypatch, capsys):
    fake_free(monkeypatch, 9)
    code, _, err = run_main(monkeypatch, capsys, "datasets", "build", "cartpole-mixed", "-q")
    root = tmp_path / "minari"
    assert code == 2 and len(err) == 1, err
    # 100k transitions of 4 float32 + an int64 action + reward and flags, plus the margin
    assert re.fullmatch(
        rf"bench: error: not enough disk space in {root}: need ~\d+ MiB, "
        r"9 MiB free",
        err[0],
    ), err
    assert not root.exists() or not any(root.rglob("*"))


def test_build_stops_when_the_disk_fills_while_collecting(
    user_cards, tmp_path, monkeypatch, capsys
):
    """The up-front estimate passes; the disk then fills: the build stops with one line before
    Minari writes the episode, and the staging folder is removed."""
    from bench.collect import build

    collecting = []
    real_collect = build._collect_behavior

    def collect(*args):
        collecting.append(True)
        return real_collect(*args)

    # plenty of room until collection starts, then 20 MiB: the first episode (~200 steps) is
    # written, the second would need ~21 MiB (an episode is made to cost 12 MiB + margin)
    fake_disk(monkeypatch, lambda: 20 * 2**20 if collecting else 10**12)
    monkeypatch.setattr(build, "_collect_behavior", collect)
    monkeypatch.setattr(build, "EPISODE_BYTES", 12 * 2**20)
    code, _, err = run_main(
        monkeypatch, capsys, "datasets", "build", "cartpole-mixed", "--size", 500, "-q"
    )
    assert code == 2 and len(err) == 1, err
    assert "not enough disk space in" in err[0] and "20 MiB free" in err[0]
    assert collecting == [True]
    root = tmp_path / "minari"
    assert not [p for p in root.rglob("*") if p.is_file()], list(root.rglob("*"))


def test_build_stops_when_another_process_fills_the_disk_mid_episode(
    user_cards, tmp_path, monkeypatch, capsys
):
    """Free space read only at an episode's start missed another writer filling the disk during
    a long episode (HDF5 then crashed): it is read again every RECHECK_EVERY steps."""
    from bench.collect import build

    reads = []

    def free():
        reads.append(True)
        # plenty at first (the up-front checks, the episode's start), nothing from then on: the
        # one 500-step episode (CartPole's PD expert) must not be written
        return 10**12 if len(reads) <= 3 else 0

    fake_disk(monkeypatch, free)
    monkeypatch.setattr(build.SpaceGuard, "RECHECK_EVERY", 100)
    code, _, err = run_main(
        monkeypatch, capsys, "datasets", "build", "cartpole-expert", "--size", 500, "-q"
    )
    assert code == 2 and len(err) == 1, err
    assert "not enough disk space in" in err[0] and " 0 MiB free" in err[0]
    root = tmp_path / "minari"
    assert not [p for p in root.rglob("*") if p.is_file()], list(root.rglob("*"))


def test_export_on_a_full_disk_is_one_line_and_leaves_nothing(
    user_cards, tmp_path, monkeypatch, capsys
):
    src = d4rl_file(tmp_path / "p.hdf5")
    code, _, err = _import_pendulum(monkeypatch, capsys, src, "disk/pend-v0", -1300)
    assert code == 0, err
    out = tmp_path / "out"
    out.mkdir()
    fake_free(monkeypatch, 3)
    code, _, err = run_main(
        monkeypatch, capsys, "datasets", "export", "disk/pend-v0", out / "x.hdf5"
    )
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"bench: error: not enough disk space in {out}: need ~")
    assert os.listdir(out) == []
    # import checks the Minari root the same way
    code, _, err = _import_pendulum(monkeypatch, capsys, src, "disk/other-v0", -1300)
    assert code == 2 and len(err) == 1 and "not enough disk space in" in err[0], err
    assert not (tmp_path / "minari" / "disk" / "other-v0").exists()
    assert not (tmp_path / "cards" / "disk" / "other-v0.toml").exists()
