"""card_file: a card names files only inside its own folder or the cards folder."""

import dataclasses
import os

import pytest

from bench.data.cards import card_file, cards_dir, load_card
from bench.errors import DatasetError


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """A cards folder (BENCH_DATASETS_DIR) with behaviors/shipped.pt, and a user card whose
    own folder (user/mine) holds behaviors/weights.pt; a secret file outside both."""
    real = load_card("pendulum-medium")
    shipped = tmp_path / "shipped"
    (shipped / "behaviors").mkdir(parents=True)
    (shipped / "behaviors" / "shipped.pt").write_bytes(b"shipped")
    (shipped / "behaviors" / "both.pt").write_bytes(b"shipped copy")
    monkeypatch.setenv("BENCH_DATASETS_DIR", str(shipped))
    user = tmp_path / "user" / "mine"
    (user / "behaviors").mkdir(parents=True)
    (user / "behaviors" / "weights.pt").write_bytes(b"user")
    (user / "behaviors" / "both.pt").write_bytes(b"user copy")
    (tmp_path / "secret.pt").write_bytes(b"secret")
    card = dataclasses.replace(real, path=user / "card.toml")
    return card, shipped, user, tmp_path


def test_a_relative_name_resolves_in_the_cards_own_folder_first(folders):
    card, shipped, user, _ = folders
    assert card_file(card, "behaviors/weights.pt") == (user / "behaviors/weights.pt").resolve()
    assert card_file(card, "behaviors/both.pt").read_bytes() == b"user copy"


def test_a_relative_name_falls_back_to_the_cards_folder(folders):
    card, shipped, _, _ = folders
    assert cards_dir() == shipped
    assert card_file(card, "behaviors/shipped.pt") == (shipped / "behaviors/shipped.pt").resolve()
    assert card_file(card, "./behaviors/shipped.pt").read_bytes() == b"shipped"


def test_a_shipped_card_finds_its_shipped_behavior_file(monkeypatch):
    monkeypatch.delenv("BENCH_DATASETS_DIR", raising=False)
    card = load_card("pendulum-medium")
    path = card_file(card, card.behavior.params["file"])
    assert path.is_file() and path.parent.name == "behaviors"


def test_a_card_without_a_path_looks_in_the_cards_folder_only(folders):
    card, shipped, _, _ = folders
    bare = dataclasses.replace(card, path=None)
    assert card_file(bare, "behaviors/shipped.pt").read_bytes() == b"shipped"
    with pytest.raises(DatasetError, match="not found"):
        card_file(bare, "behaviors/weights.pt")


@pytest.mark.parametrize(
    "name, message",
    [
        ("/etc/passwd", "is an absolute path"),
        ("~/secret.pt", "is an absolute path"),
        ("../../secret.pt", "leaves its folder ('..')"),
        ("behaviors/../../../secret.pt", "leaves its folder ('..')"),
        ("behaviors/nope.pt", "not found"),
        ("behaviors", "is not a file"),
        ("", "must be a non-empty string"),
        ("a" * 300 + ".pt", "cannot be opened (File name too long)"),
        ("behaviors/x\0.pt", "NUL"),
    ],
)
def test_names_outside_both_folders_or_missing_are_one_line(folders, name, message):
    card = folders[0]
    with pytest.raises(DatasetError) as e:
        card_file(card, name)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert str(card.path) in str(e.value)


def test_the_absolute_path_of_a_file_inside_the_folder_is_refused_too(folders):
    card, _, user, _ = folders
    with pytest.raises(DatasetError, match="is an absolute path"):
        card_file(card, str(user / "behaviors" / "weights.pt"))


def test_a_non_string_name_is_one_line(folders):
    with pytest.raises(DatasetError, match="must be a non-empty string"):
        card_file(folders[0], 3)


@pytest.mark.parametrize("where", ["user", "shipped"])
def test_a_symlink_pointing_outside_the_folder_is_refused(folders, where):
    card, shipped, user, tmp = folders
    folder = user if where == "user" else shipped
    os.symlink(tmp / "secret.pt", folder / "behaviors" / "link.pt")
    with pytest.raises(DatasetError, match="outside its folder"):
        card_file(card, "behaviors/link.pt")


def test_a_symlinked_folder_pointing_outside_is_refused(folders):
    card, _, user, tmp = folders
    os.symlink(tmp, user / "escape")
    with pytest.raises(DatasetError, match="outside its folder"):
        card_file(card, "escape/secret.pt")


def test_a_dangling_symlink_outside_is_refused_not_skipped(folders):
    card, shipped, user, tmp = folders
    os.symlink(tmp / "nowhere.pt", user / "behaviors" / "shipped.pt")
    with pytest.raises(DatasetError, match="outside its folder"):
        card_file(card, "behaviors/shipped.pt")


def test_a_symlink_inside_the_folder_is_followed(folders):
    card, _, user, _ = folders
    os.symlink(user / "behaviors" / "weights.pt", user / "alias.pt")
    assert card_file(card, "alias.pt") == (user / "behaviors" / "weights.pt").resolve()


@pytest.mark.parametrize(
    "card, old, name, message",
    [
        ("pendulum-medium", "behaviors/pendulum_redq_medium.pt", "../outside.pt", "leaves its"),
        ("pendulum-medium", "behaviors/pendulum_redq_medium.pt", "{tmp}/outside.pt", "absolute"),
        ("pendulum-replay", "behaviors/pendulum_redq_replay.npz", "../outside.npz", "leaves its"),
        ("pendulum-replay", "behaviors/pendulum_redq_replay.npz", "link.npz", "outside its"),
    ],
)
def test_building_a_card_that_names_a_file_outside_is_one_line(
    card, old, name, message, tmp_path, monkeypatch, capsys
):
    """Through `bench datasets build`: the build reads no file outside the card's folders."""
    import shutil
    import sys

    from bench.cli import main

    shipped = cards_dir()
    cards = tmp_path / "cards"
    cards.mkdir()
    for outside in ("outside.pt", "outside.npz"):
        src = "pendulum_redq_medium.pt" if outside.endswith(".pt") else "pendulum_redq_replay.npz"
        shutil.copy(shipped / "behaviors" / src, tmp_path / outside)
    os.symlink(tmp_path / "outside.npz", cards / "link.npz")
    name = name.replace("{tmp}", str(tmp_path))
    text = (shipped / f"{card}.toml").read_text().replace(card, "x-card").replace(old, name)
    (cards / "x-card.toml").write_text(text.replace("size = 100_000", "size = 400"))
    monkeypatch.setenv("BENCH_DATASETS_DIR", str(cards))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    monkeypatch.setattr(sys, "argv", ["bench", "datasets", "build", "x-card", "-q"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2, err
    assert len(err) == 1 and err[0].startswith("bench: error: ") and message in err[0], err
    assert not list((tmp_path / "minari").rglob("*.hdf5"))
