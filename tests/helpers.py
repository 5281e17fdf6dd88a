"""Running the real `bench` console script in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(sys.executable).parent / "bench"


#: Test runs skip the final evaluation (100 CartPole episodes of up to 500 steps would
#: dominate the suite's time) unless a test asks for one; tests of it pass --final-episodes.
NO_FINAL = ("--final-episodes", "0")


def no_final(args) -> list[str]:
    """ARGS as strings, with NO_FINAL after `run` or `sweep` unless ARGS set it (or resume a
    run, which keeps its own)."""
    args = [str(a) for a in args]
    if args[:1] in (["run"], ["sweep"]) and not {"--final-episodes", "--resume"} & set(args):
        args = args[:1] + list(NO_FINAL) + args[1:]
    return args


def bench(*args, env_extra=None, timeout=300) -> subprocess.CompletedProcess:
    """`bench ARGS` in a subprocess; `run` and `sweep` get NO_FINAL unless ARGS set it (or
    resume a run, which keeps its own)."""
    cmd = [str(BENCH)] if BENCH.exists() else [sys.executable, "-m", "bench.cli"]
    args = no_final(args)
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run(cmd + args, capture_output=True, text=True, env=env, timeout=timeout)


def train(results_dir, *, show_progress=False, on_eval=None, **options):
    """One run in this process: RunOptions(**options) into results_dir (final_episodes 0 unless
    given, as NO_FINAL does for the CLI)."""
    from bench.run.config import RunOptions
    from bench.run.loop import run

    opts = RunOptions(**{"final_episodes": 0, **options})
    return run(opts, show_progress=show_progress, on_eval=on_eval, results_dir=Path(results_dir))


def refused(monkeypatch, capsys, argv: list[str], message: str) -> str:
    """`bench ARGV` run in this process ends with exit status 2 and one stderr line,
    `bench: error: ...`, that contains message; returns that line."""
    import pytest

    from bench.cli import main

    monkeypatch.setattr(sys, "argv", ["bench", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2, err
    assert len(err) == 1 and err[0].startswith("bench: error: "), err
    assert message in err[0], err
    return err[0]


KILLPOINT = Path(__file__).parent / "killpoint"


def killed_at(point: str, *args, timeout=600) -> subprocess.CompletedProcess:
    """`bench ARGS` in a subprocess that kills itself (SIGKILL) at `point`, NAME:K:WHERE
    (tests/killpoint/sitecustomize.py): e.g. checkpoint.pt:3:after. Fails loudly when the
    process was not killed there (it ended on its own, or another way)."""
    cmd = [str(BENCH)] if BENCH.exists() else [sys.executable, "-m", "bench.cli"]
    path = os.pathsep.join(p for p in (str(KILLPOINT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BENCH_TEST_KILL": point, "PYTHONPATH": path}
    res = subprocess.run(
        cmd + no_final(args), capture_output=True, text=True, env=env, timeout=timeout
    )
    assert res.returncode == -9, f"not killed at {point} (exit {res.returncode}): {res.stderr}"
    return res


def wait_for(predicate, what: str, timeout: float = 300, every: float = 0.05):
    """Poll until predicate() is true; an AssertionError naming `what` when it never is."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
