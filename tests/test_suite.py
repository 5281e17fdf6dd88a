"""Named suites: the TOML declaration, its checks, and `bench suite run` recording the suite."""

import json
import re
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
            assert None not in (
                g.options.steps,
                g.options.eval_every,
                g.options.eval_episodes,
                g.options.final_episodes,
                g.options.batch_size,
            )


def test_a_suite_file_parses(tmp_path):
    s = load_suite(write(tmp_path, GOOD))
    assert (s.name, s.version, s.seeds, s.cells()) == ("mini", 2, [0, 1], 4)
    (g,) = s.grids
    assert g.algos == ["bc", "discrete_bcq"] and g.options.final_episodes == 3
    assert g.options.overrides == {"hidden_sizes": "16"} and len(s.sha256) == 64


@pytest.mark.parametrize(
    "edit, message",
    [
        (("version = 2", "version = 0"), "version must be in 1..1,000,000, got 0"),
        (("version = 2", "version = 10000000000"), "version must be in 1..1,000,000"),
        (("version = 2", 'version = "2"'), "'version' must be a int"),
        (("steps = 20\n", ""), "pin steps"),
        (("steps = 20", "steps = -5"), "--steps must be positive"),
        (("final_episodes = 3", "final_episodes = -1"), "--final-episodes must be >= 0"),
        (('algos = ["bc", "discrete_bcq"]', "algos = []"), "'algos' must be a non-empty list"),
        (('seeds = "0-1"', 'seeds = "1-0"'), "mini.toml: bad seeds range"),
        (('seeds = "0-1"', 'seeds = "0-99999999"'), "mini.toml: seeds '0-99999999' asks for more"),
        (('seeds = "0-1"', 'seeds = "0-99999999999"'), "mini.toml: bad seeds '0-99999999999'"),
        (('name = "mini"', 'name = "../../escaped"'), "name '../../escaped' is not a suite name"),
        (('name = "mini"', 'name = ""'), "name '' is not a suite name"),
        (('name = "mini"', 'name = "a\\u0000b"'), "name 'a\\x00b' is not a suite name"),
        (('name = "mini"', 'name = "a/b"'), "name 'a/b' is not a suite name"),
        (('name = "mini"', 'name = ".hidden"'), "name '.hidden' is not a suite name"),
        (('name = "mini"', 'name = "' + "x" * 65 + '"'), "is not a suite name"),
        (
            ('set = { hidden_sizes = "16" }', "set = { hidden_sizes = [32, 32] }"),
            "set.hidden_sizes is an array; values are strings, numbers or booleans (write a list as a "
            'string: hidden_sizes = "64,64")',
        ),
        (
            ('set = { hidden_sizes = "16" }', "set = { hidden_sizes = { a = 1 } }"),
            "set.hidden_sizes is a dict",
        ),
        (('set = { hidden_sizes = "16" }', "set = { lr = nan }"), "bad value 'nan' for bc.lr"),
        (
            ('set = { hidden_sizes = "16" }', "set = { nope = 1 }"),
            "unknown config key for bc 'nope'",
        ),
        (('set = { hidden_sizes = "16" }', 'set = "lr=1"'), "'set' must be a table"),
        (("batch_size = 16", "batch_size = 16\npreset = 3"), "'preset' must be a str, got 3"),
        (("batch_size = 16", 'batch_size = 16\npreset = "huge"'), "unknown preset for bc 'huge'"),
        (("batch_size = 16", "batch_size = 16.5"), "--batch-size must be an integer"),
        (('algos = ["bc", "discrete_bcq"]', 'algos = ["bc", "nope"]'), "unknown algorithm 'nope'"),
        (
            ('description = "two algorithms on the tiny cartpole"', "description = { a = 1 }"),
            "'description' must be a str",
        ),
        (("batch_size = 16", "batch_size = 16\nlr = 3"), "unknown key(s) lr"),
        (('name = "mini"', 'name = "mini"\ncolour = 1'), "unknown key(s) colour"),
        (("[[grid]]", "[[grid]]\n[[grid]]"), "grid 1: pin steps, eval_every"),
        (("version = 2", "version = 2 ="), "not valid TOML"),
    ],
)
def test_a_bad_suite_file_is_one_line(tmp_path, edit, message):
    with pytest.raises(BenchError, match=re.escape(message)):
        load_suite(write(tmp_path, GOOD.replace(*edit)))


def test_a_boolean_in_set_is_passed_as_the_cli_spells_it(tmp_path):
    s = load_suite(
        write(
            tmp_path,
            GOOD.replace(
                'set = { hidden_sizes = "16" }', 'set = { hidden_sizes = "16", lr = 0.5 }'
            ),
        )
    )
    assert s.grids[0].options.overrides == {"hidden_sizes": "16", "lr": "0.5"}
    from bench.suite import _overrides

    assert _overrides({"flag": True}, "w") == {"flag": "true"}


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


