import os
import sys

import pytest

# bench's tests are about bench's own algorithms: plugins installed beside it are not loaded
# (tests/test_plugins.py installs one and runs it in a venv of its own)
os.environ["BENCH_PLUGINS"] = "0"


@pytest.fixture(scope="session")
def minari_root(tmp_path_factory):
    """A private Minari root for the whole test session (never the user's ~/.minari)."""
    root = tmp_path_factory.mktemp("minari")
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    yield root
    if old is None:
        os.environ.pop("MINARI_DATASETS_PATH", None)
    else:
        os.environ["MINARI_DATASETS_PATH"] = old


@pytest.fixture(scope="session")
def tiny_cartpole(minari_root):
    """cartpole-mixed built with 3,000 steps (the card's recipe, a smaller size)."""
    from bench.collect.build import build_dataset
    from bench.data.cards import load_card

    card = load_card("cartpole-mixed")
    dataset = build_dataset(card, size=3000)
    return card, dataset


class Done:
    def __init__(self, code, out, err):
        self.returncode, self.stdout, self.stderr = code, out, err


@pytest.fixture
def cli(monkeypatch, capsys):
    """`bench ARGS` in this process (no interpreter start-up): returncode, stdout, stderr; `run`
    and `sweep` get NO_FINAL as `tests.helpers.bench` gives them."""
    from bench.cli import main
    from tests.helpers import no_final

    def call(*args):
        monkeypatch.setattr(sys, "argv", ["bench", *no_final(args)])
        with pytest.raises(SystemExit) as exit_info:
            main()
        out = capsys.readouterr()
        return Done(exit_info.value.code, out.out, out.err)

    return call
