#!/usr/bin/env python
"""bench's TD3+BC, IQL and CQL (and, on MinAtar, Discrete CQL and Discrete BCQ) beside d3rlpy
2.8.1's, on the same data, updates and evaluation.

Two steps, each in its own environment (d3rlpy pins its own torch and gym):

1. Export a bench dataset and train d3rlpy on it, in a venv with d3rlpy 2.8.1, gymnasium and
   mujoco (`python -m venv v && v/bin/pip install d3rlpy==2.8.1 gymnasium mujoco`):

       bench datasets export hopper-medium-replay /tmp/hmr.hdf5 --format d4rl
       v/bin/python scripts/compare_d3rlpy.py train --data /tmp/hmr.hdf5 --env Hopper-v5 \\
           --algos td3_bc,iql --seeds 0,1,2 --steps 20000 --eval-every 5000 \\
           --out results/compare/d3rlpy-hopper-medium-replay.csv

   Every eval_every updates, the policy acts deterministically for --episodes episodes (env
   seeds 1000 * seed + i), as bench's evaluation does. The configs are CORL's defaults, the
   ones bench's algorithms take (observation standardization, IQL's reward scale 1000 / return
   range, CQL's three 256-wide hidden layers and fixed weight 10); rows are appended as each
   evaluation ends, so an interrupted run keeps what it measured.

2. Train bench on the same dataset (`bench sweep --algo td3_bc,iql --dataset hopper-medium-replay
   --seeds 0-2 --results-dir R`), then compare, with bench's Python:

       python scripts/compare_d3rlpy.py report --d3rlpy results/compare/d3rlpy-...csv \\
           --results R --dataset hopper-medium-replay

   On a MinAtar card (`bench datasets export minatar-breakout-mixed /tmp/mb.hdf5`), train
   discrete_cql / discrete_bcq with MinAtar's network and the cards' `minatar` preset
   (`--env MinAtar/Breakout-v1 --env-kwargs '{"sticky_action_prob": 0.1,
   "max_episode_steps": 1000}' --batch-size 32`, and `pip install minatar==1.0.15` in the
   venv): d3rlpy's PixelEncoderFactory with one 3x3 convolution of 16 filters at stride 1 and a
   128-unit layer (Young and Tian 2019), learning rate 2.5e-4, target network every 1,000
   updates; frames are shown as bench shows them ([C, 10, 10] of 0 and 1, sticky memory
   cleared at reset).

   Scores are normalized with the reference returns bench's runs record; each side's final
   score per seed is the mean of its last 3 evaluations; the table gives the IQM and its 95%
   bootstrap CI per algorithm, and says whether bench's IQM lies at or above d3rlpy's CI.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

#: bench's algorithm names -> d3rlpy's config class names
NAMES = {
    "td3_bc": "TD3PlusBCConfig",
    "iql": "IQLConfig",
    "cql": "CQLConfig",
    "discrete_cql": "DiscreteCQLConfig",
    "discrete_bcq": "DiscreteBCQConfig",
}
#: the discrete algorithms, configured for MinAtar frames
MINATAR_ALGOS = ("discrete_cql", "discrete_bcq")
FIELDS = ["algo", "seed", "step", "return_mean", "episodes", "train_s", "wall_s"]


def d3rlpy_config(algo: str, batch_size: int):
    """CORL's defaults in d3rlpy's names (the same values bench's configs hold)."""
    import d3rlpy
    from d3rlpy.models import VectorEncoderFactory
    from d3rlpy.preprocessing import ReturnBasedRewardScaler, StandardObservationScaler

    obs = StandardObservationScaler()
    if algo == "td3_bc":
        return d3rlpy.algos.TD3PlusBCConfig(
            actor_learning_rate=3e-4,
            critic_learning_rate=3e-4,
            batch_size=batch_size,
            gamma=0.99,
            tau=0.005,
            target_smoothing_sigma=0.2,
            target_smoothing_clip=0.5,
            alpha=2.5,
            update_actor_interval=2,
            observation_scaler=obs,
        )
    if algo == "iql":
        return d3rlpy.algos.IQLConfig(
            actor_learning_rate=3e-4,
            critic_learning_rate=3e-4,
            batch_size=batch_size,
            gamma=0.99,
            tau=0.005,
            expectile=0.7,
            weight_temp=3.0,
            max_weight=100.0,
            observation_scaler=obs,
            reward_scaler=ReturnBasedRewardScaler(multiplier=1000.0),
        )
    if algo == "cql":
        wide = VectorEncoderFactory([256, 256, 256])
        return d3rlpy.algos.CQLConfig(
            actor_learning_rate=3e-5,
            critic_learning_rate=3e-4,
            temp_learning_rate=3e-5,
            alpha_learning_rate=0.0,
            initial_alpha=1.0,
            conservative_weight=10.0,
            n_action_samples=10,
            batch_size=batch_size,
            gamma=0.99,
            tau=0.005,
            actor_encoder_factory=wide,
            critic_encoder_factory=wide,
            observation_scaler=obs,
        )
    if algo in MINATAR_ALGOS:
        from d3rlpy.models import PixelEncoderFactory

        # Young and Tian 2019's DQN: conv 16 x 3x3 stride 1, then 128 units; bench's minatar preset
        # (Adam's epsilon stays d3rlpy's default, 1e-8; bench's is 1.5e-4)
        small = PixelEncoderFactory(filters=[[16, 3, 1]], feature_size=128)
        if algo == "discrete_cql":
            return d3rlpy.algos.DiscreteCQLConfig(
                learning_rate=2.5e-4,
                target_update_interval=1000,
                alpha=1.0,
                gamma=0.99,
                batch_size=batch_size,
                encoder_factory=small,
            )
        return d3rlpy.algos.DiscreteBCQConfig(
            learning_rate=2.5e-4,
            target_update_interval=1000,
            action_flexibility=0.3,
            beta=0.01,
            gamma=0.99,
            batch_size=batch_size,
            encoder_factory=small,
        )
    raise SystemExit(
        f"compare_d3rlpy: error: unknown algorithm '{algo}' (choose {', '.join(NAMES)})"
    )


def make_env(env_id: str, kwargs: dict):
    """The env as bench makes it from a card: MinAtar ids registered, their frames [C, 10, 10]
    uint8 and their sticky-action memory cleared at reset."""
    import gymnasium as gym
    import numpy as np

    if not env_id.startswith("MinAtar/"):
        return gym.make(env_id, **kwargs)
    import minatar.gym

    if env_id not in gym.registry:
        minatar.gym.register_envs()

    class Frames(gym.ObservationWrapper):
        def reset(self, **kw):
            self.env.unwrapped.game.last_action = 0
            return super().reset(**kw)

        def observation(self, obs):
            return np.ascontiguousarray(np.transpose(obs, (2, 0, 1))).astype(np.uint8)

    return Frames(gym.make(env_id, **kwargs))


def load_dataset(path: str, n_actions: int | None = None):
    import d3rlpy
    import h5py
    import numpy as np

    with h5py.File(path, "r") as f:
        arrays = {
            k: np.asarray(f[k])
            for k in ("observations", "actions", "rewards", "terminals", "timeouts")
        }
    kind = {}
    if n_actions is not None:  # discrete actions
        kind = {"action_space": d3rlpy.constants.ActionSpace.DISCRETE, "action_size": n_actions}
    return d3rlpy.dataset.MDPDataset(
        observations=arrays["observations"].astype(np.float32),
        actions=arrays["actions"].astype(np.int64 if n_actions else np.float32),
        rewards=arrays["rewards"].astype(np.float32),
        terminals=arrays["terminals"].astype(np.float32),
        timeouts=arrays["timeouts"].astype(np.float32),
        **kind,
    )


def evaluate(algo, env_id: str, seed: int, episodes: int, env_kwargs: dict) -> float:
    """Mean return of the deterministic policy over `episodes` episodes."""
    import numpy as np

    env = make_env(env_id, env_kwargs)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=1000 * seed + i)
        done, total = False, 0.0
        while not done:
            action = algo.predict(np.asarray(obs, dtype=np.float32)[None])[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def train(args) -> None:
    import d3rlpy
    import torch
    from d3rlpy.logging import NoopAdapterFactory

    torch.set_num_threads(args.threads)
    env_kwargs = json.loads(args.env_kwargs)
    probe = make_env(args.env, env_kwargs)
    space = probe.action_space
    n_actions = int(space.n) if hasattr(space, "n") else None
    dataset = load_dataset(args.data, n_actions)
    new = not os.path.exists(args.out)
    with open(args.out, "a", newline="") as f:
        out = csv.DictWriter(f, FIELDS)
        if new:
            out.writeheader()
        for algo_name in args.algos.split(","):
            for seed in [int(s) for s in args.seeds.split(",")]:
                d3rlpy.seed(seed)
                algo = d3rlpy_config(algo_name, args.batch_size).create(device="cpu:0")
                start, train_s, step = time.perf_counter(), 0.0, 0
                while step < args.steps:
                    k = min(args.eval_every, args.steps - step)
                    t0 = time.perf_counter()
                    algo.fit(
                        dataset,
                        n_steps=k,
                        n_steps_per_epoch=k,
                        show_progress=False,
                        logger_adapter=NoopAdapterFactory(),
                        save_interval=10**9,
                    )
                    train_s += time.perf_counter() - t0
                    step += k
                    ret = evaluate(algo, args.env, seed, args.episodes, env_kwargs)
                    row = {
                        "algo": algo_name,
                        "seed": seed,
                        "step": step,
                        "return_mean": ret,
                        "episodes": args.episodes,
                        "train_s": round(train_s, 2),
                        "wall_s": round(time.perf_counter() - start, 2),
                    }
                    out.writerow(row)
                    f.flush()
                    print(row, flush=True)


def speed(args) -> None:
    """d3rlpy's updates per second on `bench perf`'s shapes: Hopper-shaped vectors (obs 11,
    3 actions) for the continuous algorithms, Breakout-shaped stacked frames (4x84x84,
    4 actions, Nature CNN) for Discrete CQL; random data (values do not matter for speed).
    The timed step is d3rlpy's own training step: sample a batch, update."""
    import d3rlpy
    import numpy as np
    import torch
    from d3rlpy.constants import ActionSpace

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    for name in args.algos.split(","):
        if name == "discrete_cql":
            n, shape = 10_000, (4, 84, 84)
            obs = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
            act = rng.integers(0, 4, n)
            kind = {"action_space": ActionSpace.DISCRETE, "action_size": 4}
            config = d3rlpy.algos.DiscreteCQLConfig(
                batch_size=args.batch_size,
                learning_rate=6.25e-5,
                target_update_interval=8000,
                alpha=1.0,
                observation_scaler=d3rlpy.preprocessing.PixelObservationScaler(),
            )
        else:
            n = 100_000
            obs = rng.normal(size=(n, 11)).astype(np.float32)
            act = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
            kind = {"action_space": ActionSpace.CONTINUOUS}
            config = d3rlpy_config(name, args.batch_size)
        terminals = np.zeros(n, np.float32)
        terminals[199::200] = 1.0
        dataset = d3rlpy.dataset.MDPDataset(
            observations=obs,
            actions=act,
            rewards=rng.normal(size=n).astype(np.float32),
            terminals=terminals,
            **kind,
        )
        algo = config.create(device="cpu:0")
        algo.build_with_dataset(dataset)
        if name != "discrete_cql":
            algo.fit(
                dataset,
                n_steps=1,
                n_steps_per_epoch=1,
                show_progress=False,
                logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
                save_interval=10**9,
            )

        def step(algo=algo, dataset=dataset):
            algo.update(dataset.sample_transition_batch(args.batch_size))

        for _ in range(10):
            step()
        t0 = time.perf_counter()
        step()
        n_calls = max(1, int(args.min_time / max(time.perf_counter() - t0, 1e-6)))
        samples = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for _ in range(n_calls):
                step()
            samples.append(n_calls / (time.perf_counter() - t0))
        print(
            f"d3rlpy {d3rlpy.__version__} {name} batch {args.batch_size} threads "
            f"{args.threads}: {sorted(samples)[len(samples) // 2]:.1f} upd/s "
            f"(median of {args.repeats})",
            flush=True,
        )


def report(args) -> None:
    import numpy as np
    import pandas as pd

    from bench.analysis.scores import ScoreSpec, load_results
    from bench.stats.bootstrap import interval_estimate
    from bench.stats.metrics import aggregate_iqm

    peer = pd.read_csv(args.d3rlpy)
    results = load_results(args.results, ScoreSpec("final", args.last_k))
    runs = results.counted[results.counted.dataset == args.dataset]
    if runs.empty:
        raise SystemExit(
            f"compare_d3rlpy: error: no complete runs of {args.dataset} in {args.results}"
        )
    meta = results.meta[runs.run_id.iloc[0]]
    lo_ref, hi_ref = float(meta["ref_min"]), float(meta["ref_max"])
    print(
        f"{args.dataset}: final = mean of the last {args.last_k} evaluations, normalized "
        f"(ref {lo_ref:g} .. {hi_ref:g}); IQM [95% CI]"
    )
    print(f"{'algo':8} {'bench (n)':>28} {'d3rlpy (n)':>28}  bench >= d3rlpy CI low")
    for algo in sorted(set(peer.algo)):
        p = peer[peer.algo == algo].sort_values("step")
        finals = p.groupby("seed").return_mean.apply(lambda r: r.tail(args.last_k).mean())
        p_scores = 100 * (finals.to_numpy() - lo_ref) / (hi_ref - lo_ref)
        b_scores = runs[runs.algo == algo].score.to_numpy()
        bi = interval_estimate([b_scores], aggregate_iqm) if len(b_scores) else (np.nan,) * 3
        pi = interval_estimate([p_scores], aggregate_iqm)
        ok = "yes" if bi[0] >= pi[1] else "NO"
        if not len(b_scores):
            ok = "(no bench runs)"
        cell = lambda e, n: f"{e[0]:6.1f} [{e[1]:6.1f}, {e[2]:6.1f}] ({n})"  # noqa: E731
        print(f"{algo:8} {cell(bi, len(b_scores)):>28} {cell(pi, len(p_scores)):>28}  {ok}")
        peer_time = p.groupby("seed").train_s.max().mean()
        print(f"{'':8} d3rlpy training time per seed: {peer_time:.0f} s for {p.step.max()} updates")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train d3rlpy on an exported dataset (d3rlpy's venv)")
    t.add_argument("--data", required=True, help="D4RL-layout HDF5 (bench datasets export)")
    t.add_argument("--env", required=True, help="gymnasium env id, e.g. Hopper-v5")
    t.add_argument("--env-kwargs", default="{}", help="the card's env kwargs, as JSON")
    t.add_argument("--algos", default="td3_bc,iql,cql")
    t.add_argument("--seeds", default="0,1,2")
    t.add_argument("--steps", type=int, default=20_000)
    t.add_argument("--eval-every", type=int, default=5_000)
    t.add_argument("--episodes", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=256)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--out", required=True, help="CSV, appended to")
    p = sub.add_parser("speed", help="d3rlpy's updates/s on bench perf's shapes (d3rlpy's venv)")
    p.add_argument("--algos", default="td3_bc,iql,cql,discrete_cql")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--min-time", type=float, default=2.0)
    r = sub.add_parser("report", help="bench's results beside d3rlpy's CSV (bench's Python)")
    r.add_argument("--d3rlpy", required=True)
    r.add_argument("--results", required=True, help="bench results folder")
    r.add_argument("--dataset", required=True)
    r.add_argument("--last-k", type=int, default=3)
    args = parser.parse_args(argv)
    if args.cmd == "train":
        for name in args.algos.split(","):
            if name not in NAMES:
                parser.error(f"unknown algorithm '{name}' (choose {', '.join(NAMES)})")
        if min(args.steps, args.eval_every, args.episodes, args.batch_size) < 1:
            parser.error("--steps, --eval-every, --episodes and --batch-size must be >= 1")
        train(args)
    elif args.cmd == "speed":
        speed(args)
    else:
        report(args)


if __name__ == "__main__":
    sys.exit(main())
