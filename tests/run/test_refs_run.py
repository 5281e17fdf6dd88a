"""A run's references: the card's constants; a Minari dataset whose metadata references cannot
normalize a score (NaN, infinite, equal) is refused in one line before anything is written."""

import pytest

from bench.collect.build import build_dataset
from bench.data.cards import load_card
from bench.data.minari_io import open_dataset

S = ["--steps", "4", "--eval-every", "4", "--eval-episodes", "1", "--batch-size", "8", "-q"]


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    monkeypatch.chdir(tmp_path)
    build_dataset(load_card("cartpole-mixed"), size=300)
    return tmp_path


@pytest.mark.parametrize("refs", [(float("nan"), 500.0), (0.0, float("inf")), (5.0, 5.0)])
def test_unusable_metadata_references_are_refused(root, cli, refs):
    ds = open_dataset("bench/cartpole-mixed-v0")
    ds.storage.update_metadata({"ref_min_score": refs[0], "ref_max_score": refs[1]})
    done = cli("run", "--algo", "bc", "--dataset", "minari:bench/cartpole-mixed-v0", *S)
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1, done.stderr
    assert err[0].startswith("bench: error: ") and "cannot normalize scores" in err[0]
    assert not (root / "results").exists() or not any((root / "results").rglob("config.json"))


def test_the_card_s_references_are_used_whatever_the_metadata_says(root, cli):
    """An older build recorded references measured at build; the card's constants win."""
    ds = open_dataset("bench/cartpole-mixed-v0")
    ds.storage.update_metadata({"ref_min_score": 1.0, "ref_max_score": 2.0})
    done = cli("run", "--algo", "bc", "--dataset", "cartpole-mixed", *S)
    assert done.returncode == 0, done.stderr
    import pandas as pd

    rows = pd.concat(pd.read_parquet(p) for p in (root / "results").rglob("eval.parquet"))
    card = load_card("cartpole-mixed")
    assert (rows.ref_min == card.ref_min).all() and (rows.ref_max == card.ref_max).all()


def test_a_run_says_its_preset_and_what_differs_from_the_reference_defaults(root, cli):
    """One dataset, one set of settings, however it is named; and the run says which."""
    lines = []
    for name in ("cartpole-mixed", "minari:bench/cartpole-mixed-v0"):
        done = cli("run", "--algo", "discrete_bcq", "--dataset", name, *S[:-1])
        assert done.returncode == 0, done.stderr
        lines.append([ln for ln in done.stderr.splitlines() if "preset" in ln])
    assert lines[0] == lines[1] and len(lines[0]) == 1
    assert lines[0][0].startswith("bench: discrete_bcq: preset small (the dataset card's)")
    assert "lr=0.0003" in lines[0][0] and "target_update_freq=320" in lines[0][0]
    done = cli(
        "run", "--algo", "discrete_bcq", "--dataset", "cartpole-mixed", "--preset", "none", *S[:-1]
    )
    assert "discrete_bcq: the reference defaults (no preset)" in done.stderr
