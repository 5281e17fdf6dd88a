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


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("discrete_bcq", {"adam_eps": "-1"}, "discrete_bcq.adam_eps must be > 0, got -1.0"),
        ("discrete_cql", {"adam_eps": "0"}, "discrete_cql.adam_eps must be > 0, got 0.0"),
        ("discrete_bcq", {"eval_eps": "1.5"}, "discrete_bcq.eval_eps must be in [0, 1], got 1.5"),
        ("discrete_sac", {"tau": "0"}, "discrete_sac.tau must be in (0, 1], got 0.0"),
        ("cql", {"cql_temp": "0"}, "cql.cql_temp must be > 0, got 0.0"),
        ("iql", {"max_weight": "-2"}, "iql.max_weight must be > 0, got -2.0"),
        ("td3_bc", {"noise_clip": "-0.1"}, "td3_bc.noise_clip must be >= 0, got -0.1"),
        ("redq", {"exploration_noise": "-1"}, "redq.exploration_noise must be >= 0, got -1.0"),
        ("redq", {"subset_size": "11"}, "redq.subset_size must be at most ensemble_size (10)"),
        ("bcq", {"latent_dim": "-1"}, "bcq.latent_dim must be in 0..4096, got -1"),
        ("bcq", {"vae_hidden_sizes": "0"}, "bcq.vae_hidden_sizes: layer widths must be in"),
    ],
)
def test_out_of_range_values_name_the_field_and_its_range(name, overrides, message):
    with pytest.raises(BenchError) as e:
        resolve_config(REGISTRY[name], None, overrides)
    assert message in str(e.value) and "\n" not in str(e.value)


def _numeric(hint) -> bool:
    import typing

    args = typing.get_args(hint) or (hint,)
    return any(a in (int, float) for a in args) or typing.get_origin(hint) is tuple


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_numeric_config_field_declares_its_range(name):
    """One declaration per field (bench.algos.base: Positive, Fraction, Count, ...): a new field
    without one would go unchecked, as adam_eps once did (Adam raised a traceback)."""
    from bench.algos.base import config_fields, field_ranges

    cls = REGISTRY[name]
    ranges = field_ranges(cls.Config)
    for field, hint in config_fields(cls.Config).items():
        if hint is not bool and _numeric(hint):
            assert ranges[field] is not None, f"{name}.{field} declares no range"
    defaults = cls.Config()
    for field, rng in ranges.items():  # the reference defaults are inside their ranges
        value = getattr(defaults, field)
        if rng is not None and value is not None:
            assert all(v in rng for v in (value if isinstance(value, tuple) else (value,)))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_algorithm_declares_its_version_in_its_own_file(name):
    cls = REGISTRY[name]
    assert "version" in vars(cls), f"{name} inherits Algorithm.version; set it in its file"
    assert isinstance(cls.version, int) and not isinstance(cls.version, bool) and cls.version >= 1


def test_a_negative_adam_eps_on_the_command_line_is_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))  # nothing is built
    res = cli(
        "run",
        "--algo",
        "discrete_bcq",
        "--dataset",
        "cartpole-mixed",
        "--set",
        "adam_eps=-1",
        "--results-dir",
        tmp_path,
        "-q",
    )
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == "bench: error: discrete_bcq.adam_eps must be > 0, got -1.0"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "minari").exists()
