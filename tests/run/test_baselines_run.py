"""TD3+BC, IQL and CQL through the whole loop on a small continuous dataset: two seeds in one
job, the dataset's observation statistics fitted once and saved in each seed's checkpoint, and
a resumed run that continues from them exactly as the uninterrupted run does."""

import numpy as np
import pandas as pd
import pytest
import torch

from bench.data.data import OfflineData
from tests.helpers import train

SMALL = {"hidden_sizes": "32,32"}


@pytest.fixture(scope="module")
def pendulum_replay(minari_root):
    from bench.collect.build import build_dataset
    from bench.data.cards import load_card

    return build_dataset(load_card("pendulum-replay"))


def options(algo, steps=40):
    return dict(
        algo=algo,
        dataset="pendulum-replay",
        steps=steps,
        eval_every=20,
        eval_episodes=2,
        batch_size=32,
        final_episodes=0,
        overrides=SMALL,
    )


@pytest.mark.parametrize("algo", ["td3_bc", "iql", "cql"])
def test_a_job_of_two_seeds_keeps_the_datasets_statistics_in_each_checkpoint(
    algo, pendulum_replay, tmp_path
):
    from bench.run.config import RunOptions
    from bench.run.loop import run_job

    results = run_job(RunOptions(**options(algo)), [0, 1], results_dir=tmp_path)
    data = OfflineData.from_minari(pendulum_replay)
    s_t = data.observations(data.obs_index).double()
    for r in results:
        scores = [row["normalized_score"] for row in r.eval_rows]
        assert len(scores) == 2 and np.isfinite(scores).all()
        state = torch.load(r.run_dir / "checkpoint.pt", weights_only=True)["algo"]
        mean = state["tensors"]["obs_mean"]
        assert mean.shape == (1, 1, 3)  # this seed's slice
        assert torch.allclose(mean[0, 0].double(), s_t.mean(0), atol=1e-5)
    if algo == "iql":
        returns = data.episode_returns()
        scale = state["tensors"]["reward_scale"].item()
        assert scale == pytest.approx(1000.0 / (returns.max() - returns.min()), rel=1e-5)


@pytest.mark.parametrize("algo", ["td3_bc", "iql"])
def test_a_resumed_run_matches_the_uninterrupted_one(algo, pendulum_replay, tmp_path):
    from bench.run.config import RunOptions
    from bench.run.loop import run_job

    full = train(tmp_path / "full", **options(algo), seed=3)

    class Stop(Exception):
        pass

    def stop(*_):
        raise Stop

    with pytest.raises(Stop):
        train(tmp_path / "cut", **options(algo), seed=3, on_eval=stop)
    (run_dir,) = list((tmp_path / "cut" / "runs").iterdir())
    opts = RunOptions(**options(algo), seed=3)
    (resumed,) = run_job(opts, [3], resume=[run_dir], results_dir=tmp_path / "cut")
    cols = ["step", "return_mean", "normalized_score"]
    got = pd.DataFrame(resumed.eval_rows)[cols]
    pd.testing.assert_frame_equal(got, pd.DataFrame(full.eval_rows)[cols])
