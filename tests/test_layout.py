"""The package's layout follows the data flow: a module imports only from lower floors.

    cards -> datasets -> OfflineData -> algorithm -> run loop -> results -> analysis -> cli

One package per floor (ORDER), so an import cycle between two packages fails too.

Every `import bench...` in the package (at module level or inside a function) is checked
against this table; an import that runs back up the flow fails the test.
"""

import ast
from pathlib import Path

import pytest

import bench

#: One package (or top-level module) per floor, in the order of the data flow: a module may
#: import only from its own package and from lower floors, so no two packages import each other.
ORDER = (
    "bench.errors bench.types bench.seeding bench.progress "  # the vocabulary
    "bench.stats "  # metrics and the bootstrap on plain arrays
    "bench.results "  # the tables' schema, atomic writes, the store
    "bench.envs bench.nets "
    "bench.data "  # cards, Minari, OfflineData, validation
    "bench.evaluate bench.algos bench.collect "
    "bench.run "  # the run identity, the loop, checkpoints
    "bench.testing bench.perf bench.ope bench.analysis "
    "bench.sweep bench.cluster bench.suite "
    "bench.cli"
).split()
FLOORS = {floor: [name] for floor, name in enumerate(ORDER)}
PACKAGE = Path(bench.__file__).parent


def floor_of(module: str) -> int:
    for floor, prefixes in FLOORS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return floor
    raise KeyError(module)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bench"):
            out.add(node.module)
            # `from bench.cli import run` names submodules
            out |= {f"{node.module}.{a.name}" for a in node.names if node.module == "bench.cli"}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("bench")}
    return out


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if module_name(p) != "bench")


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_go_down_the_flow(path):
    me = module_name(path)
    mine = floor_of(me)
    upward = [m for m in sorted(imports_of(path)) if floor_of(m) > mine]
    assert not upward, f"{me} (floor {mine}) imports from higher floors: {upward}"


def test_floor_zero_imports_nothing_of_bench_but_itself():
    for name in FLOORS[0]:
        path = PACKAGE / (name.split(".", 1)[1] + ".py")
        others = {m for m in imports_of(path) if m != "bench.errors"}
        assert not others, f"{name} imports {others}"


def test_every_module_has_a_floor():
    for path in MODULES:
        floor_of(module_name(path))


def test_every_package_has_a_floor_of_its_own():
    packages = {module_name(p).split(".")[1] for p in MODULES}
    assert sorted(f"bench.{p}" for p in packages) == sorted(ORDER)
    assert all(len(names) == 1 for names in FLOORS.values())
