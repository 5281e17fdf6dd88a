"""The algorithm protocol, the registry, and config resolution (defaults -> preset -> --set).

Every algorithm is one file with a config dataclass (reference defaults), optional named
presets (small deltas for small tasks), and a class implementing:
    update(batch) -> dict[str, Tensor [S]]      one gradient step of every seed on its batch
    act(obs, mask=None, deterministic=False)    actions for observations [S, N, *obs_shape]
    q_value(obs, act)                           its own Q estimate, where it has one (selection)
    state_dict() / load_state_dict()            networks, optimizers, counters, random streams

An algorithm object trains S seeds at once (S = len(seeds), often 1). Its networks hold a
leading seed dimension (bench.nets), every batch is [S, B, ...], and its maths is written for
one seed with that dimension in front: losses reduce over the batch, never over seeds, and the
total loss is their sum over seeds, so each seed's gradient is its own. Stats stay on the
device as [S] tensors; the loop reads them at log windows.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
import math
import re
import textwrap
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Generic, TypeVar

import numpy as np
import torch

from bench.errors import BenchError, UnknownNameError
from bench.nets import ActionScale
from bench.seeding import SeedStreams
from bench.types import Batch, EnvInfo

#: an algorithm's config dataclass
C = TypeVar("C")


class Algorithm(ABC, Generic[C]):
    name: ClassVar[str]
    #: the config dataclass (C): the reference's parameter names and defaults
    Config: ClassVar[type]
    #: named deltas on Config for tasks smaller than the reference's (e.g. "small")
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: which action spaces the algorithm handles: "discrete", "continuous" or both
    action_kinds: ClassVar[tuple[str, ...]] = ("discrete", "continuous")
    #: other names accepted by --set for a config field (e.g. gamma for discount_factor), so
    #: one spelling works for every algorithm while the reference's own name stays
    aliases: ClassVar[dict[str, str]] = {}
    #: the paper, and where the defaults come from (shown by `bench algos`)
    source: ClassVar[str] = ""
    #: the implementation's version, part of every run's key: bump it in the algorithm's file
    #: when a change alters its numbers (maths, defaults, initialization, random draws), and
    #: re-record tests/algos/fingerprints.json (`python -m tests.algos.test_fingerprint --record`)
    version: ClassVar[int] = 1

    def __init__(
        self,
        config: C,
        info: EnvInfo,
        device: str | torch.device = "cpu",
        seeds: Sequence[int] = (0,),
    ):
        kind = "discrete" if info.discrete else "continuous"
        if kind not in self.action_kinds:
            raise BenchError(f"algorithm '{self.name}' does not handle {kind} actions")
        if not len(seeds):
            raise ValueError("an algorithm trains at least one seed")
        self.config: C = config
        self.info = info
        self.device = torch.device(device)
        self.seeds = [int(s) for s in seeds]
        #: S, the seeds trained together: the leading dimension of every network and batch
        self.num_seeds = len(self.seeds)
        #: random draws inside updates, one stream per seed (saved in checkpoints)
        self.rng = SeedStreams(self.seeds, self.device, "update")
        #: acting noise, one stream per seed; the evaluation restarts it per evaluation
        self.act_rng = SeedStreams(self.seeds, self.device, "act")
        self.num_updates = 0
        if not info.discrete:  # networks work in [-1, 1]; env actions live in [low, high]
            self.action_scale = ActionScale(info.box.low, info.box.high, self.device)

    @abstractmethod
    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient step per seed on batch [S, B, ...] -> stats, each an [S] tensor."""

    @abstractmethod
    def act(
        self, obs: torch.Tensor, mask: torch.Tensor | None = None, deterministic: bool = False
    ) -> torch.Tensor:
        """The evaluation policy: obs [S, N, *obs_shape] -> actions [S, N] or [S, N, act_dim];
        deterministic=True removes any randomness."""

    def fit_dataset(self, data) -> None:
        """Statistics of the training data the algorithm keeps (observation mean and std, a
        reward scale), before the first update; they are saved with the checkpoint
        (tensors()). Default: none."""
        return None

    def explore(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions for online data collection (exploration). Only online-capable algorithms."""
        raise BenchError(f"algorithm '{self.name}' has no online mode")

    def nstep(self) -> tuple[float, int, bool]:
        """(discount, estimation_step, reward normalization) for the data's n-step targets,
        from the config's gamma / estimation_step / reward_normalization fields."""
        c: Any = self.config  # a config without a gamma field overrides this (Discrete BCQ)
        return (
            float(c.gamma),
            int(getattr(c, "estimation_step", 1)),
            bool(getattr(c, "reward_normalization", False)),
        )

    # ------------------------------------------------------------------ checkpoints
    def modules(self) -> dict[str, torch.nn.Module]:
        """Every network (target networks included), by name."""
        return {}

    def policy_modules(self) -> dict[str, torch.nn.Module]:
        """The networks act() needs: what a shipped behavior-policy file holds."""
        return self.modules()

    def q_modules(self) -> dict[str, torch.nn.Module]:
        """The networks q_value() needs beyond policy_modules(): kept with every evaluated
        policy, for offline policy selection. Default: none (no Q function)."""
        return {}

    def q_value(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor | None:
        """The algorithm's own estimate Q(s, a), in return units: obs [S, N, *obs_shape], act
        [S, N] or [S, N, act_dim] (env units) -> [S, N]. None: the algorithm has no Q function."""
        return None

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def tensors(self) -> dict[str, torch.Tensor]:
        """Trained tensors outside any module (e.g. log alpha), saved and restored in place."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
            "tensors": {k: t.detach().clone() for k, t in self.tensors().items()},
            "num_updates": self.num_updates,
            "rng": self.rng.state_dict(),
            "act_rng": self.act_rng.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.modules().items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimizers().items():
            # Optimizer.load_state_dict keeps references to tensors it needs not cast: copy them,
            # so a restored algorithm never shares optimizer moments with the original
            o.load_state_dict(copy.deepcopy(state["optimizers"][k]))
        with torch.no_grad():
            for k, t in self.tensors().items():
                t.copy_(state["tensors"][k])
        self.num_updates = int(state["num_updates"])
        self.rng.load_state_dict(state["rng"])
        self.act_rng.load_state_dict(state["act_rng"])


def action_values(q: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """Q(s, a) from all actions' values: q [S, N, A], act [S, N] -> [S, N]."""
    return q.gather(-1, act.long().unsqueeze(-1)).squeeze(-1)


class ObsNormalizer:
    """Observation normalization by the dataset's statistics, (s - mean) / (std + eps), the
    same when training and acting. Held per seed ([S, 1, obs_dim], equal rows) so that a job's
    state splits into seeds like every other tensor; identity when disabled or not fitted."""

    def __init__(self, num_seeds: int, obs_dim: int, device: torch.device, enabled: bool):
        self.enabled = enabled
        self.mean = torch.zeros(num_seeds, 1, obs_dim, device=device)
        self.std = torch.ones(num_seeds, 1, obs_dim, device=device)

    def fit(self, data, eps: float = 1e-3) -> None:
        """Mean and std over the dataset's observations s_t (one row per transition)."""
        if not self.enabled:
            return
        obs = data.observations(data.obs_index).to(self.mean.device, torch.float64)
        self.mean.copy_(obs.mean(0).float().expand_as(self.mean))
        self.std.copy_((obs.std(0, unbiased=False) + eps).float().expand_as(self.std))

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        """obs [S, *batch, obs_dim] -> normalized, same shape."""
        if not self.enabled:
            return obs
        extra = obs.dim() - 3  # broadcast over any batch dimensions beyond one
        shape = (self.mean.shape[0], *(1,) * (extra + 1), self.mean.shape[-1])
        return (obs - self.mean.view(shape)) / self.std.view(shape)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"obs_mean": self.mean, "obs_std": self.std}


REGISTRY: dict[str, type[Algorithm]] = {}


def register(cls: type[Algorithm]) -> type[Algorithm]:
    REGISTRY[cls.name] = cls
    return cls


def get_algorithm(name: str) -> type[Algorithm]:
    if name not in REGISTRY:
        from bench.algos.plugins import FAILED

        if name in FAILED:
            raise BenchError(f"algorithm plugin '{name}' could not be loaded: {FAILED[name]}")
        raise UnknownNameError("algorithm", name, list(REGISTRY))
    return REGISTRY[name]


# ---------------------------------------------------------------------- config resolution
def _parse_value(text: str, typ: Any, where: str) -> Any:
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _parse_value(text, inner[0], where)
    if origin is typing.Literal:
        if text not in [str(a) for a in args]:
            raise BenchError(
                f"bad value '{text}' for {where}: expected one of {', '.join(map(str, args))}"
            )
        return text
    if origin is tuple:
        parts = [p for p in text.replace("(", "").replace(")", "").replace(" ", "").split(",") if p]
        return tuple(_parse_value(p, args[0], where) for p in parts)
    if typ is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise BenchError(f"bad value '{text}' for {where}: expected true or false")
    try:
        value = typ(text)
    except (TypeError, ValueError):
        raise BenchError(f"bad value '{text}' for {where}: expected {typ.__name__}") from None
    if isinstance(value, float) and not np.isfinite(value):
        raise BenchError(f"bad value '{text}' for {where}: expected a finite number")
    return value


def config_fields(config_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def field_docs(config_cls: type) -> dict[str, str]:
    """The docstring under each dataclass field, read from the source, on one line."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(config_cls)))
    cls_def = tree.body[0]
    assert isinstance(cls_def, ast.ClassDef)
    body = cls_def.body
    docs = {}
    for a, b in zip(body, body[1:], strict=False):
        if (
            isinstance(a, ast.AnnAssign)
            and isinstance(a.target, ast.Name)
            and isinstance(b, ast.Expr)
            and isinstance(b.value, ast.Constant)
        ):
            docs[a.target.id] = " ".join(str(b.value.value).split())
    return docs


def resolve_config(
    cls: type[Algorithm], preset: str | None = None, overrides: dict[str, str] | None = None
):
    """Config defaults, then the named preset's deltas, then key=value overrides (strings)."""
    fields = config_fields(cls.Config)
    values: dict[str, Any] = {}
    if preset:
        if preset not in cls.presets:
            raise UnknownNameError(
                f"preset for {cls.name}", preset, list(cls.presets) or ["(none)"]
            )
        values.update(cls.presets[preset])
    for key, text in (overrides or {}).items():
        key = cls.aliases.get(key, key)
        if key not in fields:
            raise UnknownNameError(f"config key for {cls.name}", key, list(fields))
        values[key] = _parse_value(text, fields[key], f"{cls.name}.{key}")
    try:
        config = cls.Config(**values)
    except (TypeError, ValueError) as e:
        raise BenchError(f"bad config for {cls.name}: {e}") from None
    _check_ranges(cls, config)
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config


#: Network widths and counts above this are refused as typos (a 10^5-wide layer is 40 GB).
MAX_WIDTH = 4096

_NUMBER = r"-?(?:\d+(?:\.\d*)?(?:e-?\d+)?|inf)"


@dataclasses.dataclass(frozen=True)
class In:
    """The values a numeric config field allows, written as its error message reads:
    "> 0", ">= 1", "[0, 1]", "(0, 1]", "1..4096" (integers). Declared on the field's type,
    `lr: Annotated[float, In("> 0")]`, or through the aliases below."""

    text: str

    def bounds(self) -> tuple[float, float, bool, bool]:
        """(low, high, low included, high included)."""
        t = self.text.replace(" ", "")
        if m := re.fullmatch(rf"(>=|>)({_NUMBER})", t):
            return float(m[2]), math.inf, m[1] == ">=", False
        if m := re.fullmatch(rf"({_NUMBER})\.\.({_NUMBER})", t):
            return float(m[1]), float(m[2]), True, True
        if m := re.fullmatch(rf"([\[(])({_NUMBER}),({_NUMBER})([\])])", t):
            return float(m[2]), float(m[3]), m[1] == "[", m[4] == "]"
        raise ValueError(f"bad range '{self.text}'")

    def __contains__(self, value: float) -> bool:
        lo, hi, lo_in, hi_in = self.bounds()
        return (lo < value or (lo_in and value == lo)) and (value < hi or (hi_in and value == hi))

    def describe(self) -> str:
        return self.text if self.text[0] in "<>" else f"in {self.text}"


#: The shared ranges, named for what they hold; an algorithm's config declares every numeric
#: field with one of these (or its own In), and resolve_config checks them all.
Positive = Annotated[float, In("> 0")]  # learning rates, Adam's eps, temperatures
NonNegative = Annotated[float, In(">= 0")]  # penalty weights, noise scales
Fraction = Annotated[float, In("[0, 1]")]  # discounts, soft-update rates, probabilities
Real = Annotated[float, In("[-inf, inf]")]  # any finite number (e.g. a threshold)
Count = Annotated[int, In(">= 1")]  # steps, intervals, delays
Size = Annotated[int, In(f"1..{MAX_WIDTH}")]  # a count that sizes a tensor
Widths = Annotated[tuple[int, ...], In(f"1..{MAX_WIDTH}")]  # each hidden layer's width


def field_ranges(config_cls: type) -> dict[str, In | None]:
    """Each config field's declared range (None: not a number, e.g. a flag or a choice)."""
    hints = typing.get_type_hints(config_cls, include_extras=True)
    return {f.name: _declared(hints[f.name]) for f in dataclasses.fields(config_cls)}


def _declared(hint: Any) -> In | None:
    if typing.get_origin(hint) is Annotated:
        return next((m for m in hint.__metadata__ if isinstance(m, In)), None)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # e.g. Real | None
        return next((r for a in typing.get_args(hint) if (r := _declared(a))), None)
    return None


def _check_ranges(cls: type[Algorithm], config) -> None:
    """Every numeric field inside its declared range: one line naming the field and the range.
    An algorithm's own validate() checks what one field alone cannot (e.g. min <= max)."""
    for name, rng in field_ranges(type(config)).items():
        value, where = getattr(config, name), f"{cls.name}.{name}"
        if rng is None or value is None:
            continue
        if isinstance(value, tuple | list):
            if any(v not in rng for v in value):
                raise BenchError(f"{where}: layer widths must be {rng.describe()}, got {value}")
        elif value not in rng:
            raise BenchError(f"{where} must be {rng.describe()}, got {value}")


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """['key=value', ...] -> {key: value}; a pair without '=' is one clear error."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise BenchError(f"bad --set '{pair}': expected key=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out
