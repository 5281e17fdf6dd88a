"""A kill -9 at a chosen point of a bench process, for the tests that kill runs and resume them:
on PYTHONPATH (tests.helpers.killed_at), it makes the process SIGKILL itself at the K-th atomic
write of a file NAME, set by BENCH_TEST_KILL=NAME:K:WHERE. WHERE is `after` (the write is
complete: a kill right after that checkpoint or table) or `mid-write` (half the bytes are in the
temp file and the rename never happens: a kill in the middle of a write). Deterministic, unlike
a kill after a random sleep, so a failure replays."""

import os

SPEC = os.environ.get("BENCH_TEST_KILL")
if SPEC:
    import signal
    import tempfile

    import bench.results.schema as schema

    NAME, K, WHERE = SPEC.split(":")
    real = schema._atomic_write
    seen = {"n": 0}

    def _write(path, data):
        if path.name != NAME:
            return real(path, data)
        seen["n"] += 1
        if seen["n"] == int(K) and WHERE == "mid-write":
            fd, _ = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.write(fd, data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        real(path, data)
        if seen["n"] == int(K) and WHERE == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    schema._atomic_write = _write
