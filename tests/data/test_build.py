"""Building: a real Minari dataset, reference scores in its metadata, seeded and lossless."""

import subprocess
import sys
from pathlib import Path

import minari
import numpy as np
import pytest

from bench.collect.build import build_dataset
from bench.data.cards import load_card, shipped_card_ids
from bench.data.data import OfflineData
from bench.errors import DatasetError


def test_minari_reads_the_built_dataset(tiny_cartpole):
    card, _ = tiny_cartpole
    ds = minari.load_dataset(card.minari_id)
    assert ds.total_steps == 3000
    meta = ds.storage.metadata
    assert meta["ref_max_score"] == 500.0
    assert 15 < meta["ref_min_score"] < 30  # uniform random CartPole: about 22
    assert meta["num_episodes_average_score"] == 100
    assert meta["bench_card_id"] == "cartpole-mixed"
    # every episode ends in a termination or a truncation; T+1 observations each
    for ep in ds.iterate_episodes():
        assert ep.terminations[-1] or ep.truncations[-1]
        assert len(ep.observations) == len(ep.actions) + 1


def test_minari_cli_shows_it(tiny_cartpole):
    card, _ = tiny_cartpole
    minari_cli = Path(sys.executable).parent / "minari"
    res = subprocess.run([str(minari_cli), "show", card.minari_id], capture_output=True, text=True)
    assert res.returncode == 0 and "Total Steps" in res.stdout and "3000" in res.stdout


def test_builds_are_seeded_and_reproducible(tiny_cartpole, tmp_path, monkeypatch):
    card, ds = tiny_cartpole
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    again = build_dataset(card, size=3000)
    a, b = OfflineData.from_minari(ds), OfflineData.from_minari(again)
    assert np.array_equal(a.obs.numpy(), b.obs.numpy())
    assert np.array_equal(a.act.numpy(), b.act.numpy())
    assert again.storage.metadata["ref_min_score"] == ds.storage.metadata["ref_min_score"]
    # nothing is left in the staging area
    assert not (tmp_path / ".bench-staging").exists()


def test_mixed_has_worse_returns_than_expert(tiny_cartpole, tmp_path, monkeypatch):
    _, mixed = tiny_cartpole
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    expert = build_dataset(load_card("cartpole-expert"), size=3000)
    m = OfflineData.from_minari(mixed).episode_returns()
    e = OfflineData.from_minari(expert).episode_returns()
    assert e[e > 0].max() == 500 and m.mean() < 300


def test_existing_dataset_is_not_overwritten_without_force(tiny_cartpole):
    card, _ = tiny_cartpole
    with pytest.raises(DatasetError, match="already exists"):
        build_dataset(card, size=100)


def test_all_shipped_cards_parse():
    for cid in shipped_card_ids():
        card = load_card(cid)
        assert card.minari_id.startswith("bench/") and card.size > 0
