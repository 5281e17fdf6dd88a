"""`bench perf`'s Atari loading measurement: its synthetic dataset is written and loaded in
child processes, into a temp folder that is removed whatever happens (an error, a crash of HDF5,
a kill), and the writer stops before the disk is full."""

import os
import shutil

import pytest

import bench.perf as perf
from bench.data.minari_io import remove_orphans
from bench.errors import BenchError


@pytest.fixture
def tmpdir_env(tmp_path, monkeypatch):
    import tempfile

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    return folder


def test_a_crash_of_the_writer_is_one_line_and_leaves_no_temp_folder(tmpdir_env, monkeypatch):
    """What HDF5 does on a full tmpfs (exit 139): a segmentation fault of the writer."""
    monkeypatch.setattr(
        perf,
        "_WRITE_PROBE",
        "import os, sys\n"
        "open(os.path.join(sys.argv[1], 'half'), 'w').write('x')\n"
        "os.kill(os.getpid(), 11)\n",
    )
    with pytest.raises(
        BenchError,
        match=r"writing the synthetic dataset failed \(killed by "
        r"signal 11\)",
    ):
        perf.measure_atari_memory(1000)
    assert os.listdir(tmpdir_env) == []


def test_a_failing_loader_is_one_line_and_leaves_no_temp_folder(tmpdir_env, monkeypatch):
    monkeypatch.setattr(perf, "_LOAD_PROBE", "raise SystemExit('out of memory')")
    with pytest.raises(BenchError, match=r"loading it failed \(exit status 1\): out of memory"):
        perf.measure_atari_memory(1000)
    assert os.listdir(tmpdir_env) == []


def test_the_writer_stops_before_the_disk_is_full(tmp_path, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=5 * 2**20))
    with pytest.raises(BenchError, match="is filling up .* stopped before it is full"):
        perf.write_synthetic_atari(str(tmp_path / "root"), 2000)
    written = sum(p.stat().st_size for p in (tmp_path / "root").rglob("*") if p.is_file())
    assert written < 2**20  # not one episode (7 MB) was written


def test_temp_folders_of_killed_measurements_are_removed(tmpdir_env):
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmpdir_env / f"{perf.TEMP_PREFIX}{dead.pid}-abc"
    live = tmpdir_env / f"{perf.TEMP_PREFIX}1-abc"  # pid 1 is alive
    other = tmpdir_env / "someone-elses"
    for d in (stale, live, other):
        d.mkdir()
    remove_orphans(tmpdir_env, perf.TEMP_PREFIX)
    assert sorted(os.listdir(tmpdir_env)) == sorted([live.name, other.name])


def test_a_temp_folder_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(BenchError, match="cannot write in the temp folder"):
        perf.measure_atari_memory(1000)


def test_a_small_measurement_works_and_cleans_up(tmpdir_env):
    r = perf.measure_atari_memory(1000)
    assert r["transitions"] == 1000 and r["frame_bytes"] == 1001 * 84 * 84
    assert os.listdir(tmpdir_env) == []
