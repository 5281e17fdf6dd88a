"""Config resolution: defaults -> preset -> --set, with one-line errors for bad input."""

import pytest

from bench.algos import REGISTRY, get_algorithm
from bench.algos.base import parse_overrides, resolve_config
from bench.algos.discrete_bcq import DiscreteBCQ
from bench.errors import BenchError, UnknownNameError


def test_reference_defaults():
    c = resolve_config(DiscreteBCQ)
    assert (c.discount_factor, c.estimation_step, c.target_update_freq) == (0.99, 1, 8000)
    assert (c.eval_eps, c.unlikely_action_threshold, c.imitation_logits_penalty) == (
        1e-3,
        0.3,
        1e-2,
    )
    assert (c.reward_normalization, c.is_double, c.clip_loss_grad) == (False, True, False)


def test_preset_then_overrides():
    c = resolve_config(DiscreteBCQ, "small", {"target_update_freq": "7", "is_double": "false"})
    assert c.target_update_freq == 7 and c.is_double is False
    assert c.lr == DiscreteBCQ.presets["small"]["lr"]
    assert resolve_config(DiscreteBCQ, None, {"hidden_sizes": "64,32"}).hidden_sizes == (64, 32)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"nope": "1"}, "unknown config key for discrete_bcq 'nope'"),
        ({"lr": "fast"}, "bad value 'fast' for discrete_bcq.lr: expected float"),
        ({"is_double": "maybe"}, "expected true or false"),
        ({"estimation_step": "1.5"}, "expected int"),
        ({"lr": "nan"}, "finite"),
        ({"unlikely_action_threshold": "0"}, "unlikely_action_threshold must be in"),
    ],
)
def test_bad_overrides_fail_with_one_line(overrides, message):
    with pytest.raises(BenchError) as e:
        resolve_config(DiscreteBCQ, None, overrides)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unknown_names():
    with pytest.raises(UnknownNameError, match="discrete_bcq"):
        get_algorithm("dqn")
    with pytest.raises(UnknownNameError, match="preset"):
        resolve_config(DiscreteBCQ, "huge")
    with pytest.raises(BenchError, match="key=value"):
        parse_overrides(["lr"])
    assert "discrete_bcq" in REGISTRY


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_set_gamma_works_for_every_algorithm(name):
    cls = REGISTRY[name]
    config = resolve_config(cls, None, {"gamma": "0.9"})
    discount = getattr(config, "gamma", None) or config.discount_factor
    assert discount == 0.9


def test_the_reference_name_of_the_discount_stays_accepted():
    cls = REGISTRY["discrete_bcq"]
    assert resolve_config(cls, None, {"discount_factor": "0.9"}) == resolve_config(
        cls, None, {"gamma": "0.9"}
    )
