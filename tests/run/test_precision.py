"""--precision: bf16 mixed precision where the hardware computes it, fp32 elsewhere; part of the
run key; refused in one line on a CPU (or GPU) without native bf16."""

import json

import pytest
import torch

import bench.run.precision as precision
from bench.algos import REGISTRY
from bench.algos.base import resolve_config
from bench.data.cards import load_card
from bench.errors import BenchError
from bench.run.config import RunConfig, RunOptions, resolve
from tests.helpers import refused, train

NO_BF16 = {"fpu", "sse4_2", "avx2", "fma"}  # an AVX2-only host
HAS_BF16 = precision.cpu_bf16() is not None
needs_bf16 = pytest.mark.skipif(not HAS_BF16, reason="this CPU has no native bf16")


def _resolve(**opts) -> RunConfig:
    options = RunOptions(algo="discrete_bcq", dataset="cartpole-mixed", preset="none", **opts)
    return resolve(options, load_card("cartpole-mixed"), "0123456789abcdef")


def test_detection_reads_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: NO_BF16)
    assert precision.cpu_bf16() is None
    monkeypatch.setattr(precision, "cpu_flags", lambda: NO_BF16 | {"avx512f", "avx512_bf16"})
    assert precision.cpu_bf16() == "avx512_bf16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: NO_BF16 | {"amx_bf16", "amx_tile"})
    assert precision.cpu_bf16() == "amx_bf16"
    precision.check_precision("bf16", "cpu")  # accepted
    precision.check_precision("fp32", "cpu")


def test_bf16_is_refused_on_a_cpu_without_it(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: NO_BF16)
    with pytest.raises(BenchError, match="no native bf16"):
        precision.check_precision("bf16", "cpu")
    precision.check_precision("fp32", "cpu")  # fp32 everywhere


def test_bf16_is_refused_on_a_gpu_older_than_ampere(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100")
    with pytest.raises(BenchError, match="Tesla V100 has no native bf16"):
        precision.check_precision("bf16", "cuda")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    precision.check_precision("bf16", "cuda")


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--algo", "bc", "--dataset", "cartpole-mixed", "--precision", "bf16"],
        ["sweep", "--algo", "bc", "--dataset", "cartpole-mixed", "--precision", "bf16"],
        ["suite", "run", "smoke", "--precision", "bf16"],
        ["perf", "--algos", "bc", "--precision", "fp32,bf16", "--memory-sizes", ""],
    ],
    ids=["run", "sweep", "suite", "perf"],
)
def test_every_command_refuses_bf16_without_it_before_anything_runs(
    monkeypatch, capsys, tmp_path, argv
):
    monkeypatch.setattr(precision, "cpu_flags", lambda: NO_BF16)
    monkeypatch.chdir(tmp_path)
    refused(monkeypatch, capsys, argv, "has no native bf16")
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("value", ["fp16", "BF16", "", "float32"])
def test_an_unknown_precision_is_one_line(monkeypatch, capsys, value):
    argv = ["run", "--algo", "bc", "--dataset", "cartpole-mixed", "--precision", value]
    refused(monkeypatch, capsys, argv, "--precision must be one of fp32, bf16")


def test_precision_is_part_of_the_key_and_fp32_keeps_the_key_it_had():
    fp32 = _resolve()
    bf16 = _resolve(precision="bf16")
    assert fp32.precision == "fp32" and bf16.precision == "bf16"
    assert bf16.key() != fp32.key()
    # an fp32 run hashes what it hashed before precisions existed: its key is unchanged
    older = {k: v for k, v in fp32.to_json().items() if k != "precision"}
    older |= {"schema_version": 4, "key": None, "fingerprint": None}
    assert RunConfig.from_json(older).key() == fp32.key()
    assert fp32.identity_diff(bf16) == [("precision", "fp32", "bf16")]
    assert "--precision bf16" in bf16.command() and "--precision" not in fp32.command()
    assert bf16.options().precision == "bf16"
    assert RunConfig.from_json(bf16.to_json()) == bf16
    edited = bf16.to_json() | {"precision": "fp32"}  # the key no longer matches: refused
    with pytest.raises(BenchError, match="edited"):
        RunConfig.from_json(edited)
    with pytest.raises(BenchError, match="not a bench run config"):
        RunConfig.from_json(bf16.to_json() | {"precision": "fp8", "key": None, "fingerprint": None})


def test_a_suite_grid_may_pin_the_precision(tmp_path):
    from bench.suite import load_suite

    text = (
        'name = "half"\nversion = 1\nseeds = "0-1"\n[[grid]]\ndatasets = ["cartpole-mixed"]\n'
        'algos = ["bc"]\nsteps = 10\neval_every = 10\neval_episodes = 1\nfinal_episodes = 0\n'
        "batch_size = 8\nprecision = {}\n"
    )
    path = tmp_path / "half.toml"
    path.write_text(text.format('"bf16"'))
    assert load_suite(str(path)).grids[0].options.precision == "bf16"
    path.write_text(text.format('"fp16"'))
    with pytest.raises(BenchError, match="grid 1: --precision must be one of fp32, bf16"):
        load_suite(str(path))


