"""Dataset ids -> cards: card ids (shipped bench/cards/*.toml, then user cards written by
`bench datasets import`), any Minari dataset (minari:<id>) and D4RL HDF5 files.

`minari:<namespace/name-vN>` uses a dataset from the local Minari root; `minari:<card id>` uses
the Minari remote dataset the card names as its counterpart (its `remote` alias, e.g.
hopper-medium -> mujoco/hopper/medium-v0). When the dataset is not local,
minari.download_dataset is tried when the remote's host answers a 3 s connection probe; offline,
the error is one line within seconds, saying how to build or import a dataset instead.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path

import gymnasium as gym

from bench.data.cards import Card, PolicySpec, TrainDefaults, card_ids, load_card
from bench.data.minari_io import dataset_exists, open_dataset
from bench.errors import DatasetError
from bench.types import EnvSpec

MINARI_PREFIX = "minari:"
#: A Minari dataset id: [namespace/...]name-vN, parts starting alphanumeric (no "..", no
#: absolute path, no spaces: the id is also a path under the Minari root).
MINARI_ID_RE = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]*/)*[A-Za-z0-9][A-Za-z0-9_.-]*-v\d+")
PROBE_TIMEOUT_S = 3.0
HOW_TO = (
    "build one with `bench datasets build ID` (see `bench datasets list`) or put a Minari "
    "dataset in the Minari root"
)


def _remote_host() -> str:
    """The host behind Minari's configured remote (MINARI_REMOTE, default Hugging Face)."""
    remote = os.environ.get("MINARI_REMOTE", "hf://farama-minari")
    return "storage.googleapis.com" if remote.startswith("gcp://") else "huggingface.co"


def _reachable(host: str, timeout: float) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def download(minari_id: str, probe_timeout: float = PROBE_TIMEOUT_S) -> None:
    """minari.download_dataset when the remote answers; offline, one line within seconds
    (Minari's own retries would take ~24 s)."""
    import minari

    host = _remote_host()
    if not _reachable(host, probe_timeout):
        raise DatasetError(
            f"dataset {minari_id} is not local and {host} cannot be reached (offline?); {HOW_TO}"
        )
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    try:
        minari.download_dataset(minari_id)
    except Exception as e:  # noqa: BLE001 - any remote failure is one line
        first = str(e).splitlines()[0][:200] if str(e) else ""
        raise DatasetError(
            f"dataset {minari_id} could not be downloaded ({type(e).__name__}: {first}); {HOW_TO}"
        ) from None


def remote_alias(name: str) -> str:
    """A card id with a `remote` alias -> that Minari remote id; anything else unchanged."""
    if "/" in name or name not in card_ids():
        return name
    card = load_card(name)
    if card.remote is None:
        raise DatasetError(
            f"dataset card {name} has no Minari remote counterpart; use `--dataset {name}` "
            "(built locally) or minari:<namespace/name-vN>"
        )
    return card.remote


