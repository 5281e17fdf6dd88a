"""minari:<id> datasets: local ones train with their metadata's refs; missing ones fail fast."""

import json
import sys

import pandas as pd
import pytest

from bench.cli import main
from bench.data import catalog
from bench.errors import DatasetError
from tests.helpers import bench


def test_any_local_minari_dataset_trains(tiny_cartpole, tmp_path):
    card, ds = tiny_cartpole
    res = bench(
        "run",
        "--algo",
        "bc",
        "--dataset",
        f"minari:{card.minari_id}",
        "--steps",
        20,
        "--eval-every",
        20,
        "--eval-episodes",
        2,
        "--quiet",
        "--results-dir",
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    run_dir = res.stdout.strip().splitlines()[-1]
    assert "/runs/bc__minari-bench-cartpole-mixed-v0__s0__" in run_dir  # no '/' or ':' in run ids
    row = pd.read_parquet(f"{run_dir}/eval.parquet").iloc[0]
    meta = ds.storage.metadata
    assert (row.ref_min, row.ref_max) == (meta["ref_min_score"], meta["ref_max_score"])
    assert row.ref_source == f"Minari metadata of {card.minari_id}"
    assert row.dataset == f"minari:{card.minari_id}"


@pytest.fixture
def offline(monkeypatch):
    """No network: every connection attempt is recorded (address, timeout) and refused, and
    Minari's own download (whose retries take ~24 s offline) is recorded, never run."""
    import minari

    probes, downloads = [], []

    def refuse(address, timeout=None, *args, **kwargs):
        probes.append((address, timeout))
        raise OSError("network is unreachable")

    monkeypatch.delenv("MINARI_REMOTE", raising=False)
    monkeypatch.setattr(catalog.socket, "create_connection", refuse)
    monkeypatch.setattr(minari, "download_dataset", lambda *a, **k: downloads.append(a))
    return probes, downloads


def test_missing_dataset_offline_fails_in_one_line_after_one_short_probe(
    minari_root, tmp_path, monkeypatch, capsys, offline
):
    """Offline, a missing dataset costs one connection probe with the short configured timeout
    (never Minari's retrying download): one line, exit 2, no run directory."""
    probes, downloads = offline
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "bench",
            "run",
            "--algo",
            "bc",
            "--dataset",
            "minari:nobody/nothing-v0",
            "--results-dir",
            str(tmp_path / "r"),
        ],
    )
    with pytest.raises(SystemExit) as exit_info:
        main()
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1, lines
    assert "nobody/nothing-v0 is not local" in lines[0] and "bench datasets build" in lines[0]
    assert probes == [(("huggingface.co", 443), catalog.PROBE_TIMEOUT_S)]
    assert 0 < catalog.PROBE_TIMEOUT_S <= 5
    assert downloads == []
    assert not (tmp_path / "r").exists()


def test_unreachable_remote_is_detected_without_minari_retries(monkeypatch, offline):
    probes, downloads = offline
    monkeypatch.setattr(catalog, "_remote_host", lambda: "unreachable.invalid")
    with pytest.raises(DatasetError, match="unreachable.invalid cannot be reached"):
        catalog.download("nobody/nothing-v0")
    assert probes == [(("unreachable.invalid", 443), catalog.PROBE_TIMEOUT_S)]
    assert downloads == []


def test_dataset_without_reference_scores_is_refused(tiny_cartpole, tmp_path, monkeypatch):
    import shutil

    from bench.data.minari_io import dataset_dir

    card, _ = tiny_cartpole
    root = tmp_path / "minari"
    shutil.copytree(dataset_dir(card.minari_id).parent.parent, root)
    meta_path = root / card.minari_id / "data" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["ref_min_score"], meta["ref_max_score"]
    meta_path.write_text(json.dumps(meta))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    with pytest.raises(DatasetError, match="no ref_min_score/ref_max_score"):
        catalog.resolve_card(f"minari:{card.minari_id}")


def test_card_aliases_resolve_to_minari_remote_ids(monkeypatch):
    assert catalog.remote_alias("atari-breakout-expert") == "atari/breakout/expert-v0"
    assert catalog.remote_alias("mujoco/hopper/medium-v0") == "mujoco/hopper/medium-v0"
    with pytest.raises(DatasetError, match="no Minari remote counterpart"):
        catalog.remote_alias("cartpole-mixed")
    # offline, the alias goes the remote id's way: one line, within seconds
    monkeypatch.setattr(catalog, "_remote_host", lambda: "unreachable.invalid")
    with pytest.raises(DatasetError, match="atari/breakout/expert-v0 is not local"):
        catalog.resolve_card("minari:atari-breakout-expert")
