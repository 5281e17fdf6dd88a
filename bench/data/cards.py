"""Dataset cards: <cards folder>/<id>.toml describes one dataset, how to build it and how to
score it.

A card is the single source of truth that the builder, the loader and the evaluator share: the
evaluator builds its environments from the same card the dataset was collected on.

Two folders hold cards. The shipped cards are package data (bench/cards/*.toml, with the
behavior weights they use in bench/cards/behaviors/); $BENCH_DATASETS_DIR replaces that folder.
User cards, written by `bench datasets import`, live in $BENCH_CARDS_DIR, by default the folder
`bench-cards` beside the Minari root (~/.minari/bench-cards for ~/.minari/datasets), so they
travel with the datasets they describe. Lookup searches the shipped cards, then the user
cards; a user card never shadows a shipped id. A user card id is either a plain name
(`my-acrobot`) or a Minari id (`mine/acrobot-v0`, stored as mine/acrobot-v0.toml).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import DatasetError, UnknownNameError, one_line
from bench.types import EnvSpec

#: Folder of shipped cards (package data, bench/cards); BENCH_DATASETS_DIR points elsewhere.
DEFAULT_CARDS_DIR = Path(__file__).resolve().parents[1] / "cards"
#: Name of the default user-cards folder, beside the Minari root.
USER_CARDS_NAME = "bench-cards"
#: A card id: a plain name, or a Minari id namespace[/sub...]/name-vN.
CARD_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*")


def cards_dir() -> Path:
    """The shipped cards (and their behavior files): $BENCH_DATASETS_DIR, else bench/cards."""
    return Path(os.environ.get("BENCH_DATASETS_DIR", DEFAULT_CARDS_DIR))


def user_cards_dir() -> Path:
    """Cards written by `bench datasets import`: $BENCH_CARDS_DIR, else `bench-cards` beside
    the Minari root."""
    from bench.data.minari_io import minari_root

    env = os.environ.get("BENCH_CARDS_DIR")
    return Path(env) if env else minari_root().parent / USER_CARDS_NAME


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
    #: Episodes of the final evaluation of the last policy, recorded apart from the learning
    #: curve (final.parquet): what the leaderboard scores. 0: no final evaluation.
    final_episodes: int = 0
    #: Evaluated policies a run keeps for offline selection, the last N (None: all). Atari
    #: cards bound it: a Nature CNN policy is 6-19 MiB.
    keep_policies: int | None = None


@dataclass(frozen=True)
class Reference:
    """What a card's reference build holds (`bench datasets build` compares every full build)."""

    content_hash: str  # sha256, 64 hex characters
    episodes: int
    steps: int


def _reference(raw: Any, where: str) -> Reference | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise DatasetError(f"dataset card {where}: 'reference' must be a table")
    h = _get(raw, "content_hash", where, str)
    if not re.fullmatch(r"[0-9a-f]{64}", h):
        raise DatasetError(f"dataset card {where}: reference content_hash must be 64 hex digits")
    episodes, steps = _get(raw, "episodes", where, int), _get(raw, "steps", where, int)
    if episodes < 1 or steps < episodes:
        raise DatasetError(f"dataset card {where}: reference episodes/steps out of range")
    return Reference(h, episodes, steps)


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
    #: The reference build (full size, the card's seed): its content hash
    #: (bench.data.identity), episode count and step count; None until one is recorded.
    reference: Reference | None = None

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
        reference=_reference(raw.get("reference"), where),
    )


def shipped_card_ids() -> list[str]:
    return sorted(p.stem for p in cards_dir().glob("*.toml"))


