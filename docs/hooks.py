"""MkDocs hooks: the pages that are generated rather than written.

- `algorithms/<name>.md` for every algorithm bench registers: its module docstring (the paper,
  the equations), its config dataclass (each field's default, range, presets and the one-line
  docstring under it) and how to run it. Nothing is repeated by hand, so a page cannot drift
  from the code.
- `index.md` from the repository's README.md (its links into `docs/` made site-relative), and
  `contributing.md` from CONTRIBUTING.md: each is written once, at the top of the repository.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from pathlib import Path

os.environ.setdefault("BENCH_PLUGINS", "0")  # bench's own algorithms only

ROOT = Path(__file__).resolve().parent.parent


def _algorithms():
    from bench.algos import REGISTRY

    return sorted(REGISTRY.items())


def on_config(config):
    """The Algorithms section of the nav: the overview, then one page per algorithm."""
    pages = [{"Overview": "algorithms/index.md"}]
    pages += [f"algorithms/{name}.md" for name, _ in _algorithms()]
    for i, entry in enumerate(config["nav"]):
        if isinstance(entry, dict) and "Algorithms" in entry:
            config["nav"][i] = {"Algorithms": pages}
    return config


def on_files(files, config):
    from mkdocs.structure.files import File

    for name, cls in _algorithms():
        files.append(File.generated(config, f"algorithms/{name}.md", content=algorithm_page(cls)))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    readme = re.sub(r"\]\(docs/", "](", readme).replace("](CONTRIBUTING.md)", "](contributing.md)")
    files.append(File.generated(config, "index.md", content=readme))
    contributing = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "contributing.md", content=contributing))
    return files


def _text(text: str) -> str:
    """Plain text in a markdown table cell: no column breaks, no HTML."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _cell(value) -> str:
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return f"`{text}`" if text else ""


def algorithm_page(cls) -> str:
    from bench.algos.base import config_fields, field_docs, field_ranges

    module = inspect.getmodule(cls)
    doc = inspect.cleandoc(module.__doc__ or "")
    title, _, rest = doc.partition("\n")
    defaults = cls.Config()
    ranges = field_ranges(cls.Config)
    docs = field_docs(cls.Config)
    presets = list(cls.presets)
    head = ["key", "default", *(f"preset `{p}`" for p in presets), "range", "meaning"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in config_fields(cls.Config):
        rng = ranges[key]
        cells = [
            f"`{key}`",
            _cell(getattr(defaults, key)),
            *(_cell(cls.presets[p].get(key, "")) for p in presets),
            _text(rng.describe()) if rng else "",
            _text(docs.get(key, "")),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    source = inspect.getsourcefile(cls)
    where = Path(source).relative_to(ROOT) if source and ROOT in Path(source).parents else source
    aliases = ", ".join(f"`{a}` for `{k}`" for a, k in sorted(cls.aliases.items()))
    example_key = next(iter(config_fields(cls.Config)))
    lines = [
        f"# `{cls.name}`",
        "",
        f"**{title.rstrip('.')}**",
        "",
        f"- Actions: {', '.join(cls.action_kinds)}",
        f"- Reference: {cls.source}" if cls.source else "",
        f"- Source: `{where}` (version {cls.version}, part of every run's key)",
        f"- Other names `--set` accepts: {aliases}" if aliases else "",
        "",
        "## The method",
        "",
        # the docstring's equations keep their layout
        "```text",
        rest.strip("\n"),
        "```",
        "",
        f"## Config: `{cls.Config.__name__}`",
        "",
        "Defaults are the reference's; a card may select a preset (`--preset none` for the pure "
        "defaults); `--set key=value` overrides any field and is checked against its range.",
        "",
        *rows,
        "",
        "## Run it",
        "",
        "```bash",
        f"bench run --algo {cls.name} --dataset <card> --seeds 0-4",
        f"bench run --algo {cls.name} --dataset <card> --set {example_key}="
        f"{_plain(getattr(defaults, example_key))}",
        "```",
        "",
    ]
    assert dataclasses.is_dataclass(cls.Config)
    return "\n".join(line for line in lines if line is not None) + "\n"


def _plain(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


RUN_OPTIONS_MARKER = "<!-- run options: generated -->"


def on_page_markdown(markdown, page, config, files):
    """The run options' table, generated from their one declaration (RunOptions)."""
    if RUN_OPTIONS_MARKER in markdown:
        markdown = markdown.replace(RUN_OPTIONS_MARKER, run_options_table())
    return markdown


def run_options_table() -> str:
    from bench.run.config import KEY_ALWAYS, KEY_IF_SET, RunOptions, flag_of

    role = {KEY_ALWAYS: "yes", KEY_IF_SET: "when not its default", None: ""}
    rows = ["| option | default | in the run key | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(RunOptions):
        m = f.metadata
        flag = flag_of(f) + (" key=value" if f.name == "overrides" else "")
        if f.name in ("algo", "dataset"):
            default = "required"
        elif m["card"]:
            default = "the card's"
        elif f.default is None or f.default == "" or f.name == "overrides":
            default = ""
        else:
            default = f"`{f.default}`"
        text = _text(m["help"])
        rows.append(f"| `{flag}` | {default} | {role[m['key']]} | {text} |")
    return "\n".join(rows)
