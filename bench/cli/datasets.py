"""`bench datasets list|build|import|export|info`."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from bench.cli.app import datasets_app, stdout
from bench.errors import BenchError

#: Fields of one `bench datasets list` record (csv columns, json keys), in order.
LIST_FIELDS = ("id", "env", "minari_id", "size", "built", "remote", "description")


def _list_records() -> list[dict]:
    from bench.data.cards import card_ids, load_card
    from bench.data.minari_io import dataset_exists

    records = []
    for cid in card_ids():
        card = load_card(cid)
        records.append(
            {
                "id": cid,
                "env": card.env.id,
                "minari_id": card.minari_id,
                "size": card.size,
                "built": dataset_exists(card.minari_id),
                "remote": card.remote,
                "description": card.description,
            }
        )
    return records


def _console() -> Console:
    """stdout in a terminal; piped, a console wide enough that no cell is ever cut (rich
    would otherwise fit tables into 80 columns, truncating ids and collapsing columns)."""
    return stdout if stdout.is_terminal else Console(width=100_000)


@datasets_app.command("list")
def datasets_list(
    format: str = typer.Option(
        "table", "--format", help="table (for reading), csv or json (one record per card)."
    ),
):
    """List the dataset cards (shipped, then imported ones), whether each is built in the
    Minari root, and the Minari remote dataset that is its published counterpart
    (`--dataset minari:<id>` uses it)."""
    from bench.data.minari_io import minari_root

    if format not in ("table", "csv", "json"):
        raise BenchError(f"unknown format '{format}'; choose one of: table, csv, json")
    records = _list_records()
    if format == "json":
        sys.stdout.write(json.dumps(records, indent=1) + "\n")
        return
    if format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=LIST_FIELDS, lineterminator="\n")
        writer.writeheader()
        for r in records:
            writer.writerow({**r, "built": str(r["built"]).lower(), "remote": r["remote"] or ""})
        return
    console = _console()
    table = Table(title=f"datasets (Minari root: {minari_root()})", title_justify="left")
    rows = [
        [
            r["id"],
            r["env"],
            r["minari_id"],
            f"{r['size']:,}",
            "yes" if r["built"] else "no",
            r["remote"] or "",
            r["description"],
        ]
        for r in records
    ]
    headers = ("id", "env", "minari id", "size", "built", "remote")
    # in a terminal the description wraps and the other columns keep their width (an id
    # that still does not fit folds onto a second line, never cut); piped, nothing wraps
    for col in headers:
        table.add_column(col, overflow="fold", no_wrap=not console.is_terminal)
    table.add_column("description", no_wrap=not console.is_terminal)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@datasets_app.command("build")
def datasets_build(
    dataset: str = typer.Argument(..., help="Dataset card id."),
    size: int | None = typer.Option(None, help="Transitions to collect (default: the card's)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if it exists."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    allow_mismatch: bool = typer.Option(
        False,
        "--allow-mismatch",
        help="Keep a full-size build whose content differs from the card's reference build, as "
        "a dataset of its own (runs on it get keys of their own); without it such a build is "
        "refused and nothing is kept.",
    ),
    measure_refs: bool = typer.Option(
        False,
        "--measure-refs",
        help="Measure the normalization references now (uniform random and the card's expert, "
        "the card's episode count) and show them beside the card's constants; builds nothing.",
    ),
    record_reference: bool = typer.Option(
        False,
        "--record-reference",
        help="For card authors: after a full-size build, write its content hash, episode and "
        "step counts into the card's [reference] table and its per-episode digests into "
        "reference/<id>.npz beside the card.",
    ),
):
    """Collect DATASET with its behavior policy into a Minari dataset (lossless, seeded).

    The same card builds the same data on every machine (learned behaviors act in float64 with
    actions on a grid). A full-size build is compared with the card's reference build by
    content hash: "identical to the reference build", or one error naming the first episode
    that differs."""
    from bench.collect.build import build_dataset, card_refs, check_build
    from bench.collect.build import measure_refs as measure
    from bench.data.cards import load_card
    from bench.data.minari_io import check_root_writable
    from bench.progress import progress_bar

    card = load_card(dataset)
    if measure_refs:
        if size is not None or force or allow_mismatch or record_reference:
            raise BenchError("--measure-refs builds nothing: give it alone with the card id")
        ref_min, ref_max = measure(card)
        stdout.print(
            f"measured over {card.ref_episodes} episodes each: ref_min {ref_min!r}, "
            f"ref_max {ref_max!r}"
        )
        if card.measured_refs:
            stdout.print(
                "the card has no constants yet: write these into its [normalization] table",
                markup=False,
            )
        else:
            c_min, c_max = card_refs(card)
            same = (c_min, c_max) == (ref_min, ref_max)
            stdout.print(
                f"the card's constants:          ref_min {c_min!r}, ref_max {c_max!r}"
                f" ({'the same' if same else 'different'})"
            )
        return
    if record_reference and size is not None and size != card.size:
        raise BenchError(
            f"--record-reference records a full-size build ({card.size:,} steps); drop --size"
        )
    total = check_build(card, size, force)  # refusals are one line, before the progress bar
    check_root_writable()  # before any progress is shown
    with progress_bar(f"building {card.id}", total, not quiet) as (advance, _):
        ds = build_dataset(
            card,
            size=size,
            progress=advance,
            force=force,
            allow_mismatch=allow_mismatch or record_reference,
        )
    meta = ds.storage.metadata
    stdout.print(
        f"built {card.minari_id}: {ds.total_episodes} episodes, {ds.total_steps} steps, "
        f"ref_min {meta['ref_min_score']:.2f}, ref_max {meta['ref_max_score']:.2f}"
    )
    if record_reference:
        from bench.data.identity import content

        path = _record_reference(card, content(ds))
        stdout.print(f"recorded the reference build in {path}")
    else:
        stdout.print(f"content {meta['bench_content_hash'][:16]}: {meta['bench_reference']}")


def _record_reference(card, built) -> Path:
    """Write a build's content into its card ([reference]) and reference/<id>.npz."""
    import re

    from bench.data.cards import write_card
    from bench.data.identity import reference_file, save_reference

    if card.path is None:
        raise BenchError(f"dataset '{card.id}' has no card file to record into")
    text = card.path.read_text()
    table = (
        f"[reference]\n# the reference build (`bench datasets build {card.id} "
        f'--record-reference`)\ncontent_hash = "{built.hash}"\nepisodes = '
        f"{built.episodes}\nsteps = {built.steps}\n"
    )
    pattern = re.compile(r"^\[reference\]\n(?:(?!\[).*\n?)*", re.M)
    text = (
        pattern.sub(table + "\n", text, count=1)
        if pattern.search(text)
        else (text.rstrip("\n") + "\n\n" + table)
    )
    save_reference(reference_file(card.path.parent, card.id), built)
    write_card(card.path, text)
    return card.path


