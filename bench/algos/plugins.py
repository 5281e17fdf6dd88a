"""Algorithms from other packages. A package registers one by an entry point in the group
`bench.algorithms`, named as the algorithm and pointing at its class (a subclass of
bench.algos.base.Algorithm whose `name` is the entry point's):

    [project.entry-points."bench.algorithms"]
    my_bc = "my_package.my_bc:MyBC"

The class follows bench.algos.base.Algorithm's contract; its Config is a dataclass with a
`gamma` field (optionally `estimation_step` and `reward_normalization`: the data's n-step
returns are computed from them). A plugin that cannot be loaded (an import error, a class that
is not an Algorithm, a name that is taken, a Config without gamma, defaults that do not
validate) is left out with its reason in FAILED; the other
algorithms are unaffected. bench.testing holds the checks its author runs.
"""

from __future__ import annotations

import dataclasses

from bench.algos.base import REGISTRY, Algorithm, resolve_config
from bench.errors import one_line

GROUP = "bench.algorithms"
#: Plugins that were not loaded: entry point name -> "module:Class: why".
FAILED: dict[str, str] = {}


def _check(name: str, obj: object) -> type[Algorithm]:
    if not (isinstance(obj, type) and issubclass(obj, Algorithm)):
        raise TypeError("not a subclass of bench.algos.base.Algorithm")
    if getattr(obj, "name", None) != name:
        raise ValueError(
            f"its class is named {getattr(obj, 'name', None)!r}, the entry point {name!r}"
        )
    taken = REGISTRY.get(name)
    if taken is not None and taken is not obj:
        raise ValueError(f"the name is taken by {taken.__module__}.{taken.__qualname__}")
    if not dataclasses.is_dataclass(getattr(obj, "Config", None)):
        raise TypeError("its Config is not a dataclass")
    if "gamma" not in {f.name for f in dataclasses.fields(obj.Config)}:
        raise TypeError("its Config has no gamma field (the discount of the data's returns)")
    resolve_config(obj)  # the defaults validate
    return obj


#: Set to 0 to load no plugin (bench's own algorithms only, e.g. for bench's test suite).
SWITCH = "BENCH_PLUGINS"


def load_plugins() -> None:
    """Register every installed plugin (once per process), unless BENCH_PLUGINS=0."""
    import os
    from importlib.metadata import entry_points

    if os.environ.get(SWITCH) == "0":
        return
    for ep in entry_points(group=GROUP):
        if ep.name in FAILED or (ep.name in REGISTRY and _from(ep, REGISTRY[ep.name])):
            continue
        before = dict(REGISTRY)
        try:
            cls = _check(ep.name, ep.load())
        except Exception as e:  # noqa: BLE001 - a broken plugin must not break bench
            REGISTRY.clear()
            REGISTRY.update(before)  # nothing it registered on import stays
            FAILED[ep.name] = f"{ep.value}: {type(e).__name__}: {one_line(e)}"[:400]
            continue
        REGISTRY[ep.name] = cls


def _from(ep, cls: type) -> bool:
    return ep.value.split(":", 1)[0] == cls.__module__