def test_a_suite_run_with_another_precision_is_reported_with_it(monkeypatch, capsys):
    from bench.suite import _DECLARED, load_suite

    smoke = load_suite("smoke")
    assert smoke.with_precision(None) is smoke
    assert {g.options.precision for g in smoke.with_precision("bf16").grids} == {"bf16"}
    assert "precision" in _DECLARED  # runs matched without their card compare it too
    with pytest.raises(BenchError, match="--precision must be one of"):
        smoke.with_precision("fp8")
    refused(
        monkeypatch,
        capsys,
        ["suite", "report", "smoke", "--precision", "fp8"],
        "--precision must be one of fp32, bf16",
    )


@needs_bf16
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_algorithm_updates_in_bf16_with_fp32_weights_and_optimizer_state(name):
    from bench.data.data import Sampler
    from bench.perf import Case, MatmulRecorder, synthetic_data
    from bench.types import EnvInfo

    obs, space = Case(name, "vector", 16).spaces()
    cls = REGISTRY[name]
    algo = cls(resolve_config(cls), EnvInfo(obs, space), "cpu", [0, 1])
    data = synthetic_data(obs, space, 1000)
    gamma, n, _ = algo.nstep()
    data.compute_nstep(gamma, n)
    sampler = Sampler(data, 16, [0, 1])
    before = [p.detach().clone() for m in algo.modules().values() for p in m.parameters()]
    update = precision.with_precision(algo.update, "bf16", torch.device("cpu"))
    recorder = MatmulRecorder()
    with recorder:
        stats = update(sampler.sample())
    for _ in range(2):
        stats = update(sampler.sample())
    seen = {a.dtype for _, args, _ in recorder.calls for a in args if isinstance(a, torch.Tensor)}
    assert seen == {torch.bfloat16}  # every matmul ran in bf16
    assert all(torch.isfinite(v.float()).all() for v in stats.values())
    for module in algo.modules().values():
        assert all(p.dtype == torch.float32 for p in module.parameters())
    for opt in algo.optimizers().values():
        for state in opt.state.values():
            assert all(v.dtype == torch.float32 for v in state.values())
    after = [p.detach() for m in algo.modules().values() for p in m.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))  # it learned


@needs_bf16
def test_a_bf16_run_records_its_precision_and_differs_from_fp32(tiny_cartpole, tmp_path):
    common = dict(
        algo="bc",
        dataset="cartpole-mixed",
        steps=60,
        eval_every=60,
        eval_episodes=1,
        batch_size=16,
        overrides={"hidden_sizes": "32,32"},
    )
    fp32 = train(tmp_path / "a", **common)
    bf16 = train(tmp_path / "b", precision="bf16", **common)
    saved = json.loads((bf16.run_dir / "config.json").read_text())
    assert saved["precision"] == "bf16" and saved["key"] != fp32.config.key()
    a, b = (torch.load(r.run_dir / "checkpoint.pt")["algo"]["modules"] for r in (fp32, bf16))
    pa = [t for m in a.values() for t in m.values()]
    pb = [t for m in b.values() for t in m.values()]
    assert all(t.dtype == torch.float32 for t in pb)  # master weights stay fp32
    assert any(not torch.allclose(x, y) for x, y in zip(pa, pb, strict=True))


@pytest.mark.slow
@pytest.mark.timeout(3600)
@needs_bf16
@pytest.mark.parametrize(
    "algo, dataset, steps, batch",
    [("discrete_bcq", "cartpole-traps", 5000, 64), ("bcq", "pendulum-replay", 3000, 100)],
)
def test_bf16_learns_what_fp32_learns(algo, dataset, steps, batch, minari_root, tmp_path):
    """5 seeds in each precision on a dataset where learning shows (both far above the
    behavior): the probability that a bf16 run beats an fp32 run has a 95% CI around 0.5."""
    import numpy as np

    from bench.run.loop import run_job
    from bench.stats.bootstrap import pair_interval_estimate
    from bench.stats.metrics import aggregate_iqm, probability_of_improvement

    scores, behavior = {}, None
    for p in precision.PRECISIONS:
        opts = RunOptions(
            algo=algo,
            dataset=dataset,
            steps=steps,
            eval_every=steps,
            eval_episodes=5,
            final_episodes=20,
            batch_size=batch,
            precision=p,
        )
        results = run_job(opts, [0, 1, 2, 3, 4], show_progress=False, results_dir=tmp_path / p)
        scores[p] = np.array([r.final_row["normalized_score"] for r in results])
        behavior = json.loads((results[0].run_dir / "config.json").read_text())["behavior_score"]
    point, lo, hi = pair_interval_estimate(
        [scores["bf16"]], [scores["fp32"]], probability_of_improvement
    )
    assert lo <= 0.5 <= hi, (point, lo, hi, scores)
    for p in precision.PRECISIONS:
        assert float(aggregate_iqm([scores[p]])) > behavior + 10, (p, scores, behavior)