def user_card_ids() -> list[str]:
    """Ids of the user cards (nested folders for Minari-style ids); shipped ids excluded."""
    root = user_cards_dir()
    if not root.is_dir():
        return []
    shipped = set(shipped_card_ids())
    ids = (p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.toml"))
    return sorted(i for i in ids if CARD_ID_RE.fullmatch(i) and i not in shipped)


def card_ids() -> list[str]:
    """Every card id: the shipped cards, then the user cards."""
    return shipped_card_ids() + user_card_ids()


def card_path(dataset_id: str) -> Path | None:
    """The file of a card id: shipped first, then user cards; None when there is none."""
    if not CARD_ID_RE.fullmatch(dataset_id):  # also keeps ids inside the folders (no "..")
        return None
    try:  # a name too long for the file system (ENAMETOOLONG) is no card either
        shipped = cards_dir() / f"{dataset_id}.toml"
        if "/" not in dataset_id and shipped.is_file():
            return shipped
        user = user_cards_dir() / f"{dataset_id}.toml"
        return user if user.is_file() else None
    except OSError:
        return None


def load_card(dataset_id: str) -> Card:
    path = card_path(dataset_id)
    if path is None:
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


def card_file(card: Card, name: str) -> Path:
    """The file a card names (behavior weights, a replay record), resolved relative to the
    card's own folder first, then the shipped cards folder (cards_dir()).

    A card can name only files inside one of those two folders: an absolute path, a `..`
    part, a name that resolves (after symlinks) outside both folders, or a missing file is
    one DatasetError line."""
    where = f"dataset card {card.path if card.path is not None else card.id}"
    if not isinstance(name, str) or not name.strip():
        raise DatasetError(f"{where}: a file name must be a non-empty string (got {name!r})")
    if "\0" in name:
        raise DatasetError(f"{where}: file name {name!r} holds a NUL character")
    rel = Path(name)
    if rel.is_absolute() or name.startswith("~"):
        raise DatasetError(
            f"{where}: file '{name}' is an absolute path; a card names files relative to its "
            "own folder or the cards folder"
        )
    if ".." in rel.parts:
        raise DatasetError(
            f"{where}: file '{name}' leaves its folder ('..'); a card names files inside its "
            "own folder or the cards folder"
        )
    folders = ([card.path.parent] if card.path is not None else []) + [cards_dir()]
    for folder in dict.fromkeys(folders):  # the shipped cards' own folder is cards_dir()
        candidate = folder / rel
        try:
            if not (candidate.exists() or candidate.is_symlink()):
                continue
            real, root = candidate.resolve(), folder.resolve()
        except (OSError, RuntimeError) as e:  # a name too long, a symlink loop
            why = one_line(getattr(e, "strerror", None) or e)
            raise DatasetError(f"{where}: file '{name}' cannot be opened ({why})") from None
        if not real.is_relative_to(root):
            raise DatasetError(
                f"{where}: file '{name}' resolves to {real}, outside its folder {root}; a card "
                "names files inside its own folder or the cards folder"
            )
        if not real.is_file():
            raise DatasetError(f"{where}: file '{name}' ({candidate}) is not a file")
        return real
    looked = " or ".join(str(f) for f in dict.fromkeys(folders))
    raise DatasetError(f"{where}: file '{name}' not found (looked in {looked})")


# ----------------------------------------------------------------- user cards (imports)
#: One segment of an imported id: what Minari accepts ([-_\w]), ASCII, starting alphanumeric.
_SEGMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_VERSION_RE = re.compile(r"-v\d+$")
#: Namespace of the Minari ids given to plain import names (my-acrobot -> imported/my-acrobot-v0).
IMPORT_NAMESPACE = "imported"
#: Longest segment of an imported id and longest id: each segment names a file or folder (a
#: card `<segment>.toml`, a Minari folder `<segment>-vN`), which file systems cap at 255 bytes.
MAX_SEGMENT_CHARS = 100
MAX_ID_CHARS = 200


def _shorten(text: str, keep: int = 60) -> str:
    return text if len(text) <= keep else f"{text[:keep]}..."


def import_ids(name: str) -> tuple[str, str]:
    """The card id and Minari id for `bench datasets import --as NAME`.

    `namespace/name-vN` is used as both; a plain name (`my-acrobot`) stays the card id and is
    stored as `imported/my-acrobot-v0`; a missing `-vN` becomes `-v0`. Anything else (empty,
    slashes at the ends or doubled, characters Minari rejects) is one error line."""
    from minari.dataset.minari_dataset import parse_dataset_id

    raw = name.strip()
    parts = raw.split("/")
    if not raw or not all(_SEGMENT_RE.fullmatch(p) for p in parts):
        raise DatasetError(
            f"invalid dataset id '{name}': use namespace/name-vN (letters, digits, '-' and '_' "
            "between slashes, e.g. mine/hopper-v0) or a plain name such as my-hopper"
        )
    if len(raw) > MAX_ID_CHARS or any(len(p) > MAX_SEGMENT_CHARS for p in parts):
        raise DatasetError(
            f"invalid dataset id '{_shorten(raw)}' ({len(raw)} characters): an id has at most "
            f"{MAX_ID_CHARS} characters and at most {MAX_SEGMENT_CHARS} between slashes"
        )
    versioned = raw if _VERSION_RE.search(parts[-1]) else f"{raw}-v0"
    if len(parts) == 1:
        card_id, minari_id = raw, f"{IMPORT_NAMESPACE}/{versioned}"
    else:
        card_id = minari_id = versioned
    try:
        namespace, _, _ = parse_dataset_id(minari_id)
    except (ValueError, TypeError):
        namespace = None
    if namespace is None:  # our rule is stricter than Minari's; this is a safety net
        raise DatasetError(f"invalid dataset id '{name}': Minari does not accept '{minari_id}'")
    return card_id, minari_id


def check_import_ids(card_id: str, minari_id: str, force: bool) -> Path:
    """Refuse an import that would shadow a shipped card (its id or its Minari id) or replace
    a user card without force; returns the user card's path."""
    shipped = shipped_card_ids()
    if card_id in shipped:
        raise DatasetError(f"'{card_id}' is a shipped dataset card; import under another id (--as)")
    for cid in shipped:
        if load_card(cid).minari_id == minari_id:
            raise DatasetError(
                f"Minari id {minari_id} belongs to the shipped card '{cid}'; import under "
                "another id (--as)"
            )
    path = user_cards_dir() / f"{card_id}.toml"
    if path.exists() and not force:
        raise DatasetError(
            f"dataset card '{card_id}' already exists ({path}); use --force to replace it"
        )
    return path


def _toml_str(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def imported_card_text(
    card_id: str,
    minari_id: str,
    env_id: str,
    size: int,
    ref_min: float,
    ref_max: float,
    ref_source: str,
    description: str,
    t: TrainDefaults,
    command: str,
) -> str:
    """The TOML of a user card for an imported dataset (behavior "external": not buildable),
    with run defaults t (bench.data.catalog.imported_defaults)."""
    preset = t.preset
    lines = [
        f"# Written by `{command}`.",
        "# The data is external: rebuild it by importing the file again (--force).",
        f"id = {_toml_str(card_id)}",
        f"description = {_toml_str(description)}",
        f"minari_id = {_toml_str(minari_id)}",
        "",
        "[env]",
        f"id = {_toml_str(env_id)}",
        "",
        "[build]",
        f"size = {int(size)}",
        'behavior = { policy = "external" }',
        "",
        "[normalization]",
        f"ref_min = {float(ref_min)!r}",
        f"ref_max = {float(ref_max)!r}",
        f"source = {_toml_str(ref_source)}",
        "",
        "[train]",
        f"steps = {t.steps}",
        f"eval_every = {t.eval_every}",
        f"eval_episodes = {t.eval_episodes}",
        f"batch_size = {t.batch_size}",
        f"final_episodes = {t.final_episodes}  # episodes of the final evaluation (0: none)",
    ]
    if preset is not None:
        lines.append(f"preset = {_toml_str(preset)}  # vector observations: small-task settings")
    return "\n".join(lines) + "\n"


def write_card(path: Path, text: str) -> Card:
    """Write a card atomically (temp file + rename) after checking it parses."""
    parse_card(tomllib.loads(text), str(path), path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return parse_card(tomllib.loads(text), str(path), path)
