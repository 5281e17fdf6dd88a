"""The same command and seed on CPU gives identical scores and training stats, bitwise."""

import pandas as pd

from tests.helpers import train


def _run(tmp_path, name, algo, seed=3):
    return train(
        tmp_path / name,
        algo=algo,
        dataset="cartpole-mixed",
        seed=seed,
        steps=60,
        eval_every=30,
        eval_episodes=3,
        batch_size=16,
        overrides={"hidden_sizes": "32,32"},
    ).run_dir


def test_two_identical_runs_give_identical_tables(tiny_cartpole, tmp_path):
    for algo in ("discrete_bcq", "discrete_sac"):
        a, b = _run(tmp_path, f"{algo}-a", algo), _run(tmp_path, f"{algo}-b", algo)
        ea, eb = pd.read_parquet(a / "eval.parquet"), pd.read_parquet(b / "eval.parquet")
        cols = ["step", "return_mean", "return_std", "normalized_score"]
        assert ea[cols].equals(eb[cols])
        ta, tb = pd.read_parquet(a / "train.parquet"), pd.read_parquet(b / "train.parquet")
        keep = lambda t: t[t.metric != "updates_per_s"][["step", "metric", "value"]]  # noqa: E731
        assert keep(ta).reset_index(drop=True).equals(keep(tb).reset_index(drop=True))


def test_another_seed_gives_other_training_stats(tiny_cartpole, tmp_path):
    a = pd.read_parquet(_run(tmp_path, "a", "discrete_bcq") / "train.parquet")
    b = pd.read_parquet(_run(tmp_path, "b", "discrete_bcq", seed=4) / "train.parquet")
    loss = lambda t: t[t.metric == "loss"].value.tolist()  # noqa: E731
    assert loss(a) != loss(b)
