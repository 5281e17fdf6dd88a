"""Algorithms as plugins: a third-party package (tests/plugin_pkg) installed into a fresh venv
registers its algorithm through the `bench.algorithms` entry point, without touching bench's
source; broken entry points are one warning line each and leave the other algorithms alone."""

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

PLUGIN = Path(__file__).parent / "plugin_pkg"
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv that sees bench's environment (a .pth file adds its site-packages) and has
    the plugin installed into its own."""
    root = tmp_path_factory.mktemp("plugin")
    env = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", env], check=True)
    python = env / "bin" / "python"
    own = subprocess.run(
        [python, "-c", "import site; print(site.getsitepackages()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(own) / "bench-parent.pth").write_text(
        f"import site; site.addsitedir({site.getsitepackages()[0]!r})\n"
    )
    src = shutil.copytree(PLUGIN, root / "src")
    res = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            src,
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    return python


#: The environment of the venv's commands, with plugins on (tests/conftest.py turns them off).
ENV = {k: v for k, v in os.environ.items() if k != "BENCH_PLUGINS"}


def bench_in(python, *args, **kw):
    return subprocess.run(
        [python, "-m", "bench.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV | kw.pop("env", {}),
        **kw,
    )


def test_bench_algos_lists_the_plugin_and_warns_once_per_broken_one(venv):
    res = bench_in(venv, "algos")
    assert res.returncode == 0, res.stderr
    assert "tiny_bc" in res.stdout and "bench_tiny_plugin.algo" in res.stdout
    assert "bc  (discrete, continuous actions)" in res.stdout  # bench's own still there
    assert "lr" in res.stdout and "0.001" in res.stdout  # the plugin's defaults
    warnings = res.stderr.splitlines()
    assert len(warnings) == 2, res.stderr
    assert warnings[0].startswith("bench: warning: algorithm plugin 'broken' not loaded: ")
    assert "ModuleNotFoundError" in warnings[0]
    assert "its class is named 'not_its_entry_point'" in warnings[1]
    off = bench_in(venv, "algos", env={"BENCH_PLUGINS": "0"})
    assert off.returncode == 0 and "tiny_bc" not in off.stdout and not off.stderr


def test_bench_run_trains_the_plugin_and_refuses_a_broken_one(venv, tiny_cartpole, tmp_path):
    res = bench_in(
        venv,
        "run",
        "--algo",
        "tiny_bc",
        "--dataset",
        "cartpole-mixed",
        "--steps",
        "20",
        "--eval-every",
        "10",
        "--eval-episodes",
        "1",
        "--final-episodes",
        "0",
        "--results-dir",
        tmp_path,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert pd.read_parquet(run / "eval.parquet").step.tolist() == [10, 20]
    bad = bench_in(venv, "run", "--algo", "broken", "--dataset", "cartpole-mixed")
    assert bad.returncode == 2
    assert bad.stderr.startswith("bench: error: algorithm plugin 'broken' could not be loaded")


def test_the_plugins_author_runs_the_contract_checks(venv):
    code = (
        "from bench.testing import check_algorithm; "
        "from bench_tiny_plugin.algo import TinyBC; check_algorithm(TinyBC, updates=5)"
    )
    res = subprocess.run([venv, "-c", code], capture_output=True, text=True, timeout=600, env=ENV)
    assert res.returncode == 0, res.stderr


def test_the_contract_checks_catch_a_broken_algorithm(venv):
    """A plugin whose stats carry a gradient fails the check, with the reason."""
    code = (
        "from bench.testing import check_update, DISCRETE; "
        "from bench_tiny_plugin.algo import TinyBC\n"
        "class Leaky(TinyBC):\n"
        "    def update(self, batch):\n"
        "        out = super().update(batch)\n"
        "        return {'loss': self.net(batch.obs).mean((1, 2))}\n"
        "check_update(Leaky, (6,), DISCRETE)"
    )
    res = subprocess.run([venv, "-c", code], capture_output=True, text=True, timeout=600, env=ENV)
    assert res.returncode != 0 and "carries a gradient" in res.stderr


def test_a_config_without_gamma_is_refused_at_loading(monkeypatch):
    from dataclasses import dataclass

    from bench.algos.bc import BC
    from bench.algos.plugins import _check

    @dataclass
    class NoGamma:
        lr: float = 1e-3

    class Odd(BC):
        name = "odd"
        Config = NoGamma

    with pytest.raises(TypeError, match="no gamma field"):
        _check("odd", Odd)
