"""The dataset cards and the shipped behavior files are package data: a wheel carries them,
and a non-editable install finds them from any working directory (no network needed)."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

from bench.data.cards import DEFAULT_CARDS_DIR, shipped_card_ids

REPO = Path(__file__).resolve().parents[1]


def shipped_files() -> set[str]:
    """Every file under bench/cards, as wheel member names."""
    return {
        f"bench/cards/{p.relative_to(DEFAULT_CARDS_DIR).as_posix()}"
        for p in DEFAULT_CARDS_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (the build writes build/ and egg-info there,
    not into the repository); offline: no index, no build isolation."""
    src = tmp_path_factory.mktemp("src")
    shutil.copytree(REPO / "bench", src / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    (whl,) = out.glob("bench-*.whl")
    return whl


def test_the_wheel_carries_the_cards_and_behavior_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = shipped_files()
    assert {f"bench/cards/{cid}.toml" for cid in shipped_card_ids()} <= expected
    assert any(n.endswith(".pt") for n in expected) and any(n.endswith(".npz") for n in expected)
    assert "bench/cards/behaviors/README.md" in expected
    assert expected <= names, sorted(expected - names)


def test_the_wheel_carries_its_license(wheel):
    with zipfile.ZipFile(wheel) as z:
        (meta,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        assert "License-Expression: MIT" in z.read(meta).decode()
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in z.namelist())


CHECK = textwrap.dedent(
    """
    import json
    from pathlib import Path

    import bench
    from bench.data.cards import cards_dir, card_ids, load_card

    behavior_files = []
    for cid in card_ids():
        card = load_card(cid)
        for spec in (card.behavior, card.expert):
            if "file" in spec.params:
                behavior_files.append(str(cards_dir() / spec.params["file"]))
    print(json.dumps({"bench": bench.__file__, "cards_dir": str(cards_dir()),
                      "ids": card_ids(), "behavior_files": behavior_files}))
    """
)


def test_a_non_editable_install_finds_its_cards_from_anywhere(wheel, tmp_path):
    """Install the wheel into a fresh venv (its dependencies come from this environment via a
    .pth file, so nothing is downloaded), then use it from an unrelated folder."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # dependencies: this interpreter's site-packages as plain paths (their .pth files, such as
    # an editable install's finder for the repository, are not run)
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("BENCH_DATASETS_DIR", "BENCH_CARDS_DIR", "PYTHONPATH")
    }
    env |= {"MINARI_DATASETS_PATH": str(tmp_path / "minari"), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([py, "-c", CHECK], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    found = json.loads(res.stdout)
    assert Path(found["bench"]).is_relative_to(site)  # the installed copy, not the repository
    assert Path(found["cards_dir"]).is_relative_to(site)
    assert found["ids"] == shipped_card_ids()
    assert found["behavior_files"] and all(Path(f).is_file() for f in found["behavior_files"])
    assert all(Path(f).is_relative_to(site) for f in found["behavior_files"])

    # the installed console script: `bench datasets list`
    res = subprocess.run(
        [venv / "bin" / "bench", "datasets", "list", "--format", "json"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert [r["id"] for r in json.loads(res.stdout)] == shipped_card_ids()
