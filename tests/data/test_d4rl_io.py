"""D4RL HDF5 import/export: an exact round trip, the episode rules, and bad files."""

import h5py
import numpy as np
import pytest

from bench.data.d4rl_io import export_d4rl, import_d4rl, split_episodes
from bench.errors import DatasetError
from tests.helpers import bench


def d4rl_file(path, n=250, next_obs=True, seed=0, obs_dim=3, actions=None):
    """Pendulum-shaped D4RL arrays (other shapes with obs_dim and actions(rng, n)): episodes
    end at a terminal (t=40), timeouts (every 100)."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (n, obs_dim)).astype(np.float32)
    terminals = np.zeros(n, bool)
    timeouts = np.zeros(n, bool)
    terminals[40] = True
    timeouts[140] = timeouts[240] = True  # the last 9 steps end with the file, no flag
    with h5py.File(path, "w") as f:
        f["observations"] = obs
        f["actions"] = (
            rng.uniform(-2, 2, (n, 1)).astype(np.float32) if actions is None else actions(rng, n)
        )
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
        "run",
        "--algo",
        "bc",
        "--dataset",
        src,
        "--env",
        "Pendulum-v1",
        "--steps",
        5,
        "--eval-every",
        5,
        "--eval-episodes",
        1,
        "-q",
        "--results-dir",
        tmp_path / "r",
    )
    # Pendulum has no D4RL reference: one clear line asking for them
    assert res.returncode == 2 and "--ref-min and --ref-max" in res.stderr
    res = bench(
        "datasets",
        "import",
        src,
        "--env",
        "Pendulum-v1",
        "--as",
        "test/file-v0",
        "--ref-min",
        -1300,
        "--ref-max",
        -150,
    )
    assert res.returncode == 0, res.stderr
    res = bench(
        "run",
        "--algo",
        "bc",
        "--dataset",
        "minari:test/file-v0",
        "--steps",
        5,
        "--eval-every",
        5,
        "--eval-episodes",
        1,
        "--batch-size",
        32,
        "-q",
        "--results-dir",
        tmp_path / "r",
    )
    assert res.returncode == 0, res.stderr
    res = bench("datasets", "export", "minari:test/file-v0", tmp_path / "out.hdf5")
    assert res.returncode == 0 and np.array_equal(
        read(src)["actions"], read(tmp_path / "out.hdf5")["actions"]
    )


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda f: f.__delitem__("rewards"), "missing D4RL keys rewards"),
        (
            lambda f: (
                f.__delitem__("actions"),
                f.create_dataset("actions", data=np.zeros((5, 1))),
            ),
            "actions do not have 250 rows",
        ),
    ],
)
def test_bad_d4rl_files(tmp_path, corrupt, message, minari_root):
    src = d4rl_file(tmp_path / "bad.hdf5")
    with h5py.File(src, "r+") as f:
        corrupt(f)
    with pytest.raises(DatasetError, match=message):
        import_d4rl(src, "Pendulum-v1", "test/bad-v0", ref_min=0, ref_max=1)
    (tmp_path / "junk.hdf5").write_bytes(b"junk" * 10)
    with pytest.raises(DatasetError, match="cannot be read as HDF5"):
        import_d4rl(tmp_path / "junk.hdf5", "Pendulum-v1", "test/bad-v0", ref_min=0, ref_max=1)


def test_a_file_run_on_two_envs_is_two_datasets_each_with_its_env_and_refs(
    tmp_path, minari_root, monkeypatch
):
    """`--dataset f.hdf5 --env E`: the cached import is keyed by the content and the env, so
    the same file on another env of the same shapes is not scored against the first env."""
    from bench.data import catalog, d4rl_io
    from bench.data.minari_io import open_dataset

    six = lambda rng, n: rng.uniform(-1, 1, (n, 6)).astype(np.float32)  # noqa: E731
    src = d4rl_file(tmp_path / "cheetah-like.hdf5", obs_dim=17, actions=six)
    cheetah = catalog.hdf5_card(str(src), "HalfCheetah-v5")
    walker = catalog.hdf5_card(str(src), "Walker2d-v5")
    assert cheetah.minari_id != walker.minari_id
    assert "halfcheetah-v5" in cheetah.minari_id and "walker2d-v5" in walker.minari_id
    for card, env, family in [
        (cheetah, "HalfCheetah-v5", "halfcheetah"),
        (walker, "Walker2d-v5", "walker2d"),
    ]:
        assert card.env.id == env
        assert (card.ref_min, card.ref_max) == pytest.approx(d4rl_io.D4RL_REFS[family])
        meta = open_dataset(card.minari_id).storage.metadata
        assert (meta["ref_min_score"], meta["ref_max_score"]) == (card.ref_min, card.ref_max)
        assert card.train.preset == "small"  # vector observations
    # the same file and env again: the cached dataset, not a second import
    monkeypatch.setattr(d4rl_io, "import_d4rl", lambda *a, **k: pytest.fail("imported again"))
    assert catalog.hdf5_card(str(src), "HalfCheetah-v5").minari_id == cheetah.minari_id


def test_export_refuses_up_front_when_the_disk_is_too_small(tmp_path, minari_root, monkeypatch):
    import shutil

    src = d4rl_file(tmp_path / "a.hdf5")
    ds = import_d4rl(src, "Pendulum-v1", "test/small-disk-v0", ref_min=-1300, ref_max=-150)
    out = tmp_path / "out"
    out.mkdir()
    usage = shutil.disk_usage(out)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=5 * 2**20))
    with pytest.raises(
        DatasetError, match=rf"not enough disk space in {out}: need ~\d+ MiB, 5 MiB free"
    ):
        export_d4rl(ds, out / "b.hdf5")
    assert list(out.iterdir()) == []


def test_export_removes_its_temp_file_when_the_write_fails(tmp_path, minari_root, monkeypatch):
    """A write that fails midway (here: the disk fills up) leaves neither the temp file nor a
    target file; an existing target is left as it was."""
    import errno
    import os

    src = d4rl_file(tmp_path / "a.hdf5")
    ds = import_d4rl(src, "Pendulum-v1", "test/enospc-v0", ref_min=-1300, ref_max=-150)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.hdf5").write_bytes(b"previous export")
    written = []
    real_create = h5py.File.create_dataset

    def fill_up(self, name, **kwargs):
        written.append(os.listdir(out))  # the temp file exists in the target folder by now
        if len(written) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_create(self, name, **kwargs)

    monkeypatch.setattr(h5py.File, "create_dataset", fill_up)
    for target in ("b.hdf5", "old.hdf5"):
        written.clear()
        with pytest.raises(DatasetError, match=f"cannot write .*{target}: no space left in {out}"):
            export_d4rl(ds, out / target)
        assert any(n.startswith(f".{target}.") and n.endswith(".tmp") for n in written[0])
        assert sorted(os.listdir(out)) == ["old.hdf5"]
    assert (out / "old.hdf5").read_bytes() == b"previous export"


def test_export_to_a_missing_folder_is_one_line(tmp_path, minari_root):
    src = d4rl_file(tmp_path / "a.hdf5")
    ds = import_d4rl(src, "Pendulum-v1", "test/nofolder-v0", ref_min=-1300, ref_max=-150)
    with pytest.raises(DatasetError, match="does not exist"):
        export_d4rl(ds, tmp_path / "no" / "such" / "b.hdf5")
