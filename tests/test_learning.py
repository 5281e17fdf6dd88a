"""Discrete BCQ learns from fixed data: far above the behavior it was trained on."""

import pytest

from bench.collect.build import build_dataset
from bench.data.cards import load_card
from tests.helpers import train


@pytest.fixture(scope="module")
def mixed_20k(minari_root, tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("minari20k")
    monkeypatch_module.setenv("MINARI_DATASETS_PATH", str(root))
    card = load_card("cartpole-mixed")
    return build_dataset(card, size=20_000)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_discrete_bcq_beats_the_behavior_on_a_small_mixed_dataset(mixed_20k, tmp_path):
    behavior = mixed_20k.storage.metadata["bench_behavior_return_mean"]
    result = train(
        tmp_path, algo="discrete_bcq", dataset="cartpole-mixed", seed=0, steps=3000, eval_every=1500
    )
    final = result.eval_rows[-1]
    assert behavior < 250  # the data is mostly poor play
    assert final["return_mean"] >= 450, result.eval_rows


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_default_budget_reaches_90_on_cartpole_mixed(seed, minari_root, tmp_path):
    """The acceptance run: the full 100k-step dataset and the card's default step budget."""
    result = train(tmp_path, algo="discrete_bcq", dataset="cartpole-mixed", seed=seed)
    assert result.eval_rows[-1]["normalized_score"] >= 90, result.eval_rows


@pytest.mark.slow
def test_cartpole_traps_separates_offline_rl_from_imitation(minari_root, tmp_path):
    """The card's design: bc imitates the majority (wrong) action near the start, Discrete CQL
    learns the good one from the returns. 3 seeds each, 5,000 updates, 30 final episodes."""
    from bench.run.config import RunOptions
    from bench.run.loop import run_job

    scores = {}
    for algo in ("bc", "discrete_cql"):
        opts = RunOptions(
            algo=algo, dataset="cartpole-traps", steps=5000, eval_every=5000, final_episodes=30
        )
        results = run_job(opts, [0, 1, 2], show_progress=False, results_dir=tmp_path)
        scores[algo] = [r.final_row["normalized_score"] for r in results]
    assert min(scores["discrete_cql"]) > max(scores["bc"]) + 10, scores
