"""A dataset's identity: the content hash of what it holds, not of how its files were written.

content hash = sha256 over the episodes' digests in episode order, where an episode's digest
is sha256 over its observations, actions, rewards, terminations and truncations (each field's
name, dtype, shape and little-endian bytes, in that order). Two files that hold the same
transitions hash equal whatever wrote them (Minari version, HDF5 layout, compression); one
different bit in one step of one episode changes it.

A card records the content hash of its reference build (its full size and seed), with the
episode count and step count, and a small file of per-episode digests
(<cards folder>/reference/<id>.npz) that names the first differing episode when a build
does not match. A run's key hashes the dataset's identity: its content hash and its
normalization references (bench.run.config).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import DatasetError

#: The fields an episode's digest covers, in order.
CONTENT_FIELDS = ("observations", "actions", "rewards", "terminations", "truncations")
#: The version of how datasets are built from cards (bench.collect.build): recorded in every
#: dataset bench builds. 2: references are card constants; learned behaviors act in float64
#: with actions on a grid (bench.collect.exact); the seed plan (bench.seeding).
BUILD_VERSION = 2
#: Metadata keys bench writes into the datasets it builds or imports.
CONTENT_HASH_KEY = "bench_content_hash"
BUILD_VERSION_KEY = "bench_build_version"


def _field_bytes(h, name: str, value) -> None:
    if isinstance(value, dict):  # dict observation spaces: keys in sorted order
        for k in sorted(value):
            _field_bytes(h, f"{name}/{k}", value[k])
        return
    a = np.ascontiguousarray(value)
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
    h.update(a.tobytes())


def episode_digest(episode) -> bytes:
    """sha256 over one episode's fields (a Minari EpisodeData, or anything with the fields)."""
    h = hashlib.sha256()
    for name in CONTENT_FIELDS:
        _field_bytes(h, name, getattr(episode, name))
    return h.digest()


@dataclass(frozen=True)
class Content:
    """What a dataset holds, summarized: its hash, and per episode its length and digest."""

    hash: str  # 64 hex characters
    lengths: np.ndarray  # [E] int64: transitions per episode
    digests: np.ndarray  # [E] uint64: the first 8 bytes of each episode's digest

    @property
    def episodes(self) -> int:
        return len(self.lengths)

    @property
    def steps(self) -> int:
        return int(self.lengths.sum())


def content(dataset, progress=None) -> Content:
    """The content of a Minari dataset, read episode by episode in id order."""
    total = hashlib.sha256()
    lengths, digests = [], []
    for episode in dataset.iterate_episodes():
        d = episode_digest(episode)
        total.update(d)
        lengths.append(len(episode.actions))
        digests.append(int.from_bytes(d[:8], "little"))
        if progress is not None:
            progress(len(episode.actions))
    return Content(total.hexdigest(), np.asarray(lengths, np.int64), np.asarray(digests, np.uint64))


def content_hash(dataset) -> str:
    """The dataset's content hash: recorded in its metadata when bench wrote it, else computed."""
    stored = dataset.storage.metadata.get(CONTENT_HASH_KEY)
    if isinstance(stored, str) and len(stored) == 64:
        return stored
    return content(dataset).hash


# ---------------------------------------------------------------------- reference builds
def reference_file(cards_folder: Path, card_id: str) -> Path:
    return Path(cards_folder) / "reference" / f"{card_id}.npz"


def save_reference(path: Path, c: Content) -> None:
    """The per-episode lengths and digests of a reference build (plain arrays, no pickle)."""
    import io

    from bench.results.schema import atomic_write_bytes

    buf = io.BytesIO()
    np.savez_compressed(buf, lengths=c.lengths, digests=c.digests)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())  # a kill mid-write leaves the previous file


def load_reference(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(lengths, digests) of a reference build; None when the card ships none."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            lengths, digests = f["lengths"], f["digests"]
    except (OSError, KeyError, ValueError) as e:
        raise DatasetError(f"cannot read the reference build file {path}: {e}") from None
    if lengths.shape != digests.shape or lengths.ndim != 1:
        raise DatasetError(f"the reference build file {path} is malformed")
    return lengths, digests


def describe_mismatch(
    card_id: str,
    ref_hash: str,
    ref_episodes: int,
    ref_steps: int,
    built: Content,
    ref_file: Path | None,
) -> str:
    """One line: how a build differs from its card's reference build."""
    head = f"dataset '{card_id}' differs from the card's reference build"
    if built.episodes != ref_episodes or built.steps != ref_steps:
        where = (
            f"{built.episodes} episodes / {built.steps} steps, reference {ref_episodes} / "
            f"{ref_steps}"
        )
    else:
        where = f"same {ref_episodes} episodes and {ref_steps} steps"
    try:
        ref = load_reference(ref_file) if ref_file is not None else None
    except DatasetError as e:  # the mismatch is still the news: say why no episode is named
        ref, where = None, f"{where}; {e}"
    if ref is not None:
        lengths, digests = ref
        n = min(len(lengths), built.episodes)
        diff = np.nonzero((lengths[:n] != built.lengths[:n]) | (digests[:n] != built.digests[:n]))[
            0
        ]
        if len(diff):
            ep = int(diff[0])
            step = int(built.lengths[:ep].sum())
            if lengths[ep] != built.lengths[ep]:
                first = (
                    f"first at episode {ep} (dataset step {step}): {built.lengths[ep]} steps, "
                    f"reference {lengths[ep]}"
                )
            else:
                first = (
                    f"first at episode {ep} (dataset steps {step}-{step + built.lengths[ep] - 1}, "
                    f"its {built.lengths[ep]} steps)"
                )
            where += f"; {first}"
        elif built.episodes != len(lengths):
            where += f"; the first {n} episodes agree"
    return (
        f"{head} ({where}; content {built.hash[:12]}, reference {ref_hash[:12]}). "
        "Rebuild it on a clean install, or keep it as a dataset of its own with "
        "--allow-mismatch (its runs then get keys of their own)"
    )


def dataset_identity(content_sha: str, ref_min: float, ref_max: float) -> str:
    """What a run's key hashes for its dataset (16 hex characters): its content hash
    (content_hash) and the normalization references the scores are computed with."""
    blob = json.dumps(
        {"content": content_sha, "ref_min": float(ref_min), "ref_max": float(ref_max)},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
