"""Datasets identical on every machine: a card's references are its constants, a learned
behavior's build has the same content hash whatever the threads, batching or float path of
its forward pass (what differs between CPUs), a build that differs from the card's reference
build is one error naming where, and a run's dataset identity is content + references."""

import dataclasses

import numpy as np
import pytest
import torch

import bench.collect.build as build_module
import bench.collect.exact as exact
from bench.collect.build import build_dataset
from bench.data.cards import Reference, card_file, load_card
from bench.data.identity import content, content_hash, dataset_identity, episode_digest
from bench.data.minari_io import dataset_exists
from bench.errors import DatasetError
from bench.nets import TanhGaussianActor

#: a checkpoint card of each kind, at a small size: (card, size)
CHECKPOINT_CARDS = [("pendulum-medium", 600), ("hopper-medium", 400)]


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def _hash(card, size) -> str:
    return content(build_dataset(card, size=size, force=True)).hash


def _perturbed(monkeypatch, scale=1e-12):
    """Every layer of the behavior's float64 forward pass off by ~scale relative: 1e-12 is far
    more than the last-bit differences of another CPU's float64 kernels."""
    init = exact.ExactPolicy.__init__
    g = torch.Generator().manual_seed(0)

    def hook(module, inputs, out):
        return out * (1 + scale * torch.randn(out.shape, generator=g, dtype=out.dtype))

    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        for m in self.actor.modules():
            if not list(m.children()):
                m.register_forward_hook(hook)

    monkeypatch.setattr(exact.ExactPolicy, "__init__", patched)


def _batched(monkeypatch):
    """The behavior evaluated in a batch of 16 observations (15 others beside the env's), as an
    evaluation of many envs would: another matmul shape, another kernel."""
    dist = TanhGaussianActor.distribution

    def padded(self, obs):
        extra = torch.randn(obs.shape[0], 15, obs.shape[-1], dtype=obs.dtype)
        mu, log_std = dist(self, torch.cat([obs, extra], 1))
        return mu[:, : obs.shape[1]], log_std[:, : obs.shape[1]]

    monkeypatch.setattr(TanhGaussianActor, "distribution", padded)


@pytest.mark.parametrize("card_id,size", CHECKPOINT_CARDS)
def test_checkpoint_builds_hash_equal_across_float_paths(root, monkeypatch, card_id, size):
    card = load_card(card_id)
    base = _hash(card, size)
    with monkeypatch.context() as m:
        m.setattr(build_module, "BUILD_THREADS", 2)
        assert _hash(card, size) == base, "2 threads"
    with monkeypatch.context() as m:
        _batched(m)
        assert _hash(card, size) == base, "batched forward pass"
    with monkeypatch.context() as m:
        _perturbed(m)
        assert _hash(card, size) == base, "perturbed float path"


def test_without_the_grid_float32_sized_differences_change_the_data(root, monkeypatch):
    """The check above can fail: without the grid, differences of a float32 forward pass's size
    (what another CPU's kernels gave the old builds) change the dataset."""
    card = load_card("pendulum-medium")
    monkeypatch.setattr(exact, "ACTION_GRID", 2.0**-60)
    base = _hash(card, 400)
    _perturbed(monkeypatch, scale=1e-7)
    assert _hash(card, 400) != base


def test_exact_policy_acts_alike_alone_and_in_a_batch(root):
    """The same observations, acted on one at a time and all at once, give the same actions
    (deterministic mode; the noise is the only other input)."""
    from bench.collect.behaviors import _checkpoint
    from bench.envs import make_env

    card = load_card("hopper-medium")
    env = make_env(card.env)
    obs = np.stack([env.reset(seed=i)[0] for i in range(32)])
    env.close()
    act = _checkpoint(
        env.action_space,
        0,
        card.behavior.params["file"],
        mode="deterministic",
        locate=lambda name: card_file(card, name),
    )
    batch = act(obs)
    alone = np.concatenate([act(o[None]) for o in obs])
    assert np.array_equal(batch, alone)
    assert np.array_equal(batch, np.round(batch * 2**12) / 2**12)  # on the grid (box [-1, 1])


def test_references_are_the_cards_constants(root, monkeypatch):
    """A build never measures the references it records (they differed between CPUs)."""

    def measure(*args, **kwargs):
        raise AssertionError("a build measured a reference")

    monkeypatch.setattr(build_module, "measure_policy", measure)
    card = load_card("pendulum-replay")
    ds = build_dataset(card, size=400, force=True)
    meta = ds.storage.metadata
    assert (meta["ref_min_score"], meta["ref_max_score"]) == (card.ref_min, card.ref_max)


def test_a_card_without_constants_is_refused_before_collecting(root):
    card = dataclasses.replace(load_card("pendulum-medium"), ref_min=None, ref_max=None)
    with pytest.raises(DatasetError, match="--measure-refs"):
        build_dataset(card, size=200)
    assert not dataset_exists(card.minari_id)


def _with_reference(card, built, **change):
    ref = Reference(built.hash, built.episodes, built.steps)
    return dataclasses.replace(card, size=built.steps, reference=dataclasses.replace(ref, **change))


def test_a_build_matching_its_reference_says_so(root):
    card = load_card("cartpole-mixed")
    built = content(build_dataset(card, size=600, force=True))
    ds = build_dataset(_with_reference(card, built), size=built.steps, force=True)
    assert ds.storage.metadata["bench_reference"] == build_module.IDENTICAL


