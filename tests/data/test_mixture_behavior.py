"""Behaviors that draw one policy per episode (mixtures), and the MountainCar controllers."""

import gymnasium as gym
import numpy as np
import pytest

from bench.collect.behaviors import Behavior, mixture_components
from bench.data.cards import PolicySpec
from bench.errors import DatasetError

SPACE = gym.spaces.Discrete(3)
GOOD = {"policy": "mountaincar_energy", "params": {"sign": 1}}
WRONG = {"policy": "mountaincar_energy", "params": {"sign": -1}}


def mixture(*components, weights=None) -> PolicySpec:
    params = {"components": list(components)}
    if weights is not None:
        params["weights"] = weights
    return PolicySpec(policy="mixture", params=params)


def test_the_energy_controller_pushes_with_the_velocity_and_the_wrong_one_against_it():
    obs = np.array([[-0.5, 0.01], [-0.5, -0.01], [0.2, 0.02]])
    good = Behavior(PolicySpec("mountaincar_energy"), SPACE, 3, 0)
    wrong = Behavior(PolicySpec("mountaincar_energy", params={"sign": -1}), SPACE, 3, 0)
    assert good(obs).tolist() == [2, 0, 2] and wrong(obs).tolist() == [0, 2, 0]


def test_each_episode_plays_one_component_drawn_by_weight():
    b = Behavior(mixture(GOOD, WRONG, weights=[3, 1]), SPACE, 2, seed=0)
    obs = np.array([[-0.5, 0.01], [-0.5, 0.01]])
    drawn = []
    for _ in range(4000):
        b.new_episode(0)
        drawn.append(b.component[0])
        assert b(obs)[0] == (2 if b.component[0] == 0 else 0)  # the episode's own policy
    assert np.mean(np.array(drawn) == 0) == pytest.approx(0.75, abs=0.03)


def test_a_random_component_acts_uniformly_at_random():
    b = Behavior(
        mixture(WRONG, {"policy": "random", "epsilon": 1.0}, weights=[0, 1]), SPACE, 1, seed=1
    )
    acts = [int(b(np.array([[-0.5, 0.01]]))[0]) for _ in range(3000)]
    assert set(acts) == {0, 1, 2} and np.bincount(acts).min() > 900


@pytest.mark.parametrize(
    "params, message",
    [
        ({}, "needs params.components"),
        ({"components": []}, "needs params.components"),
        ({"components": [GOOD], "weights": [1, 2]}, "one non-negative number per component"),
        ({"components": [GOOD, WRONG], "weights": [0, 0]}, "not all 0"),
        ({"components": [GOOD, WRONG], "weights": [1, float("nan")]}, "non-negative"),
        ({"components": [GOOD, WRONG], "weights": [-1, 2]}, "non-negative"),
        ({"components": [GOOD, WRONG], "weights": [1, "x"]}, "one non-negative number"),
        ({"components": [GOOD, WRONG], "weights": "1,1"}, "one non-negative number"),
        ({"components": [GOOD, WRONG], "weights": [True, 1]}, "one non-negative number"),
        (
            {"components": [{"policy": "mixture", "params": {"components": [GOOD]}}]},
            "cannot be a mixture",
        ),
    ],
)
def test_a_bad_mixture_is_one_line(params, message):
    with pytest.raises(DatasetError, match=message):
        mixture_components(PolicySpec(policy="mixture", params=params))


def test_datasets_info_names_each_component_of_a_mixture_and_its_share():
    from bench.cli.datasets import _behavior_text

    assert _behavior_text(mixture(GOOD, WRONG, weights=[1, 3])) == (
        "one policy per episode: 25% mountaincar_energy (sign=1), epsilon 0.0; "
        "75% mountaincar_energy (sign=-1), epsilon 0.0"
    )
    assert _behavior_text(PolicySpec("cartpole_pd", epsilon=0.5)) == "cartpole_pd, epsilon 0.5"
