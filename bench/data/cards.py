"""Dataset cards: datasets/<id>.toml describes one dataset, how to build it and how to score it.

A card is the single source of truth that the builder, the loader and the evaluator share: the
evaluator builds its environments from the same card the dataset was collected on.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import DatasetError, UnknownNameError

#: Folder of shipped cards (repo root /datasets); BENCH_DATASETS_DIR points elsewhere.
DEFAULT_CARDS_DIR = Path(__file__).resolve().parents[2] / "datasets"


def cards_dir() -> Path:
    return Path(os.environ.get("BENCH_DATASETS_DIR", DEFAULT_CARDS_DIR))


@dataclass(frozen=True)
class EnvSpec:
    """The environment a dataset was collected on and is evaluated on."""

    id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: gymnasium AtariPreprocessing kwargs (frame skip, 84x84 grayscale, no-op starts), when the
    #: env is an Atari game; the env itself must then be made with frameskip=1.
    atari: dict[str, Any] | None = None
    #: Observations the agent sees stack this many consecutive frames (FrameStackObservation,
    #: padded at reset with the first frame). Datasets store each frame once; the loader
    #: gathers the same stacks at sample time.
    frame_stack: int = 1


@dataclass(frozen=True)
class PolicySpec:
    """A behavior policy: a registered policy name, its parameters and epsilon-random mixing.

    epsilon is either a number (each step is random with that probability) or a
    [high, low] pair: each episode draws its own epsilon uniformly from that range.
    """

    policy: str
    epsilon: float | tuple[float, float] = 0.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainDefaults:
    """Run defaults for datasets of this card (CLI options override them)."""

    steps: int = 10_000
    eval_every: int = 2_000
    eval_episodes: int = 10
    batch_size: int = 256
    preset: str | None = None


@dataclass(frozen=True)
class Card:
    id: str
    description: str
    minari_id: str
    env: EnvSpec
    behavior: PolicySpec
    size: int
    seed: int
    #: Normalization references. None means "measured at build time and stored in the Minari
    #: metadata" (Minari's convention: uniform-random and expert policy, 100 episodes each).
    ref_min: float | None
    ref_max: float | None
    ref_source: str
    expert: PolicySpec
    ref_episodes: int
    train: TrainDefaults
    path: Path | None = None
    #: The Minari remote dataset that plays this card's role (e.g. mujoco/hopper/medium-v0),
    #: where one exists: `--dataset minari:<card id>` uses it (downloaded when online).
    remote: str | None = None

    @property
    def measured_refs(self) -> bool:
        return self.ref_min is None or self.ref_max is None


def _get(table: dict, key: str, where: str, typ: type | tuple[type, ...], default: Any = ...):
    if key not in table:
        if default is ...:
            raise DatasetError(f"dataset card {where}: missing key '{key}'")
        return default
    value = table[key]
    if not isinstance(value, typ) or isinstance(value, bool) and typ in (int, float):
        raise DatasetError(f"dataset card {where}: '{key}' has the wrong type ({value!r})")
    return value


def _policy(table: dict, where: str) -> PolicySpec:
    eps = table.get("epsilon", 0.0)
    if isinstance(eps, list):
        if len(eps) != 2:
            raise DatasetError(f"dataset card {where}: epsilon range must be [high, low]")
        eps = (float(eps[0]), float(eps[1]))
    else:
        eps = float(eps)
    return PolicySpec(
        policy=_get(table, "policy", where, str),
        epsilon=eps,
        params=dict(table.get("params", {})),
    )


def _env(table: dict, where: str) -> EnvSpec:
    atari = table.get("atari")
    if atari is not None and not isinstance(atari, dict):
        raise DatasetError(
            f"dataset card {where}: 'atari' must be a table of AtariPreprocessing kwargs"
        )
    stack = _get(table, "frame_stack", where, int, 1)
    if stack < 1:
        raise DatasetError(f"dataset card {where}: frame_stack must be >= 1, got {stack}")
    return EnvSpec(
        id=_get(table, "id", where, str),
        kwargs=dict(table.get("kwargs", {})),
        atari=None if atari is None else dict(atari),
        frame_stack=stack,
    )


def parse_card(raw: dict[str, Any], where: str, path: Path | None = None) -> Card:
    env = _get(raw, "env", where, dict)
    build = _get(raw, "build", where, dict)
    norm = _get(raw, "normalization", where, dict)
    train = raw.get("train", {})
    ref_min = norm.get("ref_min")
    ref_max = norm.get("ref_max")
    if (ref_min is None) != (ref_max is None):
        raise DatasetError(f"dataset card {where}: give both ref_min and ref_max, or neither")
    if ref_min is None and "expert" not in norm:
        raise DatasetError(f"dataset card {where}: refs measured at build need an 'expert' policy")
    return Card(
        id=_get(raw, "id", where, str),
        description=raw.get("description", ""),
        minari_id=_get(raw, "minari_id", where, str),
        env=_env(env, where),
        behavior=_policy(_get(build, "behavior", where, dict), where),
        size=int(_get(build, "size", where, int)),
        seed=int(build.get("seed", 0)),
        ref_min=None if ref_min is None else float(ref_min),
        ref_max=None if ref_max is None else float(ref_max),
        ref_source=_get(norm, "source", where, str),
        # the expert only matters when the refs are measured at build time
        expert=_policy(_get(norm, "expert", where, dict, {"policy": "none"}), where),
        ref_episodes=int(norm.get("episodes", 100)),
        train=TrainDefaults(**train),
        path=path,
        remote=_get(raw, "remote", where, str, None),
    )


def card_ids() -> list[str]:
    return sorted(p.stem for p in cards_dir().glob("*.toml"))


def load_card(dataset_id: str) -> Card:
    path = cards_dir() / f"{dataset_id}.toml"
    if not path.is_file():
        raise UnknownNameError("dataset", dataset_id, card_ids())
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"dataset card {path}: not valid TOML ({e})") from None
    try:
        card = parse_card(raw, str(path), path)
    except TypeError as e:  # unknown key in [train]
        raise DatasetError(f"dataset card {path}: {e}") from None
    if card.id != dataset_id:
        raise DatasetError(f"dataset card {path}: id '{card.id}' does not match its file name")
    return card
