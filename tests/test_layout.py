"""The package's layout follows the data flow: a module imports only from lower floors.

    cards -> datasets -> OfflineData -> algorithm -> run loop -> results -> analysis -> cli

Every `import bench...` in the package (at module level or inside a function) is checked
against this table; an import that runs back up the flow fails the test.
"""

import ast
from pathlib import Path

import pytest

import bench

FLOORS = {
    0: ["bench.types", "bench.errors", "bench.seeding", "bench.progress"],
    1: ["bench.envs", "bench.nets", "bench.results"],
    2: ["bench.data"],
    3: ["bench.evaluate", "bench.algos"],
    4: ["bench.collect"],
    5: ["bench.run"],
    6: [
        "bench.analysis",
        "bench.ope",
        "bench.sweep",
        "bench.cluster",
        "bench.suite",
        "bench.perf",
        "bench.testing",
    ],
    7: ["bench.cli"],
}
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
