"""The MinAtar cards: each builds at a tiny size with its recipe, an episode of the build replays
bitwise in the env the evaluator makes from the card, every discrete algorithm trains a few
updates on it (MinAtar's network; the card's `minatar` preset where the algorithm has one),
and the planner that plays
them is the same on every call."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("minatar")

from bench.algos import REGISTRY  # noqa: E402
from bench.collect.behaviors import SCRIPTED  # noqa: E402
from bench.collect.build import _episode_seed, build_dataset  # noqa: E402
from bench.data.cards import card_ids, load_card  # noqa: E402
from bench.data.data import OfflineData, Sampler  # noqa: E402
from bench.envs import make_env  # noqa: E402
from bench.nets import MinAtarCNN  # noqa: E402
from bench.run.config import resolve_config, resolve_preset  # noqa: E402
from bench.types import EnvInfo  # noqa: E402

CARDS = [c for c in card_ids() if c.startswith("minatar-")]
GAMES = ["breakout", "space-invaders", "asterix", "freeway", "seaquest"]
TIERS = ("expert", "mixed", "traps")
TINY = 300


def test_every_game_has_its_three_tiers():
    assert sorted(CARDS) == sorted(f"minatar-{g}-{t}" for g in GAMES for t in TIERS)


@pytest.fixture(scope="module", params=CARDS)
def built(request, minari_root):
    card = load_card(request.param)
    return card, build_dataset(card, size=TINY)


def test_the_card_records_its_env_and_reference_build(built):
    card, _ = built
    assert card.env.id.startswith("MinAtar/") and card.env.id.endswith("-v1")
    assert card.env.kwargs["sticky_action_prob"] == 0.1  # MinAtar's own default, recorded
    assert card.ref_min < card.ref_max
    assert card.reference is not None and len(card.reference.content_hash) == 64
    assert card.train.preset == "minatar"


def test_an_episode_of_the_build_replays_bitwise_in_the_evaluators_env(built):
    card, dataset = built
    episode = next(iter(dataset.iterate_episodes([0])))
    env = make_env(card.env)  # as the evaluator makes it
    obs, _ = env.reset(seed=_episode_seed(card, 0))
    frames = [obs]
    for a in episode.actions:
        obs, *_ = env.step(int(a))
        frames.append(obs)
    assert np.array_equal(np.stack(frames), episode.observations)


@pytest.mark.parametrize("algo", ["bc", "discrete_bcq", "discrete_cql", "discrete_sac"])
def test_every_discrete_algorithm_trains_a_few_updates(built, algo):
    card, dataset = built
    data = OfflineData.from_minari(dataset)
    env = make_env(card.env)
    info = EnvInfo(data.obs_shape, env.action_space)
    cls = REGISTRY[algo]
    config = resolve_config(cls, resolve_preset(cls, card, None))
    agent = cls(config, info, "cpu", [0, 1])
    trunks = [m for m in agent.modules()["net" if algo != "discrete_sac" else "actor"].modules()]
    assert any(isinstance(m, MinAtarCNN) for m in trunks)
    gamma, nstep, _ = agent.nstep()
    data.compute_nstep(gamma, nstep)
    sampler = Sampler(data, 16, [0, 1])
    for _ in range(3):
        stats = agent.update(sampler.sample())
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in stats.values())
    actions = agent.act(torch.as_tensor(data.obs[:4])[None].expand(2, -1, -1, -1, -1))
    assert actions.shape[:2] == (2, 4)


def test_the_planner_is_deterministic_and_its_twin_ends_episodes_sooner():
    """Same seed, same actions (the build's bytes depend on it); the twin (sign -1) plays
    shorter episodes than the planner on Breakout."""
    card = load_card("minatar-breakout-expert")
    params = card.behavior.params

    def play(sign: int, seed: int = 0) -> tuple[list[int], int]:
        env = make_env(card.env)
        act = SCRIPTED["minatar_planner"](env.action_space, 7, **{**params, "sign": sign})
        obs, _ = env.reset(seed=seed)
        taken = []
        for _ in range(300):
            a = int(act(obs[None], [env])[0])
            taken.append(a)
            obs, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                break
        return taken, len(taken)

    assert play(1) == play(1)
    assert play(-1)[1] < play(1)[1]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"sign": 2}, "sign must be 1 or -1"),
        ({"potential": "nope"}, "unknown potential 'nope'"),
        ({"then": 9}, "then must be a MinAtar action 0-5"),
        ({"then": 2.0}, "then must be a MinAtar action 0-5"),
        ({"holds": 3}, "holds must be a list of integers >= 1"),
        ({"holds": [0]}, "holds must be integers >= 1"),
        ({"horizon": "x"}, "horizon must be an integer >= 1"),
        ({"discount": float("nan")}, "discount and death must be finite numbers"),
        ({"nope": 1}, "unknown parameter 'nope'"),
    ],
)
def test_a_wrong_planner_parameter_in_a_card_is_one_error_line(params, message):
    from bench.collect.behaviors import Behavior
    from bench.data.cards import PolicySpec
    from bench.errors import DatasetError

    space = make_env(load_card("minatar-breakout-expert").env).action_space
    with pytest.raises(DatasetError, match=f"behavior 'minatar_planner': {message}") as err:
        Behavior(PolicySpec("minatar_planner", params=params), space, 1, 0)
    assert "\n" not in str(err.value)


def test_a_potential_of_another_game_is_refused_at_the_first_step():
    from bench.errors import DatasetError

    env = make_env(load_card("minatar-breakout-expert").env)
    act = SCRIPTED["minatar_planner"](env.action_space, 0, potential="seaquest_divers")
    obs, _ = env.reset(seed=0)
    with pytest.raises(DatasetError, match="reads seaquest's state, not breakout's"):
        act(obs[None], [env])