REPORTED = """
name = "rep"
version = 1
seeds = "0-2"

[[grid]]
datasets = ["ds"]
algos = ["bc", "iql"]
steps = 200
eval_every = 100
eval_episodes = 10
final_episodes = 50
batch_size = 64
"""


def test_report_shows_only_the_suites_own_runs(tmp_path, cli):
    """Runs of other configurations or seeds in the same folder are left out of the suite's
    table (and counted), never published as the suite's."""
    from tests.analysis.fake_runs import make_run

    path = tmp_path / "rep.toml"
    path.write_text(REPORTED)
    res = tmp_path / "res"
    own = dict(final_episodes=50)
    for seed in range(3):
        make_run(res, "bc", "ds", seed, [10, 20], final=10.0 + seed, **own)
        make_run(res, "iql", "ds", seed, [10, 20], final=60.0 + seed, **own)
    make_run(res, "bc", "ds", 7, [10, 20], final=99.0, **own)  # a seed the suite has not
    make_run(res, "iql", "ds", 0, [10, 20, 30], final=99.0, suffix="long", **own)  # 300 steps
    make_run(res, "discrete_cql", "ds", 0, [10, 20], final=99.0, **own)  # not in the grid
    make_run(res, "bc", "ds", 0, [10, 20], final=99.0, suffix="h", holdout=0.5, **own)
    make_run(res, "bc", "other", 0, [10, 20], final=99.0, **own)  # another dataset
    out = cli("suite", "report", path, "--results-dir", res)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ds")]
    assert len(rows) == 2 and rows[0].startswith("| ds | bc | 3 | 11.0 [10.0, 12.0] |")
    assert rows[1].startswith("| ds | iql | 3 | 61.0 [60.0, 62.0] |")
    assert "99" not in out.stdout and "other" not in out.stdout
    assert out.stderr.strip() == (
        f"suite rep; 5 other run(s) under {res}/runs are not this suite's (another "
        "configuration or seed) and were left out"
    )
    readme = tmp_path / "README.md"
    readme.write_text(
        "<!-- bench suite report rep: start -->\n<!-- bench suite report rep: end -->\n"
    )
    out = cli("suite", "report", path, "--results-dir", res, "--readme", readme)
    assert out.returncode == 0 and "5 other run(s)" in out.stdout
    assert "| ds | bc | 3 |" in readme.read_text() and "99" not in readme.read_text()


def test_report_without_the_suites_runs_is_one_line(tmp_path, cli):
    from tests.analysis.fake_runs import make_run

    path = tmp_path / "rep.toml"
    path.write_text(REPORTED)
    make_run(tmp_path / "res", "bc", "ds", 0, [10, 20], final=1.0)  # no final_episodes: other
    out = cli("suite", "report", path, "--results-dir", tmp_path / "res")
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1
    assert err[0] == (
        f"bench: error: no runs of suite rep v1 under {tmp_path}/res/runs (1 run(s) "
        f"of other configurations or seeds); run it with `bench suite run {path}`"
    )
    assert not (tmp_path / "res" / "suites").exists()


def test_suite_run_refuses_an_escaping_name_before_writing(tmp_path, cli, monkeypatch):
    """`name = "../../escaped"` once wrote results to ./escaped and the suite copy outside
    results/suites; now the file is refused when read, and nothing is written anywhere."""
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, GOOD.replace('name = "mini"', 'name = "../../escaped"'))
    out = cli("suite", "run", path, "-q")
    assert out.returncode == 2 and "is not a suite name" in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mini.toml"]


def test_runs_record_the_hardware(tiny_cartpole, tmp_path):
    from tests.helpers import train

    r = train(
        tmp_path,
        algo="bc",
        dataset="cartpole-mixed",
        steps=10,
        eval_every=10,
        eval_episodes=1,
        final_episodes=0,
        batch_size=16,
    )
    hw = json.loads((r.run_dir / "config.json").read_text())["provenance"]["hardware"]
    assert hw["cores"] >= 1 and isinstance(hw["cpu"], str) and hw["cpu"] and "gpu" not in hw


def test_without_the_dataset_here_a_run_of_other_code_versions_is_not_the_suites(
    tmp_path, monkeypatch
):
    """The card is known but its dataset is not built here: a run matches by every field of
    its key but the dataset's content, the code's versions included."""
    import dataclasses

    from bench.data.cards import load_card
    from bench.run.config import resolve
    from bench.suite import _matcher

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "empty"))
    grid = load_suite("smoke").grids[1]  # cartpole-mixed
    algo, dataset = grid.algos[0], grid.datasets[0]
    matches = _matcher(grid, algo, dataset)
    opts = dataclasses.replace(grid.options, algo=algo, dataset=dataset, device="cpu")
    same = resolve(opts, load_card(dataset), "any content")
    assert matches(same)
    assert not matches(dataclasses.replace(same, versions={**same.versions, "algo": 99}))
    assert not matches(dataclasses.replace(same, versions=None))  # written before versions
