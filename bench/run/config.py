"""The run identity: one declaration of everything that decides a run's numbers.

    RunOptions  what a user asks for (`bench run` / `bench sweep` options; None: the card's)
    RunConfig   the same, resolved once: the algorithm's whole config, the dataset's Minari id and
                metadata hash, the budgets, the evaluation env and its seeds

RunConfig.key() hashes the fields that decide the numbers (the seed excluded, so the seeds of one
configuration share a key). config.json holds the RunConfig with the key and a schema version;
every eval row carries the key; sweeps match runs by it; the leaderboard groups by it; and the
reproduce command is printed from it. The CLI options of `bench run` and `bench sweep` are
generated from RunOptions' fields (see bench.cli.options).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.algos import get_algorithm
from bench.algos.base import Algorithm, resolve_config
from bench.data.cards import Card
from bench.errors import BenchError
from bench.run.precision import PRECISIONS
from bench.seeding import env_seed

#: config.json layout version. 1: before run keys; 2: before seeds trained together (both read
#: back, never matched to a newer run: their random draws were made another way); 3: before
#: implementation versions (read back with versions None, under keys no newer run shares);
#: 4: before the update's precision (read back as fp32, the only one then, under their keys).
SCHEMA_VERSION = 5
#: How random draws are made (part of the key): 2 = one stream per seed (bench.seeding).
RANDOM_STREAMS = 2
#: Evaluation env seeds come from the seed plan (bench.seeding): env i of run seed s resets with
#: env_seed("eval", s, i), its final evaluation with env_seed("final", s, i). A run records the
#: plan's first eval seed (older runs: 1_000_000, when seeds were EVAL_SEED_BASE + 1000 s + i).
EVAL_SEED_BASE = env_seed("eval", 0)
#: The parts of the code whose versions are part of a run's identity: the algorithm's
#: implementation (Algorithm.version) and the evaluation protocol (bench.evaluate.EVAL_VERSION).
VERSION_PARTS = ("algo", "eval")
#: Seeds are non-negative and fit the 32-bit seeds of numpy and the environments.
MAX_SEED = 2**31 - 1
#: Budgets above this are refused as typos (10^9 updates is years on any machine).
MAX_BUDGET = 10**9
MAX_THREADS = 1024
#: Episodes per evaluation above this are refused (each is a full rollout).
MAX_EVAL_EPISODES = 100_000
#: Training stats (train.parquet) are averaged over windows of this many updates by default.
LOG_EVERY = 100


#: How an option takes part in a run's key (RunConfig.key): always, or only when it is not its
#: default, so that runs written before the option existed keep the key they had.
KEY_ALWAYS, KEY_IF_SET = "always", "if_set"
#: How RunConfig.command() spells an option: always (so a changed card default cannot change the
#: rerun), or when it is not its default.
SPELL_ALWAYS, SPELL_IF_SET = "always", "if_set"
#: A suite grid's budgets: pinned (every grid gives it) or optional (a grid may give it).
SUITE_PINNED, SUITE_OPTIONAL = "pinned", "optional"


def _count(name: str, value: Any, *, most: int = MAX_BUDGET, allow_zero: bool = False) -> int:
    """A count option checked as the CLI reports it: an integer, positive (or >= 0), bounded."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool) or not isinstance(value, int):
        raise BenchError(f"{flag} must be an integer, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise BenchError(f"{flag} must be {'>= 0' if allow_zero else 'positive'}, got {value}")
    if value > most:
        raise BenchError(f"{flag} must be at most {most:,}, got {value:,}")
    return value


def _positive(name: str, value: Any) -> int:
    return _count(name, value)


def _count_or_zero(name: str, value: Any) -> int:
    return _count(name, value, allow_zero=True)


def _episodes(name: str, value: Any, allow_zero: bool = False) -> int:
    return _count(name, value, most=MAX_EVAL_EPISODES, allow_zero=allow_zero)


def _episodes_or_zero(name: str, value: Any) -> int:
    return _episodes(name, value, allow_zero=True)


def _threads(name: str, value: Any) -> int:
    return _count(name, value, most=MAX_THREADS)


def _seed(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise BenchError(f"--seed must be in 0..{MAX_SEED}, got {value!r}")
    return value


def _holdout(name: str, value: Any) -> float:
    """A holdout fraction: a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BenchError(f"--holdout must be a number, got {value!r}")
    if not 0.0 <= value < 1.0:  # nan fails too
        raise BenchError(f"--holdout must be in [0, 1), got {value}")
    return float(value)


def _precision(name: str, value: Any) -> str:
    if value not in PRECISIONS:
        raise BenchError(f"--precision must be one of {', '.join(PRECISIONS)}, got {value!r}")
    return value


def _opt(
    default: Any,
    help: str,
    flag: str | None = None,
    sweep_help: str | None = None,
    *,
    check: Callable[[str, Any], Any] | None = None,
    card: bool = False,
    key: str | None = None,
    label: bool = False,
    spell: str | None = None,
    suite: str | None = None,
):
    """A RunOptions field, declared once for everything that reads it:

    help, flag, sweep_help  the option of `bench run` and `bench sweep` (bench.cli.options)
    check     (name, value) -> value, one error line for a bad value; run on what the user gives
              (None: the card's default) and on the value resolved from the card
    card      None takes the dataset card's [train] value of the same name
    key       KEY_ALWAYS or KEY_IF_SET: hashed into the run key (RunConfig holds it); None: not
    label     named in labels when configurations of one algorithm and dataset differ in it
    spell     SPELL_ALWAYS or SPELL_IF_SET: written into the command that reruns the run
    suite     SUITE_PINNED or SUITE_OPTIONAL: a suite grid's setting; None: not in suites
    A field whose name RunConfig also has is stored in config.json.
    """
    meta = {
        "help": help,
        "flag": flag,
        "sweep_help": sweep_help or help,
        "check": check,
        "card": card,
        "key": key,
        "label": label,
        "spell": spell,
        "suite": suite,
    }
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=meta)
    return field(default=default, metadata=meta)


#: What the card's training budgets share: None takes the card's, they are in the run key, named
#: in labels, always spelled by the rerun command, and pinned by every suite grid.
_BUDGET: dict[str, Any] = dict(
    card=True, key=KEY_ALWAYS, label=True, spell=SPELL_ALWAYS, suite=SUITE_PINNED
)


@dataclass(frozen=True)
class RunOptions:
    """What a user asks for. None means "the dataset card's default". Each field is declared once
    (see _opt): the CLI, the checks, resolution, the key, labels, suites and the rerun command
    are all read from these declarations."""

    algo: str = _opt(
        "",
        "Algorithm name (see `bench algos`).",
        sweep_help="Comma-separated algorithm names.",
        key=KEY_ALWAYS,
    )
    dataset: str = _opt(
        "",
        "Dataset: a card id (`bench datasets list`), minari:<id>, or a D4RL HDF5 file.",
        sweep_help="Comma-separated datasets (card ids, minari:<id>, HDF5 files).",
    )
    seed: int = _opt(0, "Seed of the networks, the sampler and the evaluation envs.", check=_seed)
    steps: int | None = _opt(
        None,
        "Gradient updates (default: the card's).",
        check=_positive,
        **_BUDGET,
    )
    eval_every: int | None = _opt(
        None,
        "Evaluate every N updates, and after the last (default: the card's).",
        check=_positive,
        **_BUDGET,
    )
    eval_episodes: int | None = _opt(
        None,
        "Episodes per evaluation (default: the card's).",
        check=_episodes,
        **_BUDGET,
    )
    final_episodes: int | None = _opt(
        None,
        "Episodes of the final evaluation of the last policy, recorded apart from the learning "
        "curve (final.parquet) and scored by the leaderboard; 0: none (default: the card's).",
        check=_episodes_or_zero,
        **_BUDGET | {"key": KEY_IF_SET},  # older runs without a final evaluation keep their key
    )
    batch_size: int | None = _opt(
        None,
        "Transitions per update (default: the card's).",
        check=_positive,
        **_BUDGET,
    )
    holdout: float = _opt(
        0.0,
        "Fraction of the dataset's episodes held out of training (the same episodes for every "
        "seed and algorithm), on which `bench select` scores td and likelihood; 0: none.",
        check=_holdout,
        key=KEY_IF_SET,
        label=True,
        spell=SPELL_IF_SET,
        suite=SUITE_OPTIONAL,
    )
    precision: str = _opt(
        "fp32",
        "Update precision: fp32, or bf16 (autocast mixed precision: fp32 weights, optimizer "
        "state and target networks; refused where the CPU or GPU has no native bf16). Part of "
        "the run key.",
        check=_precision,
        key=KEY_IF_SET,
        label=True,
        spell=SPELL_IF_SET,
        suite=SUITE_OPTIONAL,
    )
    preset: str | None = _opt(
        None,
        "Named config preset; default: the card's, where the algorithm has it; "
        "'none': the reference defaults.",
        label=True,
        spell=SPELL_ALWAYS,
        suite=SUITE_OPTIONAL,
    )
    overrides: dict[str, str] = _opt(
        {}, "Override a config field: --set key=value (repeatable).", flag="--set"
    )
    env: str | None = _opt(None, "Env id, when the dataset is a D4RL HDF5 file.")
    device: str = _opt("auto", "torch device: auto (CUDA when present, else CPU), cpu, cuda[:N].")
    threads: int | None = _opt(None, "torch threads (default: torch's).", check=_threads)
    compile: bool = _opt(
        False,
        "torch.compile the update (CUDA graphs on a GPU); the first update's time, compilation "
        "included, is logged as compile_first_call_s.",
    )
    keep_policies: int | None = _opt(
        None,
        "Keep the acting weights of the last N evaluations (policies/step_*.pt) for "
        "`bench select`; 0: none (default: the card's, else all).",
        check=_count_or_zero,
        card=True,
    )
    log_every: int = _opt(
        LOG_EVERY,
        "Average the training stats (train.parquet) over windows of N updates; a window also "
        "closes at every evaluation. Not part of the run key.",
        check=_positive,
        spell=SPELL_IF_SET,
    )

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value, check = getattr(self, f.name), f.metadata["check"]
            if check is not None and value is not None:
                check(f.name, value)


def option_names(**meta: Any) -> tuple[str, ...]:
    """The RunOptions fields whose declarations carry these values (e.g. key=KEY_ALWAYS), in
    declaration order."""
    return tuple(
        f.name
        for f in dataclasses.fields(RunOptions)
        if all(f.metadata[k] == v for k, v in meta.items())
    )


def cli_fields(*, sweep: bool = False) -> list[dataclasses.Field]:
    """The RunOptions fields that are options of every run (not algo, dataset, seed: `bench run`
    takes one of each, `bench sweep` lists). The device and threads of a sweep are its own."""
    skip = {"algo", "dataset", "seed"} | ({"threads"} if sweep else set())
    return [f for f in dataclasses.fields(RunOptions) if f.name not in skip]


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _canonical(obj: Any) -> Any:
    """The JSON form (tuples -> lists, keys sorted): what config.json holds and the key hashes."""
    return json.loads(json.dumps(obj, sort_keys=True))


@dataclass(frozen=True)
class RunConfig:
    """A resolved run: everything that decides its numbers, and how it ran."""

    algo: str
    dataset: str  # as given: a card id, minari:<id>, or an HDF5 path
    env: str | None  # the env of an HDF5 dataset (as given)
    minari_id: str
    dataset_hash: str  # Minari metadata hash: a --size 3000 build is another dataset
    seed: int
    steps: int
    eval_every: int
    eval_episodes: int
    batch_size: int
    preset: str | None  # the preset applied (None: the reference defaults)
    overrides: dict[str, str]  # --set key=value as typed
    algo_config: dict[str, Any]  # the algorithm's whole config after defaults, preset, --set
    eval_env: dict[str, Any] | None  # the evaluation env (EnvSpec); None in schema-1 runs
    eval_seed_base: int = EVAL_SEED_BASE
    device: str = "cpu"  # how it ran, not what it is: not in the key
    compile: bool = False  # how it ran: not in the key
    random_streams: int = RANDOM_STREAMS
    schema_version: int = SCHEMA_VERSION
    final_episodes: int = 0  # the final evaluation's episodes (0: none, as in older runs)
    keep_policies: int | None = None  # evaluated policies kept (None: all): not in the key
    holdout: float = 0.0  # fraction of episodes held out of training (0: none, as in older runs)
    #: the code's versions: {"algo": the algorithm's, "eval": the evaluation protocol's}; None
    #: in runs written before versions were recorded (schema < 4)
    versions: dict[str, int] | None = None
    #: the update's precision (bench.run.precision): fp32, or bf16 mixed precision
    precision: str = "fp32"
    #: train.parquet's window (runs written before --log-every: 100): not in the key
    log_every: int = LOG_EVERY

    #: the fields the key hashes: all that decides a run's numbers, except the seed: the options
    #: declared key=KEY_ALWAYS, and what resolution adds (the dataset, the algorithm's config,
    #: the evaluation env and seeds, how random draws are made)
    IDENTITY = option_names(key=KEY_ALWAYS) + (
        "minari_id",
        "dataset_hash",
        "algo_config",
        "eval_env",
        "eval_seed_base",
        "random_streams",
    )
    #: hashed only when not their default, so that a run without a final evaluation keeps the
    #: key it had before final evaluations existed (one written before versions, its own key;
    #: an fp32 run, the key it had before precisions)
    IDENTITY_IF_SET = option_names(key=KEY_IF_SET) + ("versions",)

    def key(self) -> str:
        ident = {k: getattr(self, k) for k in self.IDENTITY}
        ident |= {k: getattr(self, k) for k in self.IDENTITY_IF_SET if not self._default(k)}
        ident = _canonical(ident)
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]

    def _default(self, name: str) -> bool:
        """The field holds its declared default (what runs written before it had)."""
        return getattr(self, name) == self.__dataclass_fields__[name].default

    def fingerprint(self) -> str:
        """The key and the seed: what tells this run from every other one."""
        return hashlib.sha256(f"{self.key()}:{self.seed}".encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        extra = {"key": self.key(), "fingerprint": self.fingerprint()}
        return _canonical(dataclasses.asdict(self) | extra)

    @classmethod
    def from_json(cls, cfg: Any, where: str = "config.json") -> RunConfig:
        """Back from config.json; a file that is not one (wrong types, missing fields, a key that
        does not match its fields because it was edited) is one error line."""
        if not isinstance(cfg, dict):
            raise BenchError(f"{where}: not a bench run config (a JSON object expected)")
        schema = cfg.get("schema_version")
        if isinstance(schema, int) and schema > SCHEMA_VERSION:  # its fields may be new to us
            raise BenchError(f"{where}: written by a newer bench (schema {schema}); upgrade bench")
        try:
            if cfg.get("schema_version") is None:  # schema 1: before run keys
                values = _from_schema_1(cfg)
            else:
                values = {f.name: cfg[f.name] for f in dataclasses.fields(cls) if f.name in cfg}
                if cfg["schema_version"] == 2:  # one torch generator per run then
                    values["random_streams"] = 1
            config = cls(**values)
            config._check_types()
        except (KeyError, TypeError, ValueError) as e:
            raise BenchError(f"{where}: not a bench run config ({type(e).__name__}: {e})") from None
        stored = cfg.get("key")
        mark = cfg.get("fingerprint")
        if (stored is not None and stored != config.key()) or (
            mark is not None and mark != config.fingerprint()
        ):
            raise BenchError(
                f"{where}: its fields do not match its key {stored} (the file was edited); "
                "restore it or start a new run"
            )
        return config

    def _check_types(self) -> None:
        for f in dataclasses.fields(RunOptions):  # the options' own checks, as the CLI's
            check = f.metadata["check"]
            if check is not None and f.name in CONFIG_FIELDS:
                value = getattr(self, f.name)
                if value is not None or not f.metadata["card"]:
                    try:
                        check(f.name, value)
                    except BenchError as e:
                        raise ValueError(str(e)) from None
        for name in ("eval_seed_base", "random_streams", "schema_version"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, got {value!r}")
        for name in ("steps", "eval_every", "eval_episodes", "final_episodes", "batch_size"):
            if getattr(self, name) is None:  # resolved from the card: never None here
                raise TypeError(f"{name} must be an integer, got None")
        for name in ("algo", "dataset", "minari_id", "dataset_hash", "device"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string")
        if not isinstance(self.algo_config, dict) or not isinstance(self.overrides, dict):
            raise TypeError("algo_config and overrides must be objects")
        if not isinstance(self.compile, bool):
            raise TypeError("compile must be true or false")
        v = self.versions
        if v is not None and not (
            isinstance(v, dict)
            and v
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in v.values())
        ):
            raise ValueError(f"versions must be null or {{part: integer >= 1}}, got {v!r}")

    def options(self, seed: int | None = None) -> RunOptions:
        """The options that resolve to this configuration again (the preset spelled out)."""
        values = {name: getattr(self, name) for name in option_names() if name in CONFIG_FIELDS}
        values |= {"preset": self.preset or "none", "overrides": dict(self.overrides)}
        return RunOptions(**values | ({} if seed is None else {"seed": seed}))

    def command(self, seeds: str | None = None) -> str:
        """`bench run ... --seed S` that reproduces this run exactly, or with seeds ("0-4",
        "0,2") the `bench sweep ... --seeds SEEDS` of a group of seeds. Every option is spelled
        out (`--preset none` included), so a changed card default cannot change the rerun."""
        sweep = seeds is not None
        parts = [
            "bench",
            "sweep" if sweep else "run",
            "--algo",
            self.algo,
            "--dataset",
            self.dataset,
        ]
        if self.env:
            parts += ["--env", self.env]
        parts += ["--seeds", seeds] if seeds is not None else ["--seed", str(self.seed)]
        for f in dataclasses.fields(RunOptions):
            spell = f.metadata["spell"]
            if spell == SPELL_ALWAYS or (spell == SPELL_IF_SET and not self._default(f.name)):
                parts += [flag_of(f), _spelled(getattr(self, f.name))]
        for k, v in sorted(self.overrides.items()):
            parts += ["--set", f"{k}={v}"]
        return shlex.join(parts)

    def version(self, part: str) -> int | None:
        """The version of one part of the code (VERSION_PARTS); None: not recorded."""
        return None if self.versions is None else self.versions.get(part)

    def identity_diff(self, other: RunConfig) -> list[tuple[str, Any, Any]]:
        """Every identity field (what the key hashes) in which other differs from this one, as
        (name, this value, other's value): the dataset's content, the code's versions, budgets
        and evaluation, then the algorithm's config field by field."""
        out = []
        for name in ("algo", "minari_id", "dataset_hash"):
            if getattr(self, name) != getattr(other, name):
                out.append((name, getattr(self, name), getattr(other, name)))
        for part in VERSION_PARTS:
            if self.version(part) != other.version(part):
                out.append((f"{part}_version", self.version(part), other.version(part)))
        keyed = [
            n for n in option_names() if n != "algo" and n in self.IDENTITY + self.IDENTITY_IF_SET
        ]
        for name in (*keyed, "eval_env", "eval_seed_base", "random_streams"):
            mine, theirs = _canonical(getattr(self, name)), _canonical(getattr(other, name))
            if mine != theirs:
                out.append((name, mine, theirs))
        a, b = _canonical(self.algo_config), _canonical(other.algo_config)
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                out.append((k, a.get(k), b.get(k)))
        return out

    def differences(self, others: list[RunConfig]) -> dict[str, Any]:
        """What sets this configuration apart from others of the same algorithm and dataset
        (for labels such as `bc (steps=1000)`): budgets, preset, then algorithm config fields."""
        out: dict[str, Any] = {}
        for name in option_names(label=True):
            if any(getattr(o, name) != getattr(self, name) for o in others):
                out[name] = (
                    getattr(self, name) or "none" if name == "preset" else getattr(self, name)
                )
        for k, v in sorted(self.algo_config.items()):
            if any(o.algo_config.get(k) != v for o in others):
                out[k] = v
        if any(o.dataset_hash != self.dataset_hash for o in others):
            out["data"] = self.dataset_hash[:6]
        for part in VERSION_PARTS:
            if any(o.version(part) != self.version(part) for o in others):
                out[f"{part}_version"] = self.version(part) or "none"
        if not out and any(o.key() != self.key() for o in others):
            out["key"] = self.key()
        return out


#: The RunConfig fields (config.json): an option whose name is among them is stored there.
CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(RunConfig))


def _spelled(value: Any) -> str:
    """An option's value as the command line takes it (a float exactly, no value as none)."""
    if value is None:
        return "none"
    return repr(value) if isinstance(value, float) else str(value)


def _from_schema_1(cfg: dict) -> dict[str, Any]:
    return {
        "algo": cfg["algo"],
        "dataset": cfg["dataset"],
        "env": cfg.get("env"),
        "minari_id": cfg["minari_id"],
        "dataset_hash": cfg["dataset_metadata_hash"],
        "seed": cfg["seed"],
        "steps": cfg["steps"],
        "eval_every": cfg["eval_every"],
        "eval_episodes": cfg["eval_episodes"],
        "batch_size": cfg["batch_size"],
        "preset": cfg.get("preset"),
        "overrides": cfg.get("overrides") or {},
        "algo_config": cfg["config"],
        "eval_env": None,
        "device": cfg.get("device", "cpu"),
        "random_streams": 1,
        "schema_version": 1,
    }


# ---------------------------------------------------------------------- resolution
def resolve_preset(cls: type[Algorithm], card: Card | None, preset: str | None) -> str | None:
    """The preset a run uses: the named one (`none`: the pure defaults), else the card's when
    the algorithm defines it (no card: none)."""
    if preset is None:  # the card's preset applies to the algorithms that define it
        return card.train.preset if card and card.train.preset in cls.presets else None
    return None if preset.lower() == "none" else preset


def resolve(opts: RunOptions, card: Card, dataset_hash: str) -> RunConfig:
    """RunOptions + the dataset's card and metadata hash -> the RunConfig. Raises one-line
    errors for unknown names, bad values and budgets, before anything is written."""
    cls = get_algorithm(opts.algo)
    preset = resolve_preset(cls, card, opts.preset)
    config = resolve_config(cls, preset, opts.overrides)
    values = {}
    for f in dataclasses.fields(RunOptions):  # the options RunConfig stores, the card's if None
        if f.name in CONFIG_FIELDS and f.name not in ("preset", "overrides"):
            value = getattr(opts, f.name)
            if value is None and f.metadata["card"]:
                value = getattr(card.train, f.name)
            check = f.metadata["check"]
            values[f.name] = value if value is None or check is None else check(f.name, value)
    return RunConfig(
        **values,
        minari_id=card.minari_id,
        dataset_hash=dataset_hash,
        preset=preset,
        overrides=dict(opts.overrides),
        algo_config=_canonical(dataclasses.asdict(config)),
        versions=code_versions(cls),
        eval_env=_canonical(dataclasses.asdict(card.env)),
    )


def code_versions(cls: type[Algorithm]) -> dict[str, int]:
    """The versions of the code that decides a run's numbers (VERSION_PARTS)."""
    import bench.evaluate as evaluate

    return {"algo": int(cls.version), "eval": int(evaluate.EVAL_VERSION)}


def check_algorithm(opts: RunOptions) -> None:
    """The cheap part of resolution (no dataset needed): the algorithm, preset and --set keys
    and values, so a sweep refuses a typo before it builds or runs anything."""
    cls = get_algorithm(opts.algo)
    preset = None if opts.preset is None or opts.preset.lower() == "none" else opts.preset
    resolve_config(cls, preset, opts.overrides)
