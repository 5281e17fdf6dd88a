"""What travels between a sweep's driver and its cluster nodes, without a cluster: run
directories packed and installed home, a shared results folder re-read by a retried job, and the
grid view of a retried job."""

import io
import os
import tarfile

import pytest

from bench.cluster import install_runs, pack, replan, unpack
from bench.results.schema import runs_dir
from bench.sweep import Cell, Planned, SweepSpec
from tests.analysis.fake_runs import fake_config, make_run


def test_pack_leaves_out_locks_and_half_written_temp_files(tmp_path):
    run = tmp_path / "r1"
    (run / "policies").mkdir(parents=True)
    for name in (
        "config.json",
        "eval.parquet",
        ".lock",
        ".eval.parquet.abc.tmp",
        "policies/step-10.pt",
    ):
        (run / name).write_text(name)
    unpack(pack([(run, "r1")]), tmp_path / "out")
    got = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*"))
    assert got == [
        "r1",
        "r1/config.json",
        "r1/eval.parquet",
        "r1/policies",
        "r1/policies/step-10.pt",
    ]


def test_unpack_keeps_an_absolute_name_inside_its_folder(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(str(tmp_path / "evil"))
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    unpack(buf.getvalue(), tmp_path / "in")
    assert not (tmp_path / "evil").exists()
    assert (tmp_path / "in" / str(tmp_path / "evil").lstrip("/")).read_text() == "evil"


@pytest.mark.parametrize("member", ["../evil", "link"])
def test_unpack_refuses_names_outside_its_folder_and_links(tmp_path, member):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(member)
        if member == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(tarfile.TarError):
        unpack(buf.getvalue(), tmp_path / "in")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "in" / "link").exists()


def test_runs_come_home_whole_and_a_resumed_run_is_updated_in_place(tmp_path):
    results = tmp_path / "results"
    old = runs_dir(results) / "resumed"
    old.mkdir(parents=True)
    (old / "eval.parquet").write_text("old rows")
    (old / "policies").mkdir()
    (old / "policies" / "step-10.pt").write_text("kept")
    away = tmp_path / "node"
    for run, files in (
        ("new", {"config.json": "c", "eval.parquet": "e"}),
        ("resumed", {"eval.parquet": "new rows", "policies/step-20.pt": "p"}),
    ):
        for name, text in files.items():
            (away / run / name).parent.mkdir(parents=True, exist_ok=True)
            (away / run / name).write_text(text)
    installed = install_runs(pack([(away / "new", "new"), (away / "resumed", "resumed")]), results)
    assert installed == {"new": runs_dir(results) / "new", "resumed": old}
    assert (runs_dir(results) / "new" / "eval.parquet").read_text() == "e"
    assert (old / "eval.parquet").read_text() == "new rows"
    assert sorted(p.name for p in (old / "policies").iterdir()) == ["step-10.pt", "step-20.pt"]
    assert sorted(p.name for p in results.iterdir()) == ["runs"]  # no staging folder left


def test_a_retried_job_in_a_shared_folder_keeps_complete_runs_and_resumes_the_rest(tmp_path):
    """Its lost attempt completed seed 0 and began seed 1; seed 2 it never reached."""
    results = tmp_path / "results"
    key = fake_config("bc", "d", 0, steps=300).key()
    make_run(results, "bc", "d", 0, [10, 20, 30], suffix="a")
    make_run(results, "bc", "d", 1, [5], steps=300, suffix="b")
    make_run(results, "bc", "d", 3, [1, 2, 3], suffix="other-seed")
    make_run(results, "bc", "d", 2, [7, 8, 9], steps=300, suffix="other-key", batch_size=32)
    spec = SweepSpec(algos=["bc"], datasets=["d"], seeds=[0, 1, 2], results_dir=results)
    job = [Planned(Cell("bc", "d", s), "new", key) for s in (0, 1, 2)]
    todo, kept = replan(job, spec, key)
    assert [(r["cell"]["seed"], r["ok"], r["score"]) for r in kept] == [(0, True, 30.0)]
    assert [(p.cell.seed, p.action, p.step) for p in todo] == [(1, "resume", 100), (2, "new", 0)]
    assert todo[0].run_dir.name == "bc__d__s1__b"


def test_the_grid_shows_a_retried_job():
    from bench.cli.sweep import _GridView

    cell = Cell("bc", "d", 0)
    view = _GridView([Planned(cell, "new", "k")], [0])
    view.update(cell, "queued")
    view.update(cell, "retried", {"node": {}, "retry": 1})
    assert view.state[cell] == "[yellow]running (retry 1)[/]"
    view.update(cell, "done", {"score": 12.5})
    assert view.state[cell] == "[green]12.5[/]"


def test_a_jobs_scratch_is_new_and_a_dead_jobs_is_removed(tmp_path, monkeypatch):
    import socket

    from bench.cluster import new_scratch

    monkeypatch.setenv("BENCH_SCRATCH", str(tmp_path))
    host = socket.gethostname()
    dead = tmp_path / f"bench-job-{host}-999999999-abc"  # no such process
    other_host = tmp_path / "bench-job-elsewhere-999999999-abc"  # not this host's to judge
    for d in (dead, other_host):
        (d / "runs").mkdir(parents=True)
    mine = new_scratch()
    assert mine.parent == tmp_path and mine.name.startswith(f"bench-job-{host}-{os.getpid()}-")
    assert not dead.exists() and other_host.exists()
