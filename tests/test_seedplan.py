"""The seed plan (bench.seeding): every env seed and random stream comes from (purpose, seed,
index), the env-seed ranges of different purposes and seeds are disjoint over the whole allowed
seed range, and nothing in the package seeds an env or a generator another way."""

import re
from pathlib import Path

import numpy as np
import pytest

from bench import seeding
from bench.seeding import MAX_SEED, PURPOSE_SPAN, PURPOSES, SEED_STRIDE, env_seed, rng, stream_seed

PACKAGE = Path(seeding.__file__).parent


def test_ranges_are_disjoint_over_the_full_seed_range():
    """Interval arithmetic over every purpose and the extreme seeds and indices: purpose p's
    seeds fill [p * SPAN, (p + 1) * SPAN) and seed s of it [.. + s * STRIDE, .. + (s + 1) * STRIDE)."""
    spans = []
    for p in PURPOSES:
        lo, hi = env_seed(p, 0, 0), env_seed(p, MAX_SEED, SEED_STRIDE - 1)
        assert hi - lo + 1 == (MAX_SEED + 1) * SEED_STRIDE == PURPOSE_SPAN  # no gap, no overlap
        spans.append((lo, hi))
        # consecutive seeds of one purpose abut, never overlap
        for s in (0, 1, 12345, MAX_SEED - 1):
            assert env_seed(p, s, SEED_STRIDE - 1) + 1 == env_seed(p, s + 1, 0)
    spans.sort()
    for (_, hi), (lo, _) in zip(spans, spans[1:], strict=False):
        assert hi < lo
    # every env seed fits a signed 64-bit integer (numpy, gymnasium, ALE take it)
    assert spans[-1][1] < 2**63


def test_the_collision_of_the_old_seeds_is_gone():
    """A card with seed 1 used to reset its build episodes on 1_000_003 + k, the evaluation env
    seeds 1_000_000 + 1000 s + i of run seed 0."""
    build = {env_seed("build", 1, k) for k in range(1000)}
    evaluation = {env_seed(p, s, i) for p in ("eval", "final") for s in range(3) for i in range(10)}
    assert not build & evaluation


def test_build_seed_0_keeps_its_episode_seeds_and_numpy_stream():
    """Shipped cards (build seed 0) reset episode k with seed k and draw epsilon from
    default_rng(0), as they always did: their datasets keep their content."""
    assert [env_seed("build", 0, k) for k in range(5)] == [0, 1, 2, 3, 4]
    assert rng("build", 0).random(4).tolist() == np.random.default_rng(0).random(4).tolist()
    assert rng("build", 7).random(4).tolist() == np.random.default_rng(7).random(4).tolist()


def test_streams_differ_by_purpose_seed_and_index():
    draws = {
        (p, s, i): rng(p, s, i).integers(2**62) for p in PURPOSES for s in (0, 1) for i in (0, 1)
    }
    assert len(set(draws.values())) == len(draws)
    seeds = {stream_seed(p, s, i) for p in PURPOSES for s in (0, 1, MAX_SEED) for i in (0, 1)}
    assert len(seeds) == len(PURPOSES) * 3 * 2
    assert all(0 <= x < 2**63 for x in seeds)


@pytest.mark.parametrize(
    "args",
    [
        ("eval", -1, 0),
        ("eval", MAX_SEED + 1, 0),
        ("eval", 0, SEED_STRIDE),
        ("nope", 0, 0),
        ("eval", True, 0),
        ("eval", 1.5, 0),
    ],
)
def test_out_of_range_is_refused(args):
    with pytest.raises(ValueError):
        env_seed(*args)


#: How the package may seed an env or make a generator: only through the plan. Files that
#: seed nothing a result depends on are exempt: timing data (perf), bootstrap resampling
#: (its seed is the user's --seed of the statistics), the contract checks' random batches.
EXEMPT = {"seeding.py", "perf.py", "stats/bootstrap.py", "testing.py"}
SEEDING = re.compile(r"manual_seed\(|default_rng\(|np\.random\.seed\(|reset\(seed=|\.seed\(")
FROM_PLAN = re.compile(
    r"env_seed|stream_seed|seeding\.rng|derive_seed|HOLDOUT_SEED|_episode_seed|"
    r"ep_seed|env_seeds|int\(seed\)"
)


def test_every_seed_in_the_package_comes_from_the_plan():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in EXEMPT:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if SEEDING.search(code) and not FROM_PLAN.search(code):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "seeded outside the seed plan:\n" + "\n".join(offenders)