def minari_card(dataset_id: str) -> Card:
    """A card for any Minari dataset: env and reference scores come from its metadata; its run
    defaults are those of the card that names this Minari id (shipped or imported), else those
    an import gives data of its observation space (imported_defaults): one dataset trains with
    one set of defaults however it is named."""
    import math

    minari_id = remote_alias(dataset_id[len(MINARI_PREFIX) :])
    if not minari_id:
        raise DatasetError("empty Minari id: use minari:<namespace/name-vN>")
    if not MINARI_ID_RE.fullmatch(minari_id):
        raise DatasetError(
            f"invalid Minari id '{minari_id}': use minari:<namespace/name-vN> (letters, digits, "
            "'-', '_' and '.' between single slashes, each part starting with a letter or digit)"
        )
    if not dataset_exists(minari_id):
        download(minari_id)
    dataset = open_dataset(minari_id)
    meta = dataset.storage.metadata
    refs = meta.get("ref_min_score"), meta.get("ref_max_score")
    if None in refs:
        raise DatasetError(
            f"dataset {minari_id} has no ref_min_score/ref_max_score in its metadata: "
            "normalized scores need both"
        )
    try:
        ref_min, ref_max = (float(r) for r in refs)
    except (TypeError, ValueError):
        ref_min = ref_max = math.nan
    if not (math.isfinite(ref_min) and math.isfinite(ref_max)) or ref_min == ref_max:
        raise DatasetError(
            f"dataset {minari_id}: ref_min_score {refs[0]!r} / ref_max_score {refs[1]!r} in its "
            "metadata cannot normalize scores (they must be finite numbers that differ)"
        )
    eval_json = meta.get("eval_env_spec")  # Minari's evaluation env, else the collecting one
    try:
        spec = gym.envs.registration.EnvSpec.from_json(eval_json) if eval_json else dataset.env_spec
        size = int(meta.get("total_steps", 0))
        ref_episodes = int(meta.get("num_episodes_average_score", 0) or 0)
    except Exception as e:  # noqa: BLE001 - tampered metadata: any parse error is one line
        raise DatasetError(
            f"dataset {minari_id}: its metadata cannot be read ({type(e).__name__}: "
            f"{' '.join(str(e).split())[:200]})"
        ) from None
    if spec is None:
        raise DatasetError(f"dataset {minari_id} records no environment to evaluate on")
    named = card_of_minari_id(minari_id)
    train = named.train if named is not None else imported_defaults(dataset.observation_space.shape)
    return Card(
        id=dataset_id,
        description=str(meta.get("description", "") or ""),
        minari_id=minari_id,
        env=EnvSpec(id=spec.id, kwargs=dict(spec.kwargs)),
        behavior=PolicySpec(policy="external"),
        size=size,
        seed=0,
        ref_min=ref_min,
        ref_max=ref_max,
        ref_source=f"Minari metadata of {minari_id}",
        expert=PolicySpec(policy="external"),
        ref_episodes=ref_episodes,
        train=train,
    )


def card_of_minari_id(minari_id: str) -> Card | None:
    """The card (shipped first, then imported) whose dataset is this Minari id; None if none.
    Cards that cannot be read are passed over (`bench datasets list` names them)."""
    for cid in card_ids():
        try:
            card = load_card(cid)
        except DatasetError:
            continue
        if card.minari_id == minari_id:
            return card
    return None


def vector_preset(obs_shape: tuple[int, ...] | None) -> str | None:
    """Train preset for imported data: vector observations get `small` (the algorithms that
    define it, e.g. discrete_bcq, then train with small-task settings, not Atari's)."""
    return "small" if obs_shape is not None and len(obs_shape) == 1 else None


def imported_defaults(obs_shape: tuple[int, ...] | None) -> TrainDefaults:
    """The run defaults of data that comes without a card of its own (an import, a D4RL file
    used directly, a Minari dataset no card names): vector observations get the `small` preset
    and a final evaluation of 100 episodes (cheap there); anything else the card defaults."""
    preset = vector_preset(None if obs_shape is None else tuple(obs_shape))
    return TrainDefaults(preset=preset, final_episodes=100 if preset is not None else 0)


def hdf5_id(file: Path, env_id: str) -> str:
    """The Minari id a D4RL file used directly is cached under: its name, the env and a digest
    of both its content and the env (one file on two envs is two datasets, each with its own
    env and references)."""
    import hashlib

    with file.open("rb") as f:  # streamed: D4RL files can be gigabytes
        content = hashlib.file_digest(f, "sha256").hexdigest()
    digest = hashlib.sha256(f"{content}\0{env_id}".encode()).hexdigest()[:10]
    stem = re.sub(r"[^a-z0-9]+", "-", file.stem.lower()).strip("-") or "file"
    env = re.sub(r"[^a-z0-9]+", "-", env_id.lower()).strip("-") or "env"
    return f"imported/{stem}-{env}-{digest}-v0"


