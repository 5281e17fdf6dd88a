"""Sweeps on a real multi-node Ray cluster on one machine (tests/cluster.py): a head node that
shares the driver's disk, and a worker node that sees none of the driver's folders. Every run
must end in the driver's results folder once, with the tables a local sweep writes; datasets
reach the node that lacks them; a lost node costs a retry, never a cell twice."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from tests.cluster import ADDRESS, Cluster, _pids_in, available
from tests.helpers import wait_for

WHY = available()
pytestmark = [
    pytest.mark.xdist_group("cluster"),
    pytest.mark.integration,
    pytest.mark.skipif(WHY is not None, reason=f"no test cluster: {WHY}"),
]

TINY = (
    "--steps 40 --eval-every 20 --eval-episodes 2 --final-episodes 0 --seeds-per-job 1 "
    "--workers 2 -q"
).split()
#: Jobs long enough to lose a node in the middle of one (a checkpoint every 100 updates).
LONG = (
    "--steps 800 --eval-every 100 --eval-episodes 3 --final-episodes 0 --seeds-per-job 1 "
    "--workers 2 -q"
).split()
RAY = ["--executor", "ray", "--address", ADDRESS]
#: Columns that say when and how fast, not what: they differ between any two runs.
TIMING = {"run_id", "wall_time_s", "eval_time_s"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from tests.data.test_d4rl_io import d4rl_file

    root = tmp_path_factory.mktemp("cluster")
    c = Cluster(root)
    with c:
        for args in (
            ["build", "cartpole-mixed", "--size", "3000"],
            [
                "import",
                d4rl_file(root / "pendulum.hdf5", n=400),
                "--env",
                "Pendulum-v1",
                "--as",
                "mine/pendulum-v0",
                "--ref-min",
                "-1500",
                "--ref-max",
                "-150",
            ],
        ):
            made = c.bench("datasets", *args)
            assert made.returncode == 0, made.stdout + made.stderr
        yield c
    assert not _pids_in("net", c.net_ns), "a process of the test cluster was left running"


def runs_of(results) -> dict[tuple[str, str, int], list]:
    out: dict = {}
    for d in sorted((results / "runs").iterdir()):
        cfg = json.loads((d / "config.json").read_text())
        out.setdefault((cfg["algo"], cfg["dataset"], cfg["seed"]), []).append((d, cfg))
    return out


def table(run_dir, name) -> pd.DataFrame:
    frame = pd.read_parquet(run_dir / name)
    if name == "train.parquet":
        frame = frame[frame.metric != "updates_per_s"]
    return frame.drop(columns=[c for c in frame.columns if c in TIMING]).reset_index(drop=True)


def nodes_of(cfg) -> list[str]:
    return [n["node_id"] for n in cfg.get("nodes", [])]


def test_a_grid_on_two_nodes_comes_home_whole_with_a_local_sweeps_tables(cluster):
    c = cluster
    grid = ["--algo", "bc,discrete_bcq", "--dataset", "cartpole-mixed", "--seeds", "0-3"]
    res = c.bench("sweep", *grid, *TINY, *RAY, "--results-dir", c.driver / "ray")
    assert res.returncode == 0, res.stdout + res.stderr
    local = c.bench("sweep", *grid, *TINY, "--results-dir", c.driver / "local")
    assert local.returncode == 0, local.stdout + local.stderr
    on_ray, here = runs_of(c.driver / "ray"), runs_of(c.driver / "local")
    assert sorted(on_ray) == sorted(here) and len(on_ray) == 8
    assert all(len(v) == 1 for v in on_ray.values())  # every cell once
    nodes = {n for [(_, cfg)] in on_ray.values() for n in nodes_of(cfg)}
    assert len(nodes) == 2, f"the jobs ran on {len(nodes)} node(s)"
    for cell, [(d, _)] in on_ray.items():
        [(mine, _)] = here[cell]
        files = {p.name for p in d.iterdir()}  # the empty lock file is a writer's, not the run's
        assert files == {p.name for p in mine.iterdir()} - {".lock"}
        for name in ("eval.parquet", "train.parquet"):
            pd.testing.assert_frame_equal(table(d, name), table(mine, name))
    # the worker node unpacked the driver's copy (a 3,000-step build is not the reference one)
    assert (c.worker_minari / "bench" / "cartpole-mixed-v0" / "data").is_dir()
    assert not any(c.worker_scratch.iterdir())  # scratch cleaned after each job


def test_an_imported_dataset_reaches_the_node_without_it(cluster):
    c = cluster
    res = c.bench(
        "sweep",
        "--algo",
        "bc",
        "--dataset",
        "mine/pendulum-v0",
        "--seeds",
        "0-3",
        *TINY,
        *RAY,
        "--results-dir",
        c.driver / "imported",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    runs = runs_of(c.driver / "imported")
    assert len(runs) == 4 and all(len(v) == 1 for v in runs.values())
    assert len({n for [(_, cfg)] in runs.values() for n in nodes_of(cfg)}) == 2
    assert (c.worker_minari / "mine" / "pendulum-v0" / "data").is_dir()


def test_a_node_whose_dataset_differs_fails_its_jobs_in_one_line(cluster):
    c = cluster
    driver = c.bench("datasets", "build", "cartpole-expert", "--size", "2500", "-q")
    assert driver.returncode == 0, driver.stderr
    theirs = c.bench(
        "datasets",
        "build",
        "cartpole-expert",
        "--size",
        "2000",
        "-q",
        env_extra={"MINARI_DATASETS_PATH": str(c.worker_minari)},
    )
    assert theirs.returncode == 0, theirs.stderr
    res = c.bench(
        "sweep",
        "--algo",
        "bc",
        "--dataset",
        "cartpole-expert",
        "--seeds",
        "0-3",
        *TINY,
        *RAY,
        "--results-dir",
        c.driver / "differs",
    )
    assert res.returncode == 1, res.stdout + res.stderr
    failed = [line for line in res.stdout.splitlines() if line.startswith("failed:")]
    assert failed and len(failed) < 4  # the head node's jobs ran
    for line in failed:
        assert "its dataset bench/cartpole-expert-v0 has content" in line
        assert "the driver's has" in line and "node 127.0.0.1" in line
    assert len(runs_of(c.driver / "differs")) == 4 - len(failed)


def _finish(proc, timeout: float = 600):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def test_a_lost_node_costs_one_retry_and_each_cell_ends_once(cluster):
    """Without shared storage: the lost job brought nothing home, so it starts again."""
    c = cluster
    results = c.driver / "lost"
    logged = [a for a in LONG if a != "-q"]  # no terminal: one line per job event
    sweep = c.bench(
        "sweep",
        "--algo",
        "bc",
        "--dataset",
        "cartpole-mixed",
        "--seeds",
        "0-1",
        *logged,
        *RAY,
        "--results-dir",
        results,
        background=True,
    )
    try:
        wait_for(
            lambda: any(c.worker_scratch.glob("*/runs/*/checkpoint.pt")),
            "a checkpoint on the worker node",
        )
        lost = json.loads(next(c.worker_scratch.glob("*/runs/*/config.json")).read_text())
        c.kill_worker()
        code, out = _finish(sweep)
    finally:
        sweep.kill()
        c.start_worker()  # for the tests after this one
    assert code == 0, out
    runs = runs_of(results)
    assert len(runs) == 2 and all(len(v) == 1 for v in runs.values())
    [(d, cfg)] = runs[("bc", "cartpole-mixed", lost["seed"])]
    assert nodes_of(cfg) != nodes_of(lost)  # trained again, on the node that was left
    label = f"bc x cartpole-mixed seed {lost['seed']}"
    assert f"running: {label} on node 127.0.0.1" in out
    assert f"retried: {label} on node 127.0.0.1" in out and "(retry 1)" in out
    assert out.count(f"done: {label}: ") == 1
    assert pd.read_parquet(d / "eval.parquet").step.tolist() == list(range(100, 801, 100))


def test_a_lost_node_with_shared_results_resumes_from_its_checkpoint(cluster):
    c = cluster
    results = c.shared / "lost"
    # a relative results folder is the driver's (a node's processes work in another folder)
    sweep = c.bench(
        "sweep",
        "--algo",
        "bc",
        "--dataset",
        "cartpole-mixed",
        "--seeds",
        "0-1",
        *LONG,
        *RAY,
        "--shared-results",
        "--results-dir",
        "shared/lost",
        background=True,
        cwd=c.root,
    )

    def on_worker_with_checkpoint():
        for cfg_file in results.glob("runs/*/config.json"):
            cfg = json.loads(cfg_file.read_text())
            if (cfg_file.parent / "checkpoint.pt").exists() and c.worker_id in nodes_of(cfg):
                return cfg_file.parent
        return None

    lost = c.worker_id
    try:
        wait_for(on_worker_with_checkpoint, "a checkpoint written by the worker node")
        c.kill_worker()
        code, out = _finish(sweep)
    finally:
        sweep.kill()
        c.start_worker()
    assert code == 0, out
    runs = runs_of(results)
    assert len(runs) == 2 and all(len(v) == 1 for v in runs.values())  # resumed in place
    resumed = [(d, cfg) for [(d, cfg)] in runs.values() if len(cfg.get("nodes", [])) == 2]
    assert len(resumed) == 1, "the lost job did not resume its run"
    d, cfg = resumed[0]
    assert nodes_of(cfg)[0] == lost and nodes_of(cfg)[1] != lost
    assert pd.read_parquet(d / "eval.parquet").step.tolist() == list(range(100, 801, 100))


def test_a_cluster_without_a_node_big_enough_is_one_line(cluster):
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one job's threads are the cores of the driver: 1 here, which every node has")
    res = cluster.bench(
        "sweep",
        "--algo",
        "bc",
        "--dataset",
        "cartpole-mixed",
        "--seeds",
        "0",
        "--workers",
        "1",
        "--steps",
        "20",
        "--eval-every",
        "20",
        *RAY,
        "--results-dir",
        cluster.driver / "big",
        "-q",
        timeout=120,
    )
    assert res.returncode == 2, res.stdout + res.stderr
    assert "no node of the Ray cluster" in res.stderr and "CPUs a job asks for" in res.stderr
    assert not list((cluster.driver / "big").glob("runs/*"))