def test_a_mismatch_names_what_differs_and_keeps_nothing(root, tmp_path):
    card = load_card("cartpole-mixed")
    built = content(build_dataset(card, size=600, force=True))
    # a reference whose 3rd episode differs: its per-episode digests name it
    from bench.data.identity import save_reference

    digests = built.digests.copy()
    digests[2] ^= np.uint64(1)
    folder = tmp_path / "cards"
    save_reference(
        folder / "reference" / "cartpole-mixed.npz", dataclasses.replace(built, digests=digests)
    )
    wrong = dataclasses.replace(
        _with_reference(card, built, content_hash="0" * 64), path=folder / "cartpole-mixed.toml"
    )
    with pytest.raises(DatasetError) as e:
        build_dataset(wrong, size=built.steps, force=True)
    msg = str(e.value)
    assert "differs from the card's reference build" in msg and "episode 2" in msg
    assert "--allow-mismatch" in msg and "\n" not in msg
    # the earlier build is still there, untouched (force replaces only once the new one is whole)
    assert content(build_module.open_dataset(card.minari_id)).hash == built.hash
    # a changed episode count is named too
    fewer = _with_reference(card, built, content_hash="0" * 64, episodes=built.episodes + 1)
    with pytest.raises(
        DatasetError, match=rf"{built.episodes} episodes .* reference {built.episodes + 1}"
    ):
        build_dataset(fewer, size=built.steps, force=True)
    # the opt-out keeps it, as a dataset of its own
    ds = build_dataset(wrong, size=built.steps, force=True, allow_mismatch=True)
    assert ds.storage.metadata["bench_reference"] == build_module.OWN_IDENTITY


def test_the_content_hash_sees_every_field_and_the_identity_the_references(root):
    card = load_card("cartpole-mixed")
    ds = build_dataset(card, size=300, force=True)
    ep = next(iter(ds.iterate_episodes()))
    base = episode_digest(ep)
    for name in ("observations", "actions", "rewards", "terminations", "truncations"):
        changed = dataclasses.replace(ep, **{name: np.array(getattr(ep, name)).copy()})
        arr = getattr(changed, name)
        arr.flat[-1] = (not arr.flat[-1]) if arr.dtype == bool else arr.flat[-1] + 1
        assert episode_digest(changed) != base, name
    built = content_hash(ds)
    assert built == content(ds).hash  # the build's record is the data's hash
    ident = dataset_identity(built, card.ref_min, card.ref_max)
    assert ident == dataset_identity(built, card.ref_min, card.ref_max)
    assert ident != dataset_identity(built, card.ref_min, card.ref_max + 1)
    assert ident != dataset_identity("0" * 64, card.ref_min, card.ref_max)


@pytest.mark.parametrize("card_id,size", CHECKPOINT_CARDS)
def test_a_build_with_another_cpu_kernel_set_hashes_equal(root, card_id, size):
    """torch's, MKL's and oneDNN's kernels forced to their plain (no AVX) paths in a second
    process, as another CPU would choose others: the same dataset. (The previous float32
    behaviors built another pendulum-medium this way.)"""
    import os
    import subprocess
    import sys

    base = _hash(load_card(card_id), size)
    env = os.environ | {
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "OMP_NUM_THREADS": "2",
    }
    code = (
        "import torch; assert torch.backends.cpu.get_cpu_capability() == 'DEFAULT'\n"
        "from bench.collect.build import build_dataset\n"
        "from bench.data.cards import load_card\n"
        "from bench.data.identity import content\n"
        f"print(content(build_dataset(load_card({card_id!r}), size={size}, force=True)).hash)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == base


def test_record_reference_then_a_rebuild_is_identical(root, tmp_path, monkeypatch, cli):
    """`--record-reference` writes [reference] and the digests; a rebuild says "identical";
    --measure-refs measures and compares with the card's constants, building nothing."""
    cards = tmp_path / "cards"
    cards.mkdir()
    text = load_card("cartpole-mixed").path.read_text().split("\n[reference]")[0]
    (cards / "cartpole-mixed.toml").write_text(text.replace("size = 100_000", "size = 600"))
    monkeypatch.setenv("BENCH_DATASETS_DIR", str(cards))
    done = cli("datasets", "build", "cartpole-mixed", "--record-reference", "-q")
    assert done.returncode == 0, done.stderr
    card = load_card("cartpole-mixed")
    assert card.reference is not None and card.reference.steps == 600
    assert (cards / "reference" / "cartpole-mixed.npz").is_file()
    done = cli("datasets", "build", "cartpole-mixed", "--force", "-q")
    assert done.returncode == 0 and "identical to the reference build" in done.stdout, done
    done = cli("datasets", "build", "cartpole-mixed", "--measure-refs")
    assert done.returncode == 0 and "ref_min 21.66, ref_max 500.0" in done.stdout
    assert "(the same)" in done.stdout


def test_a_mismatch_with_unreadable_reference_digests_is_still_one_line(tmp_path):
    from bench.data.identity import Content, describe_mismatch

    bad = tmp_path / "reference" / "x.npz"
    bad.parent.mkdir()
    bad.write_bytes(b"not an npz")
    built = Content("1" * 64, np.array([5, 5]), np.array([1, 2], dtype=np.uint64))
    msg = describe_mismatch("x", "0" * 64, 2, 10, built, bad)
    assert "differs from the card's reference build" in msg and "cannot read" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("refs", [(float("nan"), 1.0), (0.0, float("inf")), (2.0, 2.0)])
def test_constants_that_cannot_normalize_are_refused_before_collecting(root, refs):
    card = dataclasses.replace(load_card("cartpole-mixed"), ref_min=refs[0], ref_max=refs[1])
    with pytest.raises(DatasetError, match="cannot normalize scores"):
        build_dataset(card, size=200)
    assert not dataset_exists(card.minari_id)
