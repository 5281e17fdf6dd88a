"""`bench select` on real runs: kept policies, the selection table, its picks, and bad input."""

import io
import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.cli import main
from bench.ope.fqe import FQEConfig
from bench.ope.select import SELECTION_TABLE, SelectOptions, run_selection
from bench.results.store import read_eval
from bench.run.policies import kept_steps, policy_path

STEPS, EVERY = 300, 100


@pytest.fixture(scope="module")
def results(tiny_cartpole, tmp_path_factory):
    """bc and discrete_cql, 2 seeds each, an evaluation (and a kept policy) every 100 updates."""
    from bench.run.config import RunOptions
    from bench.run.loop import run_job

    out = tmp_path_factory.mktemp("select")
    for algo in ("bc", "discrete_cql"):
        opts = RunOptions(
            algo=algo,
            dataset="cartpole-mixed",
            steps=STEPS,
            eval_every=EVERY,
            eval_episodes=2,
            final_episodes=0,
        )
        run_job(opts, [0, 1], show_progress=False, results_dir=out)
    return out


def select(args, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench", "select", "--quiet", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err.strip().splitlines()


def test_every_evaluation_keeps_its_policy_and_its_discounted_return(results):
    runs = sorted((results / "runs").iterdir())
    assert len(runs) == 4
    for run in runs:
        assert kept_steps(run) == [100, 200, 300]
    evals = read_eval(results)
    assert evals["discounted_return_mean"].notna().all()
    # a CartPole return of R steps of reward 1 has discounted value (1 - 0.99^R) / 0.01 <= R
    assert (evals["discounted_return_mean"] <= evals["return_mean"] + 1e-9).all()


def test_select_writes_one_pick_per_cell_seed_and_method(results, monkeypatch, capsys):
    code, out, err = select(
        ["--results", results, "--steps", 30, "--format", "json"], monkeypatch, capsys
    )
    assert code == 0, err
    metrics = pd.DataFrame(json.loads(out))
    table = pd.read_parquet(results / SELECTION_TABLE)
    assert set(table["method"]) == {"fqe", "q0", "td", "likelihood", "last", "random"}
    assert set(table[table["method"].isin(["q0", "td"])]["algo"]) == {"discrete_cql"}  # has a Q
    picks = table[table["picked"]].groupby(["key", "seed", "method"]).size()
    assert (picks == 1).all() and "random" not in set(table[table["picked"]]["method"])
    assert len(picks) == 2 * 5 + 2 * 3  # seeds x picking methods: discrete_cql 5, bc 3 (no Q)
    last = table[(table["method"] == "last") & table["picked"]]
    assert (last["step"] == STEPS).all()
    # true scores are the evaluation table's
    evals = read_eval(results).set_index(["run_id", "step"])["normalized_score"]
    joined = table.set_index(["run_id", "step"])["true_score"]
    assert (joined.to_numpy() == evals.loc[joined.index].to_numpy()).all()
    # the metrics: regret is never negative; last's regret is the best candidate minus the last
    assert (metrics["regret_1"].dropna() >= 0).all()
    assert {"(all)", "cartpole-mixed"} == set(metrics["dataset"])


def test_fqe_together_equals_one_at_a_time_on_real_runs(results, tmp_path):
    mine = tmp_path / "r"
    shutil.copytree(results, mine)
    fqe = FQEConfig(steps=40)
    opts = dict(methods=("fqe",), fqe=fqe, show_progress=False)
    together, _, _ = run_selection(SelectOptions(mine, vectorize=True, **opts))
    alone, _, _ = run_selection(SelectOptions(mine, vectorize=False, **opts))
    assert len(together) == 12
    pd.testing.assert_series_equal(together["estimate"], alone["estimate"], atol=1e-4, rtol=1e-4)


def _copy(results, tmp):
    mine = tmp / "r"
    shutil.copytree(results, mine)
    (mine / SELECTION_TABLE).unlink(missing_ok=True)
    return mine


def _no_policies(mine):
    for run in (mine / "runs").iterdir():
        shutil.rmtree(run / "policies")


def _corrupt_policy(mine):
    run = sorted((mine / "runs").iterdir())[0]
    policy_path(run, 200).write_bytes(b"not a policy")


def _policy_of_another_run(mine):
    a, b = sorted((mine / "runs").iterdir())[:2]
    shutil.copy(policy_path(b, 200), policy_path(a, 200))


def _other_build(mine):
    run = sorted((mine / "runs").iterdir())[0]
    cfg = json.loads((run / "config.json").read_text())
    cfg["dataset_hash"] = "0" * 12
    from bench.run.config import RunConfig

    fixed = RunConfig.from_json({k: v for k, v in cfg.items() if k not in ("key", "fingerprint")})
    (run / "config.json").write_text(json.dumps(cfg | fixed.to_json()))


BAD = [
    ("no-kept-policies", [], "no kept policies", _no_policies),
    (
        "q0-without-q",
        ["--method", "q0", "--dataset", "cartpole-mixed"],
        "bc has no Q function",
        None,
    ),
    ("mixed-datasets", [], "different datasets in one selection", _other_build),
    ("corrupt-policy", [], "cannot read kept policy", _corrupt_policy),
    ("foreign-policy", [], "is not the kept policy of run", _policy_of_another_run),
    ("unknown-method", ["--method", "fqe,oracle"], "unknown method 'oracle'", None),
    ("zero-steps", ["--steps", "0"], "--steps must be positive", None),
    ("gamma-one", ["--gamma", "1"], "--gamma must be in [0, 1)", None),
    ("nan-lr", ["--lr", "nan"], "--lr must be a positive number", None),
    ("unknown-loss", ["--loss", "l1"], "--loss must be one of: mse, huber", None),
    ("bad-format", ["--format", "xml"], "unknown format 'xml'", None),
    ("unknown-dataset", ["--dataset", "nope"], "--dataset nope: no runs of it", None),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    case, results, tmp_path, monkeypatch, capsys
):
    _, args, message, setup = case
    mine = _copy(results, tmp_path)
    if setup is not None:
        setup(mine)
    code, _, err = select(
        ["--results", mine, "--steps", "5", *args]
        if "--steps" not in args
        else ["--results", mine, *args],
        monkeypatch,
        capsys,
    )
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("bench: error: ") and message in err[0], err
    assert not (mine / SELECTION_TABLE).exists()


def test_a_missing_results_folder_is_one_line(tmp_path, monkeypatch, capsys):
    code, _, err = select(["--results", tmp_path / "nope"], monkeypatch, capsys)
    assert code == 2 and "no such folder" in err[0]


def test_keep_policies_bounds_what_a_run_keeps(tiny_cartpole, tmp_path, cli):
    for keep, expected in (("0", []), ("2", [200, 300])):
        out = tmp_path / keep
        r = cli(
            "run",
            "--algo",
            "bc",
            "--dataset",
            "cartpole-mixed",
            "--steps",
            STEPS,
            "--eval-every",
            EVERY,
            "--eval-episodes",
            1,
            "--keep-policies",
            keep,
            "--results-dir",
            out,
            "--quiet",
        )
        assert r.returncode == 0, r.stderr
        (run,) = (out / "runs").iterdir()
        assert kept_steps(run) == expected
    r = cli(
        "run",
        "--algo",
        "bc",
        "--dataset",
        "cartpole-mixed",
        "--keep-policies",
        "-1",
        "--results-dir",
        tmp_path / "x",
    )
    assert r.returncode == 2 and "--keep-policies must be >= 0" in r.stderr
    assert not Path(tmp_path / "x").exists() or not any((tmp_path / "x").rglob("*.parquet"))


def _csv(r):
    assert r.returncode == 0, r.stderr
    return pd.read_csv(io.StringIO(r.stdout))


def test_leaderboard_ranks_by_the_selected_checkpoint(results, tmp_path, cli):
    mine = _copy(results, tmp_path)
    r = cli("leaderboard", "--results", mine, "--score", "selected:last", "--format", "csv")
    assert r.returncode == 2 and "run `bench select` first" in r.stderr
    assert cli("select", "--results", mine, "--method", "last", "-q").returncode == 0
    picked = _csv(
        cli("leaderboard", "--results", mine, "--score", "selected:last", "--format", "csv")
    )
    last = _csv(
        cli("leaderboard", "--results", mine, "--score", "last", "--last-k", "1", "--format", "csv")
    )
    cols = ["algo", "dataset", "seeds", "iqm"]
    assert len(picked) == 2
    pd.testing.assert_frame_equal(picked[cols], last[cols])
    r = cli("leaderboard", "--results", mine, "--score", "selected:fqe")
    assert r.returncode == 2 and "no picks of method fqe" in r.stderr


def test_the_selection_figure_is_drawn_from_the_table(results, tmp_path, cli):
    mine = _copy(results, tmp_path)
    r = cli("plot", "--results", mine, "--kind", "selection", "--out", tmp_path / "p")
    assert r.returncode == 2 and "run `bench select` first" in r.stderr
    assert cli("select", "--results", mine, "--method", "likelihood,last", "-q").returncode == 0
    r = cli("plot", "--results", mine, "--out", tmp_path / "p")  # all: selection included
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "p" / "selection.png").stat().st_size > 0