def hdf5_card(path: str, env_id: str | None) -> Card:
    """A D4RL HDF5 file used directly: imported once per (content, env), then read."""
    import dataclasses

    from bench.data.d4rl_io import d4rl_refs, import_d4rl

    file = Path(path)
    try:
        exists, regular = file.exists(), file.is_file()
    except OSError as e:  # a name too long for the file system (ENAMETOOLONG), a loop of links
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from None
    if exists and not regular:
        raise DatasetError(f"{path}: not a regular file, not an HDF5 file")
    if not regular:
        raise DatasetError(f"no such file: {path}")
    if not env_id:
        raise DatasetError(f"{path}: give the env it was collected on with --env ENV_ID")
    minari_id = hdf5_id(file, env_id)
    if not dataset_exists(minari_id):
        if d4rl_refs(env_id) is None:  # `bench run` takes no references: an import does
            raise DatasetError(
                f"{path}: no reference scores known for {env_id}, and `bench run` takes no "
                f"--ref-min and --ref-max: import the file with them, `bench datasets import {path} --env {env_id} --as "
                "NAME --ref-min MIN --ref-max MAX`, then train with --dataset NAME"
            )
        import_d4rl(file, env_id, minari_id, exclusive=False)  # the id names the content
    card = minari_card(MINARI_PREFIX + minari_id)
    return dataclasses.replace(
        card, train=imported_defaults(open_dataset(minari_id).observation_space.shape)
    )


def import_file(
    path: Path,
    env_id: str,
    name: str,
    ref_min: float | None = None,
    ref_max: float | None = None,
    force: bool = False,
    command: str = "bench datasets import",
):
    """`bench datasets import`: a D4RL file -> a Minari dataset plus a user card for it, so the
    id works wherever a card id does (`bench run --dataset`, `datasets info`, `datasets list`).
    Returns (card, dataset). Nothing is left behind when any step fails."""
    from bench.data.cards import check_import_ids, import_ids, imported_card_text, write_card
    from bench.data.d4rl_io import import_d4rl
    from bench.data.minari_io import discard_dataset

    card_id, minari_id = import_ids(name)
    card_path = check_import_ids(card_id, minari_id, force)
    dataset = import_d4rl(Path(path), env_id, minari_id, ref_min, ref_max, force)
    meta = dataset.storage.metadata
    text = imported_card_text(
        card_id,
        minari_id,
        env_id,
        dataset.total_steps,
        meta["ref_min_score"],
        meta["ref_max_score"],
        meta.get("bench_ref_source", ""),
        f"imported from {Path(path).name} (collected on {env_id})",
        imported_defaults(dataset.observation_space.shape),
        command,
    )
    try:
        card = write_card(card_path, text)
    except OSError as e:
        discard_dataset(minari_id)  # and the namespace folder made for it
        raise DatasetError(
            f"cannot write the dataset card {card_path}: {' '.join(str(e.strerror or e).split())}"
        ) from None
    return card, dataset


#: Datasets given as a D4RL HDF5 file path (the ones --env is for).
HDF5_SUFFIXES = (".hdf5", ".h5")


#: Cards handed to this process by a sweep's driver: a job on another machine trains on the card
#: the driver resolved, which may exist only there (an imported file's, a minari: id's).
_GIVEN: dict[tuple[str, str | None], Card] = {}


def give_card(dataset_id: str, env_id: str | None, card: Card) -> None:
    """From now on, in this process, (dataset_id, env_id) resolves to this card."""
    _GIVEN[(dataset_id, env_id)] = card


def resolve_card(dataset_id: str, env_id: str | None = None) -> Card:
    """A card by id (shipped or imported), a card for `minari:<id>`, or for a D4RL HDF5 file
    path (or the card a sweep's driver gave this process for that id: give_card)."""
    if (dataset_id, env_id) in _GIVEN:
        return _GIVEN[(dataset_id, env_id)]
    if dataset_id.startswith(MINARI_PREFIX):
        return minari_card(dataset_id)
    if dataset_id.endswith(HDF5_SUFFIXES):
        return hdf5_card(dataset_id, env_id)
    return load_card(dataset_id)
