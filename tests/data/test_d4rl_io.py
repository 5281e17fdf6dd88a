"""D4RL HDF5 import/export: an exact round trip, the episode rules, and bad files."""

import h5py
import numpy as np
import pytest

from bench.data.d4rl_io import export_d4rl, import_d4rl, split_episodes
from bench.errors import DatasetError
from tests.helpers import bench


def d4rl_file(path, n=250, next_obs=True, seed=0):
    """Pendulum-shaped D4RL arrays: episodes end at a terminal (t=40), timeouts (every 100)."""
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((n, 3)).astype(np.float32)
    terminals = np.zeros(n, bool)
    timeouts = np.zeros(n, bool)
    terminals[40] = True
    timeouts[140] = timeouts[240] = True  # the last 9 steps end with the file, no flag
    with h5py.File(path, "w") as f:
        f["observations"] = obs
        f["actions"] = rng.uniform(-2, 2, (n, 1)).astype(np.float32)
        f["rewards"] = rng.standard_normal(n).astype(np.float32)
        f["terminals"] = terminals
        f["timeouts"] = timeouts
        if next_obs:
            f["next_observations"] = np.roll(obs, -1, 0)
    return path


def read(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f}


def test_import_export_round_trip_is_exact(tmp_path, minari_root):
    src = d4rl_file(tmp_path / "a.hdf5")
    ds = import_d4rl(src, "Pendulum-v1", "test/roundtrip-v0", ref_min=-1300, ref_max=-150)
    assert ds.total_episodes == 4 and ds.total_steps == 250
    export_d4rl(ds, tmp_path / "b.hdf5")
    a, b = read(src), read(tmp_path / "b.hdf5")
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
        assert a[k].dtype == b[k].dtype, (k, a[k].dtype, b[k].dtype)


def test_episode_rules_without_next_observations():
    a = {
        "observations": np.arange(10, dtype=np.float32)[:, None],
        "actions": np.zeros((10, 1), np.float32),
        "rewards": np.ones(10, np.float32),
        "terminals": np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0], bool),
        "timeouts": np.array([0, 0, 0, 0, 0, 1, 0, 0, 0, 0], bool),
    }
    eps = split_episodes(a)
    # terminal episode keeps its 3 steps (final obs repeated, never bootstrapped from)
    assert eps[0]["observations"][:, 0].tolist() == [0, 1, 2, 2] and eps[0]["terminations"][-1]
    # timeout episode: its last step's next observation is unknown -> dropped
    assert eps[1]["observations"][:, 0].tolist() == [3, 4, 5] and eps[1]["truncations"][-1]
    assert eps[2]["observations"][:, 0].tolist() == [6, 7, 8, 9] and eps[2]["truncations"][-1]


def test_run_directly_on_a_file(tmp_path, minari_root):
    src = d4rl_file(tmp_path / "hopper-like.hdf5")
    res = bench(
        "run", "--algo", "bc", "--dataset", src, "--env", "Pendulum-v1", "--steps", 5,
        "--eval-every", 5, "--eval-episodes", 1, "-q", "--results-dir", tmp_path / "r",
    )  # fmt: skip
    # Pendulum has no D4RL reference: one clear line asking for them
    assert res.returncode == 2 and "--ref-min and --ref-max" in res.stderr
    res = bench("datasets", "import", src, "--env", "Pendulum-v1", "--as", "test/file-v0",
                "--ref-min", -1300, "--ref-max", -150)  # fmt: skip
    assert res.returncode == 0, res.stderr
    res = bench("run", "--algo", "bc", "--dataset", "minari:test/file-v0", "--steps", 5,
                "--eval-every", 5, "--eval-episodes", 1, "-q", "--results-dir", tmp_path / "r")  # fmt: skip
    assert res.returncode == 0, res.stderr
    res = bench("datasets", "export", "minari:test/file-v0", tmp_path / "out.hdf5")
    assert res.returncode == 0 and np.array_equal(
        read(src)["actions"], read(tmp_path / "out.hdf5")["actions"]
    )


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda f: f.__delitem__("rewards"), "missing D4RL keys rewards"),
        (lambda f: (f.__delitem__("actions"), f.create_dataset("actions", data=np.zeros((5, 1)))),
         "actions do not have 250 rows"),
    ],
)  # fmt: skip
def test_bad_d4rl_files(tmp_path, corrupt, message, minari_root):
    src = d4rl_file(tmp_path / "bad.hdf5")
    with h5py.File(src, "r+") as f:
        corrupt(f)
    with pytest.raises(DatasetError, match=message):
        import_d4rl(src, "Pendulum-v1", "test/bad-v0", ref_min=0, ref_max=1)
    (tmp_path / "junk.hdf5").write_bytes(b"junk" * 10)
    with pytest.raises(DatasetError, match="cannot be read as HDF5"):
        import_d4rl(tmp_path / "junk.hdf5", "Pendulum-v1", "test/bad-v0", ref_min=0, ref_max=1)
