"""The contract every registered algorithm keeps, on vector and (discrete) image observations:
the checks of bench.testing, which a plugin's author runs the same way."""

import pytest

from bench.algos import REGISTRY
from bench.algos.base import resolve_config
from bench.testing import (  # noqa: F401 - make, random_batch, random_obs: used by other tests
    CONTINUOUS,
    DISCRETE,
    check_act,
    check_kept_policies,
    check_save_load,
    check_update,
    make,
    random_batch,
    random_obs,
    shapes,
)


def cases():
    for name, cls in sorted(REGISTRY.items()):
        for label, obs_shape, space in shapes(cls):
            yield pytest.param(name, obs_shape, space, id=f"{name}-{label}")


@pytest.mark.parametrize("S", [1, 3])
@pytest.mark.parametrize("name, obs_shape, space", list(cases()))
def test_update_gives_finite_stats_per_seed(name, obs_shape, space, S):
    check_update(name, obs_shape, space, S)


@pytest.mark.parametrize("S", [1, 3])
@pytest.mark.parametrize("name, obs_shape, space", list(cases()))
def test_act_gives_valid_actions_for_every_seed(name, obs_shape, space, S):
    check_act(name, obs_shape, space, S)


@pytest.mark.parametrize("name, obs_shape, space", list(cases()))
def test_save_load_round_trip_gives_identical_actions(name, obs_shape, space):
    check_save_load(name, obs_shape, space)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_slug_matches_file_and_defaults_validate(name):
    cls = REGISTRY[name]
    assert cls.__module__ == f"bench.algos.{name}"
    resolve_config(cls)  # reference defaults are valid


#: The algorithms without a Q estimate of their own (q_value returns None): offline selection's
#: Q-based methods skip them. Every other algorithm must give one.
NO_Q = {"bc"}


@pytest.mark.parametrize("name, obs_shape, space", list(cases()))
def test_kept_policies_load_as_candidates_with_the_same_actions_and_q(name, obs_shape, space):
    check_kept_policies(name, obs_shape, space)
    a = make(name, obs_shape, space, seeds=[0, 1])
    obs = random_obs(obs_shape, 2, 6, __import__("torch").Generator().manual_seed(2))
    q = a.q_value(obs, a.act(obs, deterministic=True))
    assert (q is None) == (name in NO_Q), "q_value: None exactly for the algorithms in NO_Q"
