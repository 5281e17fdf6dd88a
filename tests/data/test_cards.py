"""Every shipped card builds (tiny) and trains: the recipes, shipped weights and refs all work."""

import dataclasses

import pytest

from bench.algos import REGISTRY
from bench.collect.build import build_dataset
from bench.data.cards import load_card, shipped_card_ids
from tests.helpers import train

TINY = 400


@pytest.mark.parametrize("card_id", shipped_card_ids())
def test_card_builds_tiny_and_trains(card_id, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    card = load_card(card_id)
    if card.env.atari is not None:  # cap episodes (a stalled policy would play 108k frames)
        kwargs = {**card.env.kwargs, "max_num_frames_per_episode": TINY}  # 100 agent steps
        card = dataclasses.replace(card, env=dataclasses.replace(card.env, kwargs=kwargs))
        monkeypatch.setattr("bench.data.catalog.load_card", lambda _id: card)
    ds = build_dataset(card, size=TINY)
    meta = ds.storage.metadata
    assert ds.total_steps == TINY
    assert meta["ref_max_score"] > meta["ref_min_score"]
    discrete = hasattr(ds.action_space, "n")
    algos = [
        n
        for n, c in REGISTRY.items()
        if ("discrete" if discrete else "continuous") in c.action_kinds
    ]
    for algo in algos:
        result = train(
            tmp_path / "results",
            algo=algo,
            dataset=card_id,
            steps=4,
            eval_every=4,
            eval_episodes=1,
            batch_size=16,
            overrides={"hidden_sizes": "16,16"},
        )
        assert len(result.eval_rows) == 1


@pytest.mark.parametrize("env", ["pendulum", "hopper", "halfcheetah"])
def test_learned_behavior_tiers_are_ordered(env):
    """The shipped behaviors: expert beats medium beats random (5 episodes each)."""
    from bench.collect.build import measure_policy

    returns = {}
    for tier in ("random", "medium", "expert"):
        card = load_card(f"{env}-{tier}")
        returns[tier] = measure_policy(card, card.behavior, 5).mean()
    assert returns["random"] < returns["medium"] < returns["expert"], returns
