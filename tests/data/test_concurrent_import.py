"""Two processes writing one dataset id at once: an import never silently replaces a dataset
another process wrote meanwhile (two different files under one --as id); a build of a card, or
a D4RL file used directly (its id names its content), may, since both wrote the same data."""

import pytest

from bench.data.minari_io import staged_dataset
from bench.errors import DatasetError


def _race(root, exclusive):
    """Stage a dataset while 'another process' puts its own under the same id."""
    with staged_dataset("tt/x-v0", exclusive=exclusive) as staging:
        (staging / "tt" / "x-v0" / "data").mkdir(parents=True)
        (staging / "tt" / "x-v0" / "data" / "metadata.json").write_text('{"mine": 1}')
        theirs = root / "tt" / "x-v0" / "data"
        theirs.mkdir(parents=True)
        (theirs / "metadata.json").write_text('{"theirs": 1}')


def test_an_import_keeps_a_dataset_written_meanwhile(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    with pytest.raises(DatasetError, match="tt/x-v0 was written by another process meanwhile"):
        _race(tmp_path, exclusive=True)
    assert (tmp_path / "tt" / "x-v0" / "data" / "metadata.json").read_text() == '{"theirs": 1}'
    assert not (tmp_path / ".bench-staging").exists()


def test_a_build_replaces_it_with_the_same_data(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    _race(tmp_path, exclusive=False)
    assert (tmp_path / "tt" / "x-v0" / "data" / "metadata.json").read_text() == '{"mine": 1}'
    assert not (tmp_path / ".bench-staging").exists()
