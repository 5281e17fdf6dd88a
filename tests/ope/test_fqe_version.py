"""FQE's version is part of what identifies selection results: every fqe row's settings start
with it, and picks made by another FQE are refused rather than scored as this bench's."""

import pandas as pd
import pytest

from bench.analysis.scores import ScoreSpec, load_results
from bench.errors import BenchError
from bench.ope.fqe import FQE_VERSION, FQEConfig, settings, settings_version
from bench.ope.select import SELECTION_TABLE, write_selection
from tests.analysis.fake_runs import make_run


def test_settings_start_with_the_fqe_version():
    line = settings(FQEConfig())
    assert line.startswith(f"version={FQE_VERSION} gamma=0.99 ")
    assert settings_version(line) == FQE_VERSION
    assert settings_version("gamma=0.99 lr=0.0001") is None  # written before versions


def _results_with_picks(tmp_path, fqe_settings: str):
    run_id = make_run(tmp_path, "bc", "ds-a", 0, [10, 30])
    key = load_results(tmp_path).runs.key.iloc[0]
    rows = [
        {
            "run_id": run_id,
            "key": key,
            "algo": "bc",
            "dataset": "ds-a",
            "seed": 0,
            "step": step,
            "method": "fqe",
            "cell": key,
            "estimate": est,
            "estimate_normalized": float("nan"),
            "true_score": true,
            "true_value_normalized": float("nan"),
            "picked": picked,
            "settings": fqe_settings,
        }
        for step, est, true, picked in ((100, 5.0, 10.0, False), (200, 9.0, 30.0, True))
    ]
    write_selection(tmp_path / SELECTION_TABLE, pd.DataFrame(rows))
    return run_id


def test_picks_of_this_fqe_score_the_runs(tmp_path):
    run_id = _results_with_picks(tmp_path, settings(FQEConfig()))
    runs = load_results(tmp_path, ScoreSpec("selected:fqe")).runs.set_index("run_id")
    assert runs.loc[run_id, "score"] == 30.0


@pytest.mark.parametrize(
    ("made_by", "said"),
    [("gamma=0.99 lr=0.0001", "no version"), (f"version={FQE_VERSION + 1} gamma=0.99", "v")],
)
def test_picks_of_another_fqe_are_refused(tmp_path, made_by, said):
    _results_with_picks(tmp_path, made_by)
    with pytest.raises(BenchError) as e:
        load_results(tmp_path, ScoreSpec("selected:fqe"))
    msg = str(e.value)
    assert f"its fqe picks were made by FQE {said}" in msg and "run `bench select` again" in msg
    assert f"this bench's FQE is v{FQE_VERSION}" in msg and "\n" not in msg
