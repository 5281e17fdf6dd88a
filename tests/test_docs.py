"""The documentation: generated algorithm pages cover every config field, and every link from
the README into docs/ points at a page (and anchor) that exists. `make docs` builds the site
with warnings as errors; these checks need no mkdocs."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest

from bench.algos import REGISTRY
from bench.algos.base import field_docs

ROOT = Path(__file__).resolve().parent.parent


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_algorithm_page_lists_every_field_with_its_default(name):
    cls = REGISTRY[name]
    page = _hooks().algorithm_page(cls)
    defaults = cls.Config()
    docs = field_docs(cls.Config)
    for f in dataclasses.fields(cls.Config):
        row = next((line for line in page.splitlines() if line.startswith(f"| `{f.name}` |")), None)
        assert row is not None, f"{name}: no row for {f.name}"
        assert f"`{getattr(defaults, f.name)}`" in row
        assert docs.get(f.name, "") and docs[f.name].split("|")[0].strip() in row.replace(
            "\\|", "|"
        )
    for preset, values in cls.presets.items():
        assert f"preset `{preset}`" in page
        for key, value in values.items():
            assert f"`{value}`" in next(
                r for r in page.splitlines() if r.startswith(f"| `{key}` |")
            )


def _slugs(text: str) -> set[str]:
    from markdown.extensions.toc import slugify  # the slugs mkdocs gives headings

    out, code = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            code = not code
        elif not code and (m := re.match(r"#+ (.*)", line)):
            out.add(slugify(m.group(1).replace("`", ""), "-"))
    return out


def test_readme_links_into_docs_resolve():
    pytest.importorskip("markdown")
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)(?:#([^)]+))?\)", readme)
    assert links, "the README links to no docs page"
    for path, anchor in links:
        target = ROOT / path
        assert target.is_file(), path
        if anchor:
            assert anchor in _slugs(target.read_text()), f"{path}#{anchor}"


def test_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_run_options_table_has_every_option_once():
    import dataclasses

    from bench.run.config import RunOptions, flag_of

    table = _hooks().run_options_table()
    for f in dataclasses.fields(RunOptions):
        assert table.count(f"| `{flag_of(f)}") == 1, f.name
    assert "<" not in table.replace("&lt;", "")
