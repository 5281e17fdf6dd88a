"""CUDA: runs only where a GPU is present (skipped elsewhere). Seeds trained together equal seeds
trained alone on the GPU too, the update loop never waits for the host, and a run on
`--device auto` records cuda."""

import json

import gymnasium as gym
import pytest
import torch

from bench.data.data import Sampler
from bench.perf import synthetic_data
from tests.algos.test_contract import make, random_batch
from tests.helpers import bench

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")

SPACE = gym.spaces.Discrete(4)


def to(batch, device):
    return type(batch)(**{k: None if v is None else v.to(device) for k, v in vars(batch).items()})


@pytest.mark.parametrize("name", ["bc", "discrete_bcq", "discrete_sac"])
def test_seeds_together_equal_seeds_alone_on_cuda(name):
    job = make(name, (6,), SPACE, seeds=[0, 1, 2])
    job_cuda = type(job)(job.config, job.info, "cuda", [0, 1, 2])
    job_cuda.load_state_dict(job.state_dict())
    for step in range(50):
        batch = random_batch((6,), SPACE, S=3, B=32, seed=step)
        cpu, gpu = job.update(batch), job_cuda.update(to(batch, "cuda"))
        for k in cpu:  # another device, other kernels: close, not bitwise
            assert torch.allclose(cpu[k], gpu[k].cpu(), rtol=1e-3, atol=1e-4), (k, step)


@pytest.mark.parametrize("name", ["bc", "discrete_bcq", "discrete_sac"])
def test_the_update_loop_never_synchronizes_with_the_host(name):
    job = make(name, (6,), SPACE, seeds=range(4))
    job = type(job)(job.config, job.info, "cuda", list(range(4)))
    data = synthetic_data((6,), SPACE, 2000, device="cuda")
    data.compute_nstep(0.99, 1)
    sampler = Sampler(data, 64, list(range(4)))
    job.update(sampler.sample())  # first call: lazy initialization may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        sums = None
        for _ in range(20):
            stats = job.update(sampler.sample())
            stacked = torch.stack(list(stats.values()))
            sums = stacked if sums is None else sums + stacked
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(sums).all()


def test_auto_device_runs_on_cuda_and_records_it(tiny_cartpole, tmp_path):
    res = bench(
        "run",
        "--algo",
        "bc",
        "--dataset",
        "cartpole-mixed",
        "--seeds",
        "0-1",
        "--steps",
        "100",
        "--eval-every",
        "50",
        "--eval-episodes",
        "2",
        "--quiet",
        "--results-dir",
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    for d in (tmp_path / "runs").iterdir():
        assert json.loads((d / "config.json").read_text())["device"].startswith("cuda")


def test_the_grouped_cnn_on_cuda_equals_the_cpu_layout():
    """The GPU's layout (one grouped convolution) gives the CPU layout's features."""
    from bench.nets import NatureCNN

    torch.manual_seed(0)
    cnn = NatureCNN((3,), 4)
    x = torch.randint(0, 256, (3, 8, 4, 84, 84), dtype=torch.uint8)
    cpu = cnn(x)
    gpu = cnn.to("cuda")(x.to("cuda")).cpu()
    assert torch.allclose(cpu, gpu, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["discrete_bcq", "bcq"])
def test_a_bf16_update_on_cuda_keeps_fp32_weights(name):
    from bench.run.precision import check_precision, with_precision

    if torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("this GPU has no native bf16")
    check_precision("bf16", "cuda")
    space = SPACE if name == "discrete_bcq" else gym.spaces.Box(-1.0, 1.0, (3,))
    job = make(name, (6,), space, seeds=[0, 1])
    job = type(job)(job.config, job.info, "cuda", [0, 1])
    update = with_precision(job.update, "bf16", torch.device("cuda"))
    for step in range(5):
        stats = update(to(random_batch((6,), space, S=2, B=32, seed=step), "cuda"))
    assert all(torch.isfinite(v.float()).all() for v in stats.values())
    assert all(p.dtype == torch.float32 for m in job.modules().values() for p in m.parameters())
