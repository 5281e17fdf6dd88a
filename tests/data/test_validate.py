"""Bad datasets fail before training: exit 2, one line naming the dataset and the problem,
no run directory. Each case corrupts a copy of a real (tiny) Minari dataset in place."""

import json
import shutil

import h5py
import numpy as np
import pytest

from bench.collect.build import build_dataset
from bench.data.cards import load_card
from tests.helpers import bench

MINARI_ID = "bench/fuzz-v0"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A card 'fuzz' (cartpole-mixed's recipe) and its 400-step dataset, built once."""
    cards = tmp_path_factory.mktemp("cards")
    text = load_card("cartpole-mixed").path.read_text()
    (cards / "fuzz.toml").write_text(
        text.replace('id = "cartpole-mixed"', 'id = "fuzz"').replace(
            "bench/cartpole-mixed-v0", MINARI_ID
        )
    )
    (cards / "fuzz-pendulum.toml").write_text(
        (cards / "fuzz.toml")
        .read_text()
        .replace('id = "fuzz"', 'id = "fuzz-pendulum"')
        .replace('id = "CartPole-v1"', 'id = "Pendulum-v1"')
    )
    root = tmp_path_factory.mktemp("minari")
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCH_DATASETS_DIR", str(cards))
    mp.setenv("MINARI_DATASETS_PATH", str(root))
    build_dataset(load_card("fuzz"), size=400)
    mp.undo()
    return cards, root


def _h5(root):
    return h5py.File(root / MINARI_ID / "data" / "main_data.hdf5", "r+")


def nan_rewards(root):
    with _h5(root) as f:
        f["episode_0/rewards"][3] = np.nan


def inf_observations(root):
    with _h5(root) as f:
        f["episode_1/observations"][2, 0] = np.inf


def action_out_of_range(root):
    with _h5(root) as f:
        f["episode_0/actions"][0] = 7


def missing_key(root):
    with _h5(root) as f:
        del f["episode_1/rewards"]


def no_end_flag(root):
    with _h5(root) as f:
        f["episode_0/terminations"][-1] = False
        f["episode_0/truncations"][-1] = False


def truncated_file(root):
    path = root / MINARI_ID / "data" / "main_data.hdf5"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garbage_file(root):
    (root / MINARI_ID / "data" / "main_data.hdf5").write_bytes(b"not an hdf5 file" * 100)


def empty(root):
    with _h5(root) as f:
        for name in list(f.keys()):
            del f[name]
    meta_path = root / MINARI_ID / "data" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta.update(total_episodes=0, total_steps=0)
    meta_path.write_text(json.dumps(meta))


CASES = [
    ("fuzz", nan_rewards, "NaN or infinite values in rewards"),
    ("fuzz", inf_observations, "NaN or infinite values in observations"),
    ("fuzz", action_out_of_range, "outside the env's 2 discrete actions"),
    ("fuzz", missing_key, "cannot be read (KeyError"),
    ("fuzz", no_end_flag, "ends with neither a termination nor a truncation"),
    ("fuzz", truncated_file, "cannot be read (OSError"),
    ("fuzz", garbage_file, "cannot be read (OSError"),
    ("fuzz", empty, "no transitions"),
    ("fuzz-pendulum", None, "observations have shape (4,), the env's are (3,)"),
]


@pytest.mark.parametrize("card, corrupt, message", CASES, ids=[c[2][:30] for c in CASES])
def test_bad_dataset_fails_cleanly(built, card, corrupt, message, tmp_path):
    cards, root = built
    mine = tmp_path / "minari"
    shutil.copytree(root, mine)
    if corrupt is not None:
        corrupt(mine)
    env = {"BENCH_DATASETS_DIR": str(cards), "MINARI_DATASETS_PATH": str(mine)}
    res = bench(
        "run",
        "--algo",
        "bc",
        "--dataset",
        card,
        "--steps",
        2,
        "--quiet",
        "--results-dir",
        tmp_path / "results",
        env_extra=env,
    )
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and message in lines[0] and MINARI_ID in lines[0], res.stderr
    assert not (tmp_path / "results").exists()
