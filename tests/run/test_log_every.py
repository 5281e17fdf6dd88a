"""--log-every: the training stats' window, declared once (RunOptions) and stored in config.json;
not part of the run key, kept by a resume, spelled by the rerun command."""

from __future__ import annotations

import json

import pandas as pd

from bench.run.config import RunConfig
from tests.helpers import refused, train

SMALL = dict(
    algo="bc", dataset="cartpole-mixed", steps=60, eval_every=30, eval_episodes=1, batch_size=16
)


def test_windows_follow_log_every_and_close_at_evaluations(tiny_cartpole, tmp_path):
    result = train(tmp_path, log_every=7, **SMALL)
    steps = sorted(set(pd.read_parquet(result.run_dir / "train.parquet").step))
    assert steps == [7, 14, 21, 28, 30, 35, 42, 49, 56, 60]
    cfg = RunConfig.from_json(json.loads((result.run_dir / "config.json").read_text()))
    assert cfg.log_every == 7 and "--log-every 7" in cfg.command()
    default = train(tmp_path / "default", **SMALL)
    assert sorted(set(pd.read_parquet(default.run_dir / "train.parquet").step)) == [30, 60]
    assert default.config.key() == cfg.key()  # how stats are logged changes no number
    assert "--log-every" not in default.config.command()


def test_bad_log_every_is_one_line(monkeypatch, capsys):
    refused(
        monkeypatch,
        capsys,
        ["run", "--algo", "bc", "--dataset", "x", "--log-every", "0"],
        "--log-every must be positive",
    )
