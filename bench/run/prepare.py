"""Preparing a run: options -> the algorithm class, the card, the dataset (built when missing)
and its content hash -> a RunConfig; then the data as tensors, validated, and the algorithm for a
job's seeds. Everything a user can get wrong fails here, before anything is written."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import gymnasium as gym
import torch

from bench.algos import get_algorithm
from bench.algos.base import Algorithm, resolve_config
from bench.collect.build import card_refs, ensure_dataset
from bench.data.cards import Card
from bench.data.catalog import resolve_card
from bench.data.data import OfflineData, Sampler, held_out_episodes, split_transitions
from bench.data.identity import content_hash, dataset_identity
from bench.data.validate import validate
from bench.envs import make_env
from bench.errors import BenchError
from bench.nets import LeanAdam
from bench.run.config import RunConfig, RunOptions, _canonical, check_algorithm, resolve
from bench.run.precision import check_precision
from bench.types import EnvInfo

if TYPE_CHECKING:
    from minari import MinariDataset


@dataclass
class Prepared:
    """A resolved run and what training it needs: the algorithm class, card, dataset."""

    config: RunConfig
    cls: type[Algorithm]
    card: Card
    dataset: MinariDataset
    ref_min: float
    ref_max: float
    observation_space: gym.Space  # the evaluation env's spaces, from the one probe in prepare()
    action_space: gym.Space


def _check_action_kind(cls: type[Algorithm], card: Card, action_space: gym.Space) -> None:
    kind = "discrete" if isinstance(action_space, gym.spaces.Discrete) else "continuous"
    if kind not in cls.action_kinds:
        raise BenchError(
            f"algorithm '{cls.name}' does not handle {kind} actions (dataset '{card.id}' has them)"
        )


#: Device types a run can use: the CPU, and CUDA GPUs where torch has them.
DEVICE_TYPES = ("cpu", "cuda")


def check_device(device: str) -> torch.device:
    """The torch device of --device: cpu, cuda, cuda:N, or auto (CUDA when present, else CPU)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
        if dev.type not in DEVICE_TYPES:
            raise ValueError(f"bench runs on {' or '.join(DEVICE_TYPES)} (or auto)")
        torch.empty(0, device=dev)
    except Exception as e:  # noqa: BLE001 - torch raises several kinds for a bad device
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise BenchError(f"device '{device}' is not available: {first}") from None
    return dev


def prepare(opts: RunOptions, show_progress: bool = True) -> Prepared:
    """Resolve the options into a RunConfig: the algorithm and its config, the card, the dataset
    (built when missing) and its hash. Everything a user can get wrong fails here, in one line,
    before anything is written. The device is resolved (auto -> cuda or cpu) and recorded."""
    cls = get_algorithm(opts.algo)
    opts = dataclasses.replace(opts, device=str(check_device(opts.device)))
    check_precision(opts.precision, opts.device)
    card = resolve_card(opts.dataset, opts.env)
    probe = make_env(card.env)  # the evaluation env: the algorithm and the data must fit it
    probe.close()
    _check_action_kind(cls, card, probe.action_space)  # before any dataset is built
    check_algorithm(opts)  # a bad preset or --set before any dataset is built
    ref_min, ref_max = card_refs(card)  # the card's constants (a Minari id's: its metadata)
    dataset = ensure_dataset(card, show_progress)
    built = content_hash(dataset)  # one pass over the data when the metadata has no record
    config = resolve(opts, card, dataset_identity(built, ref_min, ref_max))
    _note_reference(card, dataset, built)
    held_out_episodes(dataset.total_episodes, config.holdout)  # leaves episodes to train on
    if 0 < dataset.total_steps < config.batch_size:  # an empty one: validation says so
        raise BenchError(
            f"--batch-size {config.batch_size:,} is larger than the dataset "
            f"({dataset.total_steps:,} transitions)"
        )
    return Prepared(
        config,
        cls,
        card,
        dataset,
        float(ref_min),
        float(ref_max),
        probe.observation_space,
        probe.action_space,
    )


def settings_note(prep: Prepared) -> str:
    """One line: the preset a run uses (and whose defaults it is) and every setting that differs
    from the algorithm's reference defaults, so one dataset's settings never change unseen with
    how it was named (a card id, minari:<id>, a file)."""
    c = prep.config
    reference = _canonical(dataclasses.asdict(prep.cls.Config()))
    changed = [f"{k}={v}" for k, v in sorted(c.algo_config.items()) if reference.get(k) != v]
    if c.preset is None:
        head = f"{c.algo}: the reference defaults (no preset)"
    else:
        whose = " (the dataset card's)" if c.preset == prep.card.train.preset else ""
        head = f"{c.algo}: preset {c.preset}{whose}"
    tail = f"; differs from the reference defaults: {', '.join(changed)}" if changed else ""
    precision = f"; precision {c.precision}" if c.precision != "fp32" else ""
    return f"bench: {head}{tail}{precision}"


def _note_reference(card: Card, dataset, built: str) -> None:
    """One line on stderr when a full-size build of a card is not its reference build (built by
    an older bench, or kept with --allow-mismatch): its runs get keys of their own."""
    ref = card.reference
    if ref is None or dataset.total_steps != card.size:
        return
    if built != ref.content_hash:
        print(
            f"bench: note: dataset '{card.id}' is not the card's reference build (content "
            f"{built[:12]}, reference {ref.content_hash[:12]}): its runs get keys of their "
            f"own; `bench datasets build {card.id} --force` rebuilds it",
            file=sys.stderr,
        )


def load_data(prep: Prepared, device: torch.device) -> OfflineData:
    """The prepared dataset as tensors on the device, checked against the env's spaces."""
    data = OfflineData.from_minari(prep.dataset, device, prep.card.env.frame_stack)
    validate(data, prep.observation_space, prep.action_space, prep.card.minari_id)
    return data


def setup_job(
    prep: Prepared, device: torch.device, seeds: list[int], data: OfflineData | None = None
):
    """The algorithm for these seeds, its sampler, and the dataset (loaded, validated and its
    n-step targets computed, unless a job of the same configuration already did)."""
    c = prep.config
    fresh = data is None
    if data is None:
        data = load_data(prep, device)
    info = EnvInfo(obs_shape=data.obs_shape, action_space=prep.action_space)
    config = resolve_config(prep.cls, c.preset, c.overrides)
    if c.compile:
        LeanAdam.keep_out_of_compiled_graphs()
    algo = prep.cls(config, info, device, seeds)
    algo.fit_dataset(data)
    if fresh:
        gamma, n, normalize = algo.nstep()
        data.compute_nstep(gamma, n, normalize)
    rows = split_transitions(data, c.holdout)[0] if c.holdout else None
    return algo, Sampler(data, c.batch_size, seeds, rows), data
