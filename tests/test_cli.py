"""The command line: end-to-end run on a tiny dataset, the results schema, one-line errors."""

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from bench.results.schema import EVAL_SCHEMA, TRAIN_SCHEMA
from bench.run.config import SCHEMA_VERSION, RunConfig
from tests.helpers import bench

EVAL_DTYPES = {
    "run_id": "str",
    "key": "str",
    "algo": "str",
    "dataset": "str",
    "seed": "int64",
    "step": "int64",
    "wall_time_s": "float64",
    "return_mean": "float64",
    "return_std": "float64",
    "episodes": "int64",
    "ref_min": "float64",
    "ref_max": "float64",
    "ref_source": "str",
    "normalized_score": "float64",
    "discounted_return_mean": "float64",
    "eval_time_s": "float64",
}
TRAIN_DTYPES = {"run_id": "str", "step": "int64", "metric": "str", "value": "float64"}


@pytest.fixture(scope="module")
def finished_run(tiny_cartpole, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    res = bench(
        "run",
        "--algo",
        "discrete_bcq",
        "--dataset",
        "cartpole-mixed",
        "--steps",
        300,
        "--eval-every",
        150,
        "--eval-episodes",
        3,
        "--batch-size",
        32,
        "--seed",
        7,
        "--results-dir",
        results,
        "--quiet",
        "--set",
        "hidden_sizes=32,32",
    )
    assert res.returncode == 0, res.stderr
    return results, res


@pytest.fixture(scope="module")
def run_dir(finished_run):
    """The run directory: `bench run` prints it as its last line."""
    return finished_run[1].stdout.strip().splitlines()[-1]


def test_run_prints_scores_and_the_run_directory(finished_run, run_dir):
    results, res = finished_run
    assert run_dir.startswith(str(results / "runs" / "discrete_bcq__cartpole-mixed__s7__"))
    assert "normalized score" in res.stdout


def test_eval_table_has_the_documented_columns_and_dtypes(run_dir):
    df = pd.read_parquet(f"{run_dir}/eval.parquet")
    assert {c: str(t) for c, t in df.dtypes.items()} == EVAL_DTYPES
    assert pq.read_schema(f"{run_dir}/eval.parquet").equals(EVAL_SCHEMA, check_metadata=False)
    assert df.step.tolist() == [150, 300]
    assert (df.episodes == 3).all() and (df.seed == 7).all()
    row = df.iloc[-1]
    expected = 100 * (row.return_mean - row.ref_min) / (row.ref_max - row.ref_min)
    assert row.normalized_score == pytest.approx(expected)
    assert row.ref_max == 500.0  # the expert controller balances every episode


def test_train_table_is_tidy(run_dir):
    df = pd.read_parquet(f"{run_dir}/train.parquet")
    assert {c: str(t) for c, t in df.dtypes.items()} == TRAIN_DTYPES
    assert pq.read_schema(f"{run_dir}/train.parquet").equals(TRAIN_SCHEMA, check_metadata=False)
    assert set(df.metric) == {"loss", "q_loss", "i_loss", "reg_loss", "updates_per_s"}
    assert df.step.max() == 300


def test_config_and_checkpoint(run_dir):
    cfg = json.loads(open(f"{run_dir}/config.json").read())
    assert cfg["algo"] == "discrete_bcq" and cfg["dataset"] == "cartpole-mixed"
    assert cfg["algo_config"]["hidden_sizes"] == [32, 32]
    assert cfg["preset"] == "small"  # the card's preset
    assert len(cfg["dataset_hash"]) == 16 and cfg["schema_version"] == SCHEMA_VERSION
    assert cfg["device"] == "cpu" and cfg["compile"] is False  # auto: no CUDA here
    assert cfg["key"] == RunConfig.from_json(cfg).key()
    assert set(pd.read_parquet(f"{run_dir}/eval.parquet").key) == {cfg["key"]}
    assert {"torch", "minari", "gymnasium"} <= set(cfg["provenance"]["versions"])
    ckpt = torch.load(f"{run_dir}/checkpoint.pt", weights_only=False)
    assert ckpt["algo"]["num_updates"] == 300


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--algo", "dqn", "--dataset", "cartpole-mixed"],
            "unknown algorithm 'dqn'; choose one of: ",
        ),
        (
            ["--algo", "discrete_bcq", "--dataset", "nope"],
            "unknown dataset 'nope'; choose one of: ",
        ),
        (
            ["--algo", "discrete_bcq", "--dataset", "cartpole-mixed", "--set", "lr=x"],
            "bad value 'x'",
        ),
        (
            ["--algo", "discrete_bcq", "--dataset", "cartpole-mixed", "--set", "zz=1"],
            "unknown config key",
        ),
        (
            ["--algo", "discrete_bcq", "--dataset", "cartpole-mixed", "--steps", "0"],
            "--steps must be positive",
        ),
        (
            ["--algo", "discrete_bcq", "--dataset", "cartpole-mixed", "--preset", "x"],
            "unknown preset",
        ),
        (
            ["--algo", "bcq", "--dataset", "cartpole-mixed"],
            "'bcq' does not handle discrete actions",
        ),
        (["--algo", "bc", "--dataset", "cartpole-mixed", "--device", "cuda:7"], "device 'cuda:7'"),
    ],
)
def test_user_errors_are_one_line_exit_2_and_write_nothing(args, message, tmp_path, minari_root):
    res = bench("run", *args, "--results-dir", tmp_path / "r")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "r").exists()


