"""Results read back and README written through links: nothing silently dropped or replaced."""

import pytest

from bench.analysis.report import markers, write_into
from bench.errors import BenchError
from bench.results.store import read_runs


def test_a_run_whose_config_json_is_a_folder_is_named_not_dropped(tmp_path):
    (tmp_path / "runs" / "bc__x__s0__1" / "config.json").mkdir(parents=True)
    with pytest.raises(BenchError, match="config.json is not a readable file"):
        read_runs(tmp_path)


def test_a_folder_without_config_json_is_still_skipped(tmp_path):
    (tmp_path / "runs" / "not-a-run").mkdir(parents=True)
    configs, _, _ = read_runs(tmp_path)
    assert configs == {}


def test_writing_into_a_linked_readme_keeps_the_link(tmp_path):
    start, end = markers("s")
    real = tmp_path / "real.md"
    real.write_text(f"a\n{start}\nold\n{end}\nb\n")
    link = tmp_path / "README.md"
    link.symlink_to(real)
    write_into(link, "s", "new\n")
    assert link.is_symlink() and "new" in real.read_text() and "old" not in real.read_text()
