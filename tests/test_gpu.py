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
    res = bench("run", "--algo", "bc", "--dataset", "cartpole-mixed", "--seeds", "0-1",
                "--steps", "100", "--eval-every", "50", "--eval-episodes", "2", "--quiet",
                "--results-dir", tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr
    for d in (tmp_path / "runs").iterdir():
        assert json.loads((d / "config.json").read_text())["device"].startswith("cuda")
