"""Online mode: checkpoints with evaluated returns, policy files, and an exactly replayable buffer."""

import json

import numpy as np
import torch

from bench.collect.build import build_dataset
from bench.collect.online import OnlineSpec, load_policy, train_online
from bench.data.cards import load_card
from bench.data.data import OfflineData


def test_online_training_saves_policies_and_a_replayable_buffer(tmp_path, monkeypatch, minari_root):
    out = tmp_path / "cards" / "behaviors"
    spec = OnlineSpec(
        algo="discrete_sac",
        env="CartPole-v1",
        steps=300,
        utd=2,
        batch_size=32,
        start_steps=100,
        eval_every=150,
        eval_episodes=2,
        overrides={"hidden_sizes": "16,16"},
        out=out,
    )
    result = train_online(spec, show_progress=False)
    assert [r["step"] for r in result.records] == [150, 300]
    assert json.loads((out / "checkpoints.json").read_text()) == result.records

    # a saved policy file restores the evaluation policy exactly
    policy = load_policy(out / result.records[-1]["file"])
    obs = torch.randn(1, 8, 4)  # one seed, 8 observations
    payload = torch.load(out / result.records[-1]["file"], weights_only=True)
    assert payload["return_mean"] == result.records[-1]["return_mean"]
    assert set(payload["policy"]) == {"actor"} and payload["command"].startswith("bench ")
    assert policy.act(obs).shape == (1, 8)

    # a replay card rebuilds exactly the transitions the agent collected
    cards = tmp_path / "cards"
    text = (
        load_card("pendulum-replay")
        .path.read_text()
        .replace("pendulum-replay", "cartpole-replay")
        .replace('id = "Pendulum-v1"', 'id = "CartPole-v1"')
        .replace("size = 3_000", "size = 300")
        .replace("pendulum_redq_replay.npz", "replay.npz")
        .replace(
            'file = "behaviors/pendulum_redq_expert.pt"',
            f'file = "behaviors/{result.records[-1]["file"]}"',
        )
    )
    text = text.split("\n[reference]")[0]  # pendulum-replay's reference build is not this one's
    (cards / "cartpole-replay.toml").write_text(text)
    monkeypatch.setenv("BENCH_DATASETS_DIR", str(cards))
    dataset = build_dataset(load_card("cartpole-replay"))
    data = OfflineData.from_minari(dataset)
    buf = result.buffer
    assert len(data) == buf.size == 300
    assert np.array_equal(data.obs[data.obs_index].numpy(), buf.obs[:300])
    assert np.array_equal(data.obs[data.obs_index + 1].numpy(), buf.next_obs[:300])
    assert np.array_equal(data.act.numpy(), buf.act[:300])
    assert np.array_equal(data.rew.numpy(), buf.rew[:300])


def test_a_run_stopped_before_its_first_checkpoint_leaves_no_output_folder(tmp_path, monkeypatch):
    """The output folder (and parents) made for a run is removed again when the run stops
    before writing anything in it; an existing folder is kept."""
    import pytest

    import bench.collect.online as online

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(online, "algorithm_returns", interrupt)
    (tmp_path / "old").mkdir()
    for out in (tmp_path / "new" / "out", tmp_path / "old"):
        spec = OnlineSpec(
            algo="discrete_sac",
            env="CartPole-v1",
            steps=5,
            eval_every=5,
            eval_episodes=1,
            start_steps=5,
            out=out,
        )
        with pytest.raises(KeyboardInterrupt):
            train_online(spec, show_progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
