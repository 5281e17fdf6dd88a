"""The Minari side: where datasets live, whether one exists, opening it, hashing its metadata."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from bench.errors import DatasetError


def minari_root() -> Path:
    """$MINARI_DATASETS_PATH, else ~/.minari/datasets (Minari's own rule)."""
    env = os.environ.get("MINARI_DATASETS_PATH")
    return Path(env) if env else Path.home() / ".minari" / "datasets"


def dataset_dir(minari_id: str) -> Path:
    """root/<namespace>/<name>-v<N>: the folder Minari reads (it holds data/ and metadata)."""
    return minari_root() / minari_id


def dataset_exists(minari_id: str) -> bool:
    return (dataset_dir(minari_id) / "data" / "metadata.json").is_file()


def open_dataset(minari_id: str):
    """minari.load_dataset with our errors: a missing or unreadable dataset is one line."""
    import minari

    if not dataset_exists(minari_id):
        raise DatasetError(f"dataset {minari_id} is not in the Minari root {minari_root()}")
    try:
        return minari.load_dataset(minari_id)
    except Exception as e:  # h5py/OSError/ValueError for corrupt files: all mean "unreadable"
        raise DatasetError(
            f"dataset {minari_id}: cannot be read ({type(e).__name__}: {e})"
        ) from None


def metadata_hash(dataset) -> str:
    """sha256 over the dataset's metadata (ids, sizes, spaces, reference scores): 16 hex chars."""
    meta = dataset.storage.metadata
    blob = json.dumps(meta, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