def test_over_configs_picks_among_every_configuration_of_an_algorithm(results, tmp_path, cli):
    mine = _copy(results, tmp_path)
    r = cli(
        "run",
        "--algo",
        "bc",
        "--dataset",
        "cartpole-mixed",
        "--seeds",
        "0-1",
        "--steps",
        200,
        "--eval-every",
        EVERY,
        "--eval-episodes",
        2,
        "--set",
        "hidden_sizes=32,32",
        "--results-dir",
        mine,
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    for over in ("checkpoints", "configs"):
        r = cli(
            "select",
            "--results",
            mine,
            "--method",
            "last,likelihood",
            "--over",
            over,
            "-q",
            "--format",
            "csv",
        )
        assert r.returncode == 0, r.stderr
    table = pd.read_parquet(mine / SELECTION_TABLE)
    assert len(table) == 2 * 2 * (12 + 4)  # both scopes kept, 2 methods, 16 candidates
    configs = table[table.cell == "*"]
    picks = configs[configs.picked].groupby(["algo", "seed", "method"]).size()
    assert (picks == 1).all() and len(picks) == 2 * 2 * 2  # algos x seeds x methods
    bc_last = configs[configs.picked & (configs.algo == "bc") & (configs.method == "last")]
    assert (bc_last.step == STEPS).all()  # the later checkpoint of the two bc configurations
    per_key = table[(table.cell != "*") & table.picked]
    assert len(per_key.groupby(["key", "seed", "method"])) == 3 * 2 * 2
    r = cli("select", "--results", mine, "--over", "runs")
    assert r.returncode == 2 and "--over must be one of" in r.stderr


def test_td_and_likelihood_score_the_held_out_episodes(tiny_cartpole, tmp_path, cli, monkeypatch):
    from bench.data.data import split_transitions
    from bench.ope import proxies
    from bench.run.config import RunConfig

    out = tmp_path / "h"
    for holdout in ("0.25", "0"):
        r = cli(
            "run",
            "--algo",
            "discrete_cql",
            "--dataset",
            "cartpole-mixed",
            "--seeds",
            "0-1",
            "--steps",
            200,
            "--eval-every",
            EVERY,
            "--eval-episodes",
            1,
            "--holdout",
            holdout,
            "--results-dir",
            out,
            "--quiet",
        )
        assert r.returncode == 0, r.stderr
    configs = [
        RunConfig.from_json(json.loads((run / "config.json").read_text()))
        for run in (out / "runs").iterdir()
    ]
    assert sorted(c.holdout for c in configs) == [0, 0, 0.25, 0.25]
    assert len({c.key() for c in configs}) == 2  # a holdout is another configuration
    seen = []  # (holdout of the candidates, the transitions td scored them on)
    td = proxies.td

    def spy(algo, data, idx):
        seen.append((data, idx))
        return td(algo, data, idx)

    monkeypatch.setattr(proxies, "td", spy)
    table, _, _ = run_selection(
        SelectOptions(out, methods=("td", "likelihood", "last"), show_progress=False)
    )
    assert len(seen) == 2
    held_sets = []
    for data, idx in seen:
        train, held = split_transitions(data, 0.25)
        held_sets.append(set(idx.tolist()) <= set(held.tolist()))
    assert sorted(held_sets) == [False, True]  # one configuration on held-out episodes only
    labels = table[table.method.isin(["td", "likelihood"])].groupby("key")["settings"].unique()
    assert sorted(v for (v,) in labels) == ["held-out episodes (0.25)", "training transitions"]
    # picks among configurations would compare scores taken on different transitions
    r = cli("select", "--results", out, "--method", "td", "--over", "configs", "-q")
    assert r.returncode == 2 and "different --holdout (0 and 0.25)" in r.stderr
    r = cli("select", "--results", out, "--method", "last", "--over", "configs", "-q")
    assert r.returncode == 0, r.stderr
    r = cli("leaderboard", "--results", out, "--score", "last")
    assert r.returncode == 0 and "held out" in r.stdout and "0/0.25" in r.stdout, r.stderr


def test_a_run_with_a_holdout_samples_its_training_episodes_only(tiny_cartpole):
    from bench.data.data import split_transitions
    from bench.run.config import RunOptions
    from bench.run.prepare import prepare, setup_job

    for holdout in (0.25, 0.0):
        prep = prepare(RunOptions(algo="bc", dataset="cartpole-mixed", holdout=holdout), False)
        _, sampler, data = setup_job(prep, torch.device("cpu"), [0, 1])
        if holdout:
            assert torch.equal(sampler.rows, split_transitions(data, holdout)[0])
        else:
            assert sampler.rows is None  # every transition, drawn as before holdouts existed
