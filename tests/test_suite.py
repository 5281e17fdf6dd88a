"""Named suites: the TOML declaration, its checks, and `bench suite run` recording the suite."""

import json
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.suite import load_suite, suite_names
from tests.helpers import bench

GOOD = """
name = "mini"
version = 2
description = "two algorithms on the tiny cartpole"
seeds = "0-1"

[[grid]]
datasets = ["cartpole-mixed"]
algos = ["bc", "discrete_bcq"]
steps = 20
eval_every = 10
eval_episodes = 2
final_episodes = 3
batch_size = 16
set = { hidden_sizes = "16" }
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mini.toml"
    path.write_text(text)
    return str(path)


def test_the_shipped_suites_load_and_pin_their_budgets():
    assert {"smoke"} <= set(suite_names())
    for name in suite_names():
        s = load_suite(name)
        assert s.name == name and s.version >= 1 and len(s.seeds) >= 5
        for g in s.grids:
            assert None not in (g.options.steps, g.options.eval_every, g.options.eval_episodes,
                                g.options.final_episodes, g.options.batch_size)  # fmt: skip


def test_a_suite_file_parses(tmp_path):
    s = load_suite(write(tmp_path, GOOD))
    assert (s.name, s.version, s.seeds, s.cells()) == ("mini", 2, [0, 1], 4)
    (g,) = s.grids
    assert g.algos == ["bc", "discrete_bcq"] and g.options.final_episodes == 3
    assert g.options.overrides == {"hidden_sizes": "16"} and len(s.sha256) == 64


@pytest.mark.parametrize("edit, message", [
    (("version = 2", "version = 0"), "version must be >= 1"),
    (("version = 2", 'version = "2"'), "'version' must be a int"),
    (("steps = 20\n", ""), "pin steps"),
    (("steps = 20", "steps = -5"), "--steps must be positive"),
    (("final_episodes = 3", "final_episodes = -1"), "--final-episodes must be >= 0"),
    (('algos = ["bc", "discrete_bcq"]', "algos = []"), "'algos' must be a non-empty list"),
    (('seeds = "0-1"', 'seeds = "1-0"'), "bad --seeds range"),
    (("batch_size = 16", "batch_size = 16\nlr = 3"), "unknown key(s) lr"),
    (('name = "mini"', 'name = "mini"\ncolour = 1'), "unknown key(s) colour"),
    (("[[grid]]", "[[grid]]\n[[grid]]"), "grid 1: pin steps, eval_every"),
    (("version = 2", "version = 2 ="), "not valid TOML"),
])  # fmt: skip
def test_a_bad_suite_file_is_one_line(tmp_path, edit, message):
    with pytest.raises(BenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_suite(write(tmp_path, GOOD.replace(*edit)))


def test_a_pair_in_two_grids_is_refused(tmp_path):
    grid = GOOD[GOOD.index("[[grid]]") :]
    with pytest.raises(BenchError, match="already in an earlier grid"):
        load_suite(write(tmp_path, GOOD + grid))


def test_unknown_suite_names_the_shipped_ones():
    res = bench("suite", "run", "nope")
    assert res.returncode == 2 and "unknown suite 'nope'" in res.stderr and "smoke" in res.stderr


def test_suite_run_records_the_suite_in_every_run_and_keeps_the_file(tiny_cartpole, tmp_path):
    path = write(tmp_path, GOOD)
    out = tmp_path / "results"
    res = bench("suite", "run", path, "--results-dir", out, "--workers", "2", "-q", timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 4
    suite = load_suite(path)
    for d in runs:
        cfg = json.loads((d / "config.json").read_text())
        assert cfg["suite"] == {"name": "mini", "version": 2, "sha256": suite.sha256}
        assert cfg["final_episodes"] == 3 and (d / "final.parquet").is_file()
    assert (out / "suites" / "mini-v2.toml").read_text() == Path(path).read_text()
    again = bench("suite", "run", path, "--results-dir", out, "-q")
    assert again.returncode == 0 and "0 new, 0 to resume, 4 complete" in again.stdout
    board = bench("leaderboard", "--results", out)
    assert board.returncode == 0 and "suite mini v2" in board.stdout


def test_report_table_compares_with_bc_on_each_dataset_and_fills_the_readme(tmp_path):
    from bench.analysis.report import markers, report_markdown, write_into
    from tests.analysis.fake_runs import make_run

    for seed in range(3):
        make_run(tmp_path, "bc", "ds", seed, [10, 20], final=10.0 + seed, final_episodes=50)
        make_run(tmp_path, "iql", "ds", seed, [10, 20], final=60.0 + seed, final_episodes=50)
    text = report_markdown(tmp_path, reps=200)
    lines = text.splitlines()
    assert lines[0].startswith("| dataset | algo | seeds | IQM [95% CI] | P(> bc) [95% CI]")
    assert lines[2].startswith("| ds | bc | 3 | 11.0 [10.0, 12.0] | - |")
    assert lines[3].startswith("| ds | iql | 3 | 61.0 [60.0, 62.0] | 1.00 [1.00, 1.00] |")
    assert "50 episodes per scored evaluation" in text
    readme = tmp_path / "README.md"
    start, end = markers("mini")
    readme.write_text(f"# t\n{start}\nold\n{end}\nafter\n")
    write_into(readme, "mini", text)
    doc = readme.read_text()
    assert "old" not in doc and text in doc and doc.endswith(f"{end}\nafter\n")
    readme.write_text("no markers\n")
    with pytest.raises(BenchError, match="needs the lines"):
        write_into(readme, "mini", text)
    assert readme.read_text() == "no markers\n"  # nothing written


def test_runs_record_the_hardware(tiny_cartpole, tmp_path):
    from tests.helpers import train

    r = train(tmp_path, algo="bc", dataset="cartpole-mixed", steps=10, eval_every=10,
              eval_episodes=1, final_episodes=0, batch_size=16)  # fmt: skip
    hw = json.loads((r.run_dir / "config.json").read_text())["provenance"]["hardware"]
    assert hw["cores"] >= 1 and isinstance(hw["cpu"], str) and hw["cpu"] and "gpu" not in hw
