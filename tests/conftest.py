import os

import pytest


@pytest.fixture(scope="session")
def minari_root(tmp_path_factory):
    """A private Minari root for the whole test session (never the user's ~/.minari)."""
    root = tmp_path_factory.mktemp("minari")
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    yield root
    if old is None:
        os.environ.pop("MINARI_DATASETS_PATH", None)
    else:
        os.environ["MINARI_DATASETS_PATH"] = old


@pytest.fixture(scope="session")
def tiny_cartpole(minari_root):
    """cartpole-mixed built with 3,000 steps (the card's recipe, a smaller size)."""
    from bench.collect.build import build_dataset
    from bench.data.cards import load_card

    card = load_card("cartpole-mixed")
    dataset = build_dataset(card, size=3000)
    return card, dataset