@datasets_app.command("import")
def datasets_import(
    file: Path = typer.Argument(..., help="D4RL-layout HDF5 file."),
    env: str = typer.Option(..., "--env", help="gymnasium id of the env it was collected on."),
    as_: str = typer.Option(
        ...,
        "--as",
        help="Id to store it under: namespace/name-vN (e.g. mine/hopper-v0), or a plain name "
        "(my-hopper, stored as imported/my-hopper-v0).",
    ),
    ref_min: float | None = typer.Option(
        None, help="Reference min return (default: D4RL's for its env); give both or neither."
    ),
    ref_max: float | None = typer.Option(
        None,
        help="Reference max return (default: D4RL's for its env); finite, above --ref-min.",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing dataset and card."),
):
    """Import a D4RL HDF5 file as a Minari dataset and write a card for it (in the user cards
    folder): train on it with --dataset ID, see it in `bench datasets list` and `info`."""
    from bench.data.catalog import import_file
    from bench.data.d4rl_io import check_refs

    if (ref_min is None) != (ref_max is None):
        raise BenchError("give both --ref-min and --ref-max, or neither (D4RL's for its env)")
    if ref_min is not None and ref_max is not None:
        check_refs(ref_min, ref_max)  # before the file is read: one line, nothing written
    command = f"bench datasets import {file.name} --env {env} --as {as_}"
    card, ds = import_file(file, env, as_, ref_min, ref_max, force, command=command)
    stdout.print(
        f"imported {file} as {card.id} (Minari id {card.minari_id}): {ds.total_episodes} "
        f"episodes, {ds.total_steps} steps; card {card.path}; train on it with "
        f"--dataset {card.id}",
        soft_wrap=True,
    )


@datasets_app.command("export")
def datasets_export(
    dataset: str = typer.Argument(..., help="Card id or minari:<id>."),
    file: Path = typer.Argument(..., help="Output HDF5 file."),
    format: str = typer.Option("d4rl", "--format", help="Output layout (d4rl)."),
):
    """Write a dataset to an HDF5 file in the D4RL layout (with next_observations)."""
    from bench.data.catalog import resolve_card
    from bench.data.d4rl_io import export_d4rl
    from bench.data.minari_io import open_dataset

    if format != "d4rl":
        raise BenchError(f"unknown format '{format}'; choose one of: d4rl")
    card = resolve_card(dataset)
    export_d4rl(open_dataset(card.minari_id), file)
    stdout.print(f"wrote {file}")


@datasets_app.command("info")
def datasets_info(dataset: str = typer.Argument(..., help="Dataset card id.")):
    """Episodes, transitions, returns, reference scores and sizes of a built dataset."""
    import torch

    from bench.data.cards import load_card
    from bench.data.data import OfflineData
    from bench.data.minari_io import dataset_dir, dataset_exists, open_dataset
    from bench.evaluate import normalized_score

    card = load_card(dataset)
    table = Table(title=f"{card.id}: {card.description}", show_header=False)
    table.add_column("field", no_wrap=True)
    table.add_column("value")
    table.add_row("env", f"{card.env.id} {card.env.kwargs or ''}")
    if card.env.atari is not None:
        table.add_row("preprocessing", f"AtariPreprocessing {card.env.atari}")
    if card.env.frame_stack > 1:
        table.add_row(
            "frame stack", f"{card.env.frame_stack} (stored once per frame, stacked at sample time)"
        )
    table.add_row("minari id", card.minari_id)
    table.add_row("card", str(card.path))
    external = card.behavior.policy == "external"
    if external:
        table.add_row("behavior", "external (imported data)")
    else:
        table.add_row("behavior", _behavior_text(card.behavior))
    t = card.train
    table.add_row(
        "run defaults",
        f"steps {t.steps:,}, eval every {t.eval_every:,}, {t.eval_episodes} eval episodes, "
        f"{t.final_episodes or 'no'} final episodes, batch {t.batch_size}, "
        f"preset {t.preset or 'none'}",
    )
    console = _console()
    if not dataset_exists(card.minari_id):
        how = (
            "import its file again with `bench datasets import`"
            if external
            else f"`bench datasets build {card.id}` builds {card.size:,} steps"
        )
        table.add_row("built", f"no ({how})")
        console.print(table)
        return
    from bench.collect.build import reference_status
    from bench.data.identity import CONTENT_HASH_KEY, content

    ds = open_dataset(card.minari_id)
    meta = ds.storage.metadata
    data = OfflineData.from_minari(ds, frame_stack=card.env.frame_stack)
    rets = data.episode_returns()
    disk = sum(f.stat().st_size for f in dataset_dir(card.minari_id).rglob("*") if f.is_file())
    tensors = [t for t in vars(data).values() if isinstance(t, torch.Tensor)]
    mem = sum(t.numel() * t.element_size() for t in tensors)
    table.add_row("episodes", f"{data.num_episodes:,}")
    table.add_row("transitions", f"{len(data):,}")
    table.add_row(
        "return min / mean / max", f"{rets.min():.1f} / {rets.mean():.1f} / {rets.max():.1f}"
    )
    if card.measured_refs:  # an older build's measured references, from its metadata
        ref_min, ref_max = float(meta["ref_min_score"]), float(meta["ref_max_score"])
    else:
        assert card.ref_min is not None and card.ref_max is not None
        ref_min, ref_max = card.ref_min, card.ref_max
    table.add_row(
        "reference scores", f"ref_min {ref_min:.2f}, ref_max {ref_max:.2f} ({card.ref_source})"
    )
    built = content(ds)  # recomputed from the data, not the metadata's record
    stored = meta.get(CONTENT_HASH_KEY)
    note = "" if stored in (None, built.hash) else f" (the metadata records {stored[:16]}: edited?)"
    table.add_row("content hash", built.hash + note)
    status, mismatch = reference_status(card, ds.total_steps, built)
    table.add_row("reference build", mismatch or status)
    score = normalized_score(rets.mean(), ref_min, ref_max)
    table.add_row("dataset return score", f"{score:.1f} (normalized: 0 = ref_min, 100 = ref_max)")
    if "bench_behavior_return_mean" in meta:
        table.add_row(
            "behavior mean return",
            f"{meta['bench_behavior_return_mean']:.1f} over the "
            f"{meta['bench_behavior_complete_episodes']} complete episodes collected",
        )
    table.add_row("bytes on disk", f"{disk / 2**20:.1f} MiB")
    table.add_row(
        "bytes in memory",
        f"{mem / 2**20:.1f} MiB (observations {data.obs.dtype}, actions, rewards, indices)",
    )
    console.print(table)


def _behavior_text(spec) -> str:
    """A card's behavior in one line; a mixture lists its components and their shares."""
    from bench.collect.behaviors import MIXTURE, mixture_components

    def one(c) -> str:
        params = ", ".join(f"{k}={v}" for k, v in c.params.items())
        return f"{c.policy}{f' ({params})' if params else ''}, epsilon {c.epsilon}"

    if spec.policy != MIXTURE:
        return one(spec)
    comps, weights = mixture_components(spec)
    parts = [f"{w:.0%} {one(c)}" for c, w in zip(comps, weights, strict=True)]
    return "one policy per episode: " + "; ".join(parts)
