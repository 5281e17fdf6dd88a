"""One dataset trains with one set of run defaults however it is named: `minari:<id>` of a
dataset that has a card (shipped or imported) takes that card's defaults; one without a card
takes what an import would give data of its observation space."""

import pytest

from bench.data.catalog import import_file, imported_defaults, resolve_card
from bench.data.d4rl_io import import_d4rl
from bench.data.minari_io import open_dataset
from tests.data.test_d4rl_io import d4rl_file


@pytest.fixture
def roots(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    monkeypatch.setenv("BENCH_CARDS_DIR", str(tmp_path / "cards"))
    return tmp_path


def _acrobot(path):
    return d4rl_file(path, n=250, obs_dim=6, actions=lambda rng, n: rng.integers(0, 3, n))


def test_a_minari_id_with_a_card_takes_the_cards_defaults(roots):
    import_file(_acrobot(roots / "a.hdf5"), "Acrobot-v1", "hid/x-v0", -500, -60)
    card = resolve_card("hid/x-v0")
    assert card.train.preset == "small"
    assert resolve_card("minari:hid/x-v0").train == card.train


def test_a_plain_import_name_is_found_by_its_minari_id(roots):
    import_file(_acrobot(roots / "a.hdf5"), "Acrobot-v1", "my-acro", -500, -60)
    assert resolve_card("minari:imported/my-acro-v0").train == resolve_card("my-acro").train


def test_a_minari_id_without_a_card_gets_its_preset_from_its_observations(roots):
    import_d4rl(_acrobot(roots / "a.hdf5"), "Acrobot-v1", "nocard/x-v0", -500, -60)
    train = resolve_card("minari:nocard/x-v0").train
    assert train.preset == "small" and train.final_episodes == 100
    assert train == imported_defaults(open_dataset("nocard/x-v0").observation_space.shape)


def test_a_shipped_cards_minari_id_takes_the_shipped_cards_defaults(tiny_cartpole):
    assert resolve_card("minari:bench/cartpole-mixed-v0").train == (
        resolve_card("cartpole-mixed").train
    )


def test_image_observations_keep_the_reference_settings():
    assert imported_defaults((84, 84)).preset is None
    assert imported_defaults(None).preset is None  # a Dict space has no shape
    assert imported_defaults((4,)).preset == "small"