def test_unknown_algo_names_the_choices(minari_root):
    res = bench("run", "--algo", "dqn", "--dataset", "cartpole-mixed")
    assert "discrete_bcq" in res.stderr


def test_algos_lists_defaults_and_presets():
    res = bench("algos")
    assert res.returncode == 0
    assert "discrete_bcq" in res.stdout and "unlikely_action_threshold" in res.stdout
    # discrete_bcq's target period: its default, then each preset's value on a line of its own
    assert "8000" in res.stdout and "presets" in res.stdout
    assert "small: 320" in res.stdout and "minatar: 1000" in res.stdout


def test_datasets_list_and_info(tiny_cartpole):
    res = bench("datasets", "list")
    assert (
        res.returncode == 0 and "cartpole-mixed" in res.stdout and "cartpole-expert" in res.stdout
    )
    res = bench("datasets", "info", "cartpole-mixed")
    assert res.returncode == 0, res.stderr
    assert "3,000" in res.stdout and "ref_max 500.00" in res.stdout


def test_perf_reports_atari_loading_memory(tmp_path):
    """`bench perf` memory part alone, on a small synthetic Atari dataset."""
    out = tmp_path / "perf.json"
    res = bench(
        "perf",
        "--algos",
        "bc",
        "--threads",
        "1",
        "--repeats",
        "1",
        "--min-time",
        "0.05",
        "--no-acting",
        "--memory-sizes",
        "3000",
        "--json",
        out,
    )
    assert res.returncode == 0, res.stderr
    import json

    mem = json.loads(out.read_text())["atari_memory"][0]
    assert mem["transitions"] == 3000 and mem["frame_bytes"] == 3003 * 84 * 84
    assert 0.5 < mem["rss_over_frames"] < 3.0  # small n: fixed overheads weigh more


@pytest.mark.parametrize("debug", ["1", None])
def test_bench_debug_shows_the_traceback_behind_an_error_line(debug, cli, monkeypatch):
    def parse_seeds(text):
        try:
            int("not a number")
        except ValueError:
            from bench.errors import BenchError

            raise BenchError("bad seeds, one line") from None

    monkeypatch.setattr("bench.sweep.parse_seeds", parse_seeds)
    if debug:
        monkeypatch.setenv("BENCH_DEBUG", debug)
    else:
        monkeypatch.delenv("BENCH_DEBUG", raising=False)
    res = cli("sweep", "--algo", "bc", "--dataset", "cartpole-mixed", "--seeds", "0")
    assert res.returncode == 2 and res.stderr.endswith("bench: error: bad seeds, one line\n")
    if debug:  # the hidden cause too, for a bug report
        assert "Traceback" in res.stderr and "ValueError: invalid literal" in res.stderr
    else:
        assert res.stderr == "bench: error: bad seeds, one line\n"
