#!/usr/bin/env python
"""bench's FQE beside d3rlpy 2.8.1's FQE / DiscreteFQE, on the same kept policies and data.

Three steps; the middle one runs in a venv with d3rlpy 2.8.1 (it pins its own torch):

1. With bench's Python: export one dataset and some kept policies of a results folder (each
   candidate's deterministic action at every observation of the dataset), and estimate them
   with bench's FQE for --seeds FQE seeds (default 3):

       python scripts/fqe_peer.py export --results R --dataset cartpole-traps \\
           --candidates 4 --steps 10000 --out /tmp/fqe-cartpole.npz

2. With d3rlpy's: the same candidates, data, gamma, batch size, learning rate, target copy
   interval, number of updates and number of seeds, and by default the same loss (d3rlpy's
   DiscreteFQE fits with the Huber loss, its FQE with the squared error); d3rlpy's policy is a
   lookup of the exported actions (the candidates themselves cannot load outside bench):

       v/bin/python scripts/fqe_peer.py d3rlpy --data /tmp/fqe-cartpole.npz

3. With bench's Python: the table, per candidate, of both estimates (mean and min-max over the
   seeds) and whether they agree: the two ranges overlap, or the means differ by no more
   than the larger spread.

       python scripts/fqe_peer.py report --data /tmp/fqe-cartpole.npz

Both sides standardize observations with the dataset's statistics and (continuous actions) map
actions to [-1, 1] (d3rlpy: StandardObservationScaler, MinMaxActionScaler); both use a 256-256
MLP and the mean of Q(s0, pi(s0)) over the dataset's initial states.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def export(args) -> None:
    import torch

    from bench.ope.candidates import (
        by_configuration,
        find_candidates,
        initial_rows,
        load_stacked,
        policy_actions,
    )
    from bench.ope.fqe import FQE, FQEConfig
    from bench.ope.select import _load_data

    cands = find_candidates(Path(args.results), [args.dataset])
    # spread the picks over configurations and steps: every k-th candidate in (key, seed, step)
    ordered = [c for group in by_configuration(cands).values() for c in group]
    picks = [ordered[i] for i in np.linspace(0, len(ordered) - 1, args.candidates).astype(int)]
    data, info = _load_data(picks[0].config, torch.device("cpu"), True)
    rows = torch.arange(data.obs.shape[0])
    pi = torch.cat(
        [
            policy_actions(load_stacked(group, info, "cpu"), data, rows)
            for group in by_configuration(picks).values()
        ]
    )
    picks = [c for group in by_configuration(picks).values() for c in group]
    s0 = initial_rows(data)
    # d3rlpy's regression loss: Huber in DiscreteFQE, squared error in FQE
    loss = args.loss or ("huber" if info.discrete else "mse")
    estimates = []
    for seed in range(args.seeds):
        config = FQEConfig(steps=args.steps, seed=seed, loss=loss)
        fqe = FQE(config, data, info, "cpu", list(range(len(picks))))
        fqe.fit(pi, True, f"bench FQE seed {seed}")
        estimates.append(fqe.estimate(s0, pi).numpy())
    t = data.obs_index
    np.savez_compressed(
        args.out,
        obs=data.observations(t).numpy(),
        next_obs=data.observations(t + 1).numpy(),
        act=data.act.numpy(),
        rew=data.rew.numpy(),
        terminal=data.terminated.numpy(),
        episode_end=data.episode_end.numpy(),
        pi_obs=pi[:, t].numpy(),
        pi_next=pi[:, t + 1].numpy(),
        s0=data.observations(s0).numpy(),
        pi_s0=pi[:, s0].numpy(),
        bench=np.stack(estimates),  # [seeds, candidates]
        discrete=np.array(info.discrete),
        low=np.array(getattr(info.action_space, "low", 0.0)),
        high=np.array(getattr(info.action_space, "high", 0.0)),
        steps=np.array(args.steps),
        seeds=np.array(args.seeds),
        loss=np.array(loss),
        names=np.array([f"{c.config.algo} s{c.config.seed} @{c.step}" for c in picks]),
        true_value=np.array([c.true_value for c in picks]),
    )
    print(f"wrote {args.out}: {len(picks)} candidates, bench estimates {np.stack(estimates)}")


def _key(row: np.ndarray) -> bytes:
    return np.round(row.astype(np.float64), 4).tobytes()


class _Lookup:
    """A policy as a table: observation -> the exported action (d3rlpy's algo protocol). d3rlpy
    hands the policy scaled observations: they are scaled back, then looked up (rounded to 4
    decimals; a miss takes the nearest stored observation)."""

    def __init__(self, obs: np.ndarray, actions: np.ndarray, discrete: bool):
        import torch

        self.obs, self.actions, self.discrete, self.torch = obs, actions, discrete, torch
        self.table = {_key(row): i for i, row in enumerate(obs)}
        self.scaler = None
        self.action_scaler = None

    def _find(self, x: np.ndarray) -> np.ndarray:
        idx = []
        for row in x:
            i = self.table.get(_key(row))
            if i is None:
                i = int(((self.obs - row) ** 2).sum(-1).argmin())
            idx.append(i)
        return self.actions[idx]

    def predict_best_action(self, x):
        raw = x if self.scaler is None else self.scaler.reverse_transform(x)
        out = self.torch.as_tensor(self._find(raw.detach().cpu().numpy()), device=x.device)
        if self.discrete:
            return out.long()
        # FQE calls this inside its updates, where actions are in the scaled space ([-1, 1])
        out = out.float()
        return out if self.action_scaler is None else self.action_scaler.transform(out)

    def predict(self, x):
        return self._find(np.asarray(x))

    @property
    def impl(self):
        return self


def run_d3rlpy(args) -> None:
    import d3rlpy

    z = np.load(args.data)
    discrete = bool(z["discrete"])
    obs, nxt, act = z["obs"].astype(np.float32), z["next_obs"].astype(np.float32), z["act"]
    ends = z["episode_end"]
    n = len(act)
    last = np.zeros(n, bool)
    last[ends - 1] = True  # each episode's last transition
    terminals = z["terminal"].astype(np.float32)
    timeouts = (last & ~z["terminal"]).astype(np.float32)
    dataset = d3rlpy.dataset.MDPDataset(
        observations=obs,
        actions=act if discrete else act.astype(np.float32),
        rewards=z["rew"].astype(np.float32),
        terminals=terminals,
        timeouts=timeouts,
        action_space=d3rlpy.ActionSpace.DISCRETE if discrete else d3rlpy.ActionSpace.CONTINUOUS,
    )
    seeds = range(args.seeds or (int(z["seeds"]) if "seeds" in z else 3))
    results = np.zeros((len(seeds), len(z["names"])))
    for c in range(len(z["names"])):
        policy = _Lookup(
            np.concatenate([obs, nxt]), np.concatenate([z["pi_obs"][c], z["pi_next"][c]]), discrete
        )
        for i, seed in enumerate(seeds):
            d3rlpy.seed(seed)
            kwargs = dict(
                learning_rate=1e-4,
                batch_size=100,
                gamma=0.99,
                target_update_interval=100,
                observation_scaler=d3rlpy.preprocessing.StandardObservationScaler(),
            )
            if discrete:
                fqe = d3rlpy.ope.DiscreteFQE(policy, d3rlpy.ope.FQEConfig(**kwargs))
            else:
                kwargs["action_scaler"] = d3rlpy.preprocessing.MinMaxActionScaler(
                    minimum=z["low"], maximum=z["high"]
                )
                fqe = d3rlpy.ope.FQE(policy, d3rlpy.ope.FQEConfig(**kwargs))
            policy.scaler = fqe.config.observation_scaler  # fitted by fit(), used in updates
            policy.action_scaler = fqe.config.action_scaler  # None for discrete actions
            steps = int(z["steps"])
            fqe.fit(
                dataset,
                n_steps=steps,
                n_steps_per_epoch=steps,
                show_progress=False,
                save_interval=10**9,
                logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
            )
            s0 = z["s0"].astype(np.float32)
            results[i, c] = float(np.mean(fqe.predict_value(s0, z["pi_s0"][c])))
            print(f"{z['names'][c]} seed {seed}: {results[i, c]:.3f}", flush=True)
    out = Path(args.data).with_suffix(".d3rlpy.json")
    out.write_text(json.dumps(results.tolist()))
    print(f"wrote {out}")


def report(args) -> None:
    z = np.load(args.data)
    d3 = np.array(json.loads(Path(args.data).with_suffix(".d3rlpy.json").read_text()))
    ours = z["bench"]
    print(
        "| candidate | true discounted value | bench FQE mean [min, max] | "
        "d3rlpy FQE mean [min, max] | agree |"
    )
    print("|---|---|---|---|---|")
    agree_all = True
    for c, name in enumerate(z["names"]):
        a, b = ours[:, c], d3[:, c]
        overlap = a.min() <= b.max() and b.min() <= a.max()
        close = abs(a.mean() - b.mean()) <= max(np.ptp(a), np.ptp(b))
        agree = overlap or close
        agree_all &= agree
        print(
            f"| {name} | {z['true_value'][c]:.2f} | {a.mean():.2f} [{a.min():.2f}, "
            f"{a.max():.2f}] | {b.mean():.2f} [{b.min():.2f}, {b.max():.2f}] | "
            f"{'yes' if agree else 'no'} |"
        )
    print(f"all agree: {'yes' if agree_all else 'no'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--results", required=True)
    e.add_argument("--dataset", required=True)
    e.add_argument("--candidates", type=int, default=4)
    e.add_argument("--steps", type=int, default=10_000)
    e.add_argument("--seeds", type=int, default=3, help="FQE seeds per candidate, each side")
    e.add_argument(
        "--loss",
        choices=["mse", "huber"],
        default=None,
        help="bench's FQE loss (default: d3rlpy's: huber for discrete actions, mse for continuous)",
    )
    e.add_argument("--out", required=True)
    d = sub.add_parser("d3rlpy")
    d.add_argument("--data", required=True)
    d.add_argument("--seeds", type=int, default=0, help="FQE seeds (default: as many as bench's)")
    r = sub.add_parser("report")
    r.add_argument("--data", required=True)
    args = p.parse_args()
    {"export": export, "d3rlpy": run_d3rlpy, "report": report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
