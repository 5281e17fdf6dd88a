"""OfflineData: a whole dataset as torch tensors, n-step targets precomputed, and a seeded sampler.

Layout. Minari stores T+1 observations per episode of T transitions. We keep every observation
once, episodes back to back, in `obs` ([n_obs, *obs_shape]), and per transition t:
    obs_index[t]       row of s_t in obs           (s_{t+1} is row obs_index[t] + 1)
    act, rew, terminated, truncated
n-step targets (estimation_step n, discount gamma) are computed once, episode-aware:
    ret[t]        = sum_{k < m} gamma^k r_{t+k},   m = min(n, steps left in the episode)
    boot_index[t] = row of s_{t+m}
    discount[t]   = gamma^m if the episode did not terminate within those m steps, else 0
A termination stops bootstrapping; a truncation (time limit, or the end of a collection run)
bootstraps from the last stored observation.

Frame stacks (Atari). With frame_stack k > 1 each stored observation is one frame and the
agent's observation at row r is frames [r-k+1 .. r], rows before the episode's first frame
replaced by that first frame (as gymnasium's FrameStackObservation pads at reset). Stacks are
gathered at sample time, so memory holds each frame once: 1M 84x84 frames are 7.1 GB where
stacked obs and next obs would be 56 GB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bench.errors import DatasetError
from bench.seeding import SeedStreams, stream_seed
from bench.types import Batch


@dataclass(frozen=True)
class NStep:
    ret: torch.Tensor
    boot_index: torch.Tensor
    discount: torch.Tensor


def _obs_dtype(dtype: np.dtype) -> type:
    """uint8 images stay uint8 (4x smaller; the CNN scales them); everything else float32."""
    return np.uint8 if dtype == np.uint8 else np.float32


def _obs_tensor(obs: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(obs.astype(_obs_dtype(obs.dtype), copy=False))


def _nstep_term(rew: torch.Tensor, t: torch.Tensor, k: int, m: torch.Tensor, gamma: float):
    """The k-th term of every n-step return: gamma^k r_{t+k} where k < m[t], else 0."""
    N = rew.shape[0]
    return torch.where(k < m, gamma**k * rew[torch.clamp(t + k, max=N - 1)], 0.0)


class OfflineData:
    """All transitions of a dataset in memory (CPU or device tensors)."""

    def __init__(
        self,
        obs: torch.Tensor,
        obs_index: torch.Tensor,
        act: torch.Tensor,
        rew: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
        episode_end: torch.Tensor,
        action_mask: torch.Tensor | None = None,
        obs_start: torch.Tensor | None = None,
        frame_stack: int = 1,
    ):
        self.obs = obs
        self.obs_index = obs_index
        self.act = act
        self.rew = rew
        self.terminated = terminated
        self.truncated = truncated
        #: per transition: index (exclusive) of the end of its episode, in transitions
        self.episode_end = episode_end
        #: [n_obs, A] bool legal-action mask aligned with obs, when the dataset has one
        self.action_mask = action_mask
        #: per obs row: the row of its episode's first observation (for frame stacks)
        self.obs_start = obs_start
        self.frame_stack = frame_stack
        if frame_stack > 1 and obs_start is None:
            raise ValueError("frame stacking needs obs_start")
        self._nstep: NStep | None = None

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_episodes(
        cls,
        episodes,
        device: str | torch.device = "cpu",
        n_obs: int | None = None,
        frame_stack: int = 1,
    ) -> OfflineData:
        """Build from an iterable of episodes with observations (T+1), actions, rewards,
        terminations and truncations (T). Each episode must end with a termination or a
        truncation. With n_obs (the total number of observations, when known), observations
        are copied into one preallocated array as the episodes stream in, so loading needs
        the dataset's bytes once, not twice."""
        obs_parts: list[np.ndarray] = []
        act: list[np.ndarray] = []
        rew: list[np.ndarray] = []
        term: list[np.ndarray] = []
        trunc: list[np.ndarray] = []
        lengths: list[int] = []
        obs_all: np.ndarray | None = None
        row = 0
        for ep in episodes:
            o = np.asarray(ep["observations"])
            T = len(ep["actions"])
            if T == 0:
                continue
            if len(o) != T + 1:
                raise DatasetError(f"episode with {T} actions has {len(o)} observations (need T+1)")
            if not (ep["terminations"][-1] or ep["truncations"][-1]):
                raise DatasetError(
                    f"episode {len(lengths)} ends with neither a termination nor a truncation"
                )
            if n_obs is not None:
                if obs_all is None:
                    obs_all = np.empty((n_obs, *o.shape[1:]), dtype=_obs_dtype(o.dtype))
                if row + len(o) > n_obs or o.shape[1:] != obs_all.shape[1:]:
                    raise DatasetError("episodes do not match the dataset's recorded size/shape")
                obs_all[row : row + len(o)] = o
            else:
                obs_parts.append(o)
            row += len(o)
            act.append(np.asarray(ep["actions"]))
            rew.append(np.asarray(ep["rewards"], dtype=np.float32))
            term.append(np.asarray(ep["terminations"], dtype=bool))
            trunc.append(np.asarray(ep["truncations"], dtype=bool))
            lengths.append(T)
        if not lengths:
            raise DatasetError("no transitions (empty dataset)")
        if obs_all is None:
            obs_all = np.concatenate(obs_parts)
        elif row != n_obs:
            raise DatasetError(f"episodes hold {row} observations, the metadata says {n_obs}")
        lengths_np = np.asarray(lengths)
        n = int(lengths_np.sum())
        starts = np.concatenate([[0], np.cumsum(lengths_np)[:-1]])
        ep_of = np.repeat(np.arange(len(lengths_np)), lengths_np)
        # row of s_t in obs: each episode shifts by one extra (its final observation)
        obs_index = np.arange(n) + ep_of
        episode_end = np.repeat(starts + lengths_np, lengths_np)
        # per obs row, the row of its episode's first observation (episodes hold T+1 rows)
        obs_start = np.repeat(starts + np.arange(len(lengths_np)), lengths_np + 1)
        a = np.concatenate(act)
        a_t = torch.as_tensor(a, dtype=torch.long if a.dtype.kind in "iu" else torch.float32)
        return cls(
            obs=_obs_tensor(obs_all).to(device),
            obs_index=torch.as_tensor(obs_index, dtype=torch.long).to(device),
            act=a_t.to(device),
            rew=torch.as_tensor(np.concatenate(rew)).to(device),
            terminated=torch.as_tensor(np.concatenate(term)).to(device),
            truncated=torch.as_tensor(np.concatenate(trunc)).to(device),
            episode_end=torch.as_tensor(episode_end, dtype=torch.long).to(device),
            obs_start=torch.as_tensor(obs_start, dtype=torch.long).to(device),
            frame_stack=frame_stack,
        )

    @classmethod
    def from_minari(
        cls, dataset, device: str | torch.device = "cpu", frame_stack: int = 1
    ) -> OfflineData:
        """All episodes of a MinariDataset, streamed into preallocated arrays; unreadable or
        incomplete files are one error line."""
        try:
            n_obs = int(dataset.total_steps) + len(dataset.episode_indices)
            episodes = dataset.storage.get_episodes(dataset.episode_indices)
            return cls.from_episodes(episodes, device, n_obs=n_obs, frame_stack=frame_stack)
        except DatasetError as e:
            raise DatasetError(f"dataset {dataset.id}: {e}") from None
        except (KeyError, OSError, ValueError, TypeError, RuntimeError) as e:
            raise DatasetError(
                f"dataset {dataset.id}: cannot be read ({type(e).__name__}: {e})"
            ) from None

    # ----------------------------------------------------------------- properties
    def __len__(self) -> int:
        return int(self.act.shape[0])

    @property
    def obs_shape(self) -> tuple[int, ...]:
        """The agent's observation shape: [k, *frame] with frame stacks, else a stored row's."""
        frame = tuple(self.obs.shape[1:])
        return (self.frame_stack, *frame) if self.frame_stack > 1 else frame

    def observations(self, rows: torch.Tensor) -> torch.Tensor:
        """The agent's observations at obs rows: [B, *obs_shape] (stacks gathered here)."""
        if self.frame_stack == 1:
            return self.obs[rows]
        assert self.obs_start is not None  # checked at construction when frame_stack > 1
        offsets = torch.arange(1 - self.frame_stack, 1, device=rows.device)
        stack_rows = torch.maximum(rows[:, None] + offsets, self.obs_start[rows][:, None])
        return self.obs[stack_rows]

    @property
    def num_episodes(self) -> int:
        return int(torch.unique_consecutive(self.episode_end).numel())

    def episode_returns(self) -> np.ndarray:
        ends = torch.unique_consecutive(self.episode_end)
        csum = torch.cat([torch.zeros(1, dtype=torch.float64), self.rew.double().cumsum(0).cpu()])
        starts = torch.cat([torch.zeros(1, dtype=torch.long), ends[:-1].cpu()])
        return (csum[ends.cpu()] - csum[starts]).numpy()

    # ----------------------------------------------------------------- n-step targets
    def compute_nstep(self, gamma: float, n: int, normalize_rewards: bool = False) -> NStep:
        """Precompute n-step returns once (see the module docstring). A loop over
        k < min(n, longest episode) only."""
        if n < 1:
            raise ValueError(f"estimation_step must be >= 1, got {n}")
        rew = self.rew.double()
        if normalize_rewards:
            std = rew.std()
            rew = (rew - rew.mean()) / (std if std > 0 else 1.0)
        N = len(self)
        t = torch.arange(N, device=self.rew.device)
        steps_left = self.episode_end - t
        # targets stop at the episode's end, so any n beyond the longest episode gives the
        # same targets as n = that length: the loop runs at most that many times (one read
        # to the host, once per dataset)
        horizon = min(n, int(steps_left.max()))
        m = torch.clamp(steps_left, max=horizon)
        ret = torch.zeros(N, dtype=torch.float64, device=rew.device)
        for k in range(horizon):
            ret += _nstep_term(rew, t, k, m, gamma)
        last = t + m - 1  # last transition inside the window
        boot_index = self.obs_index[last] + 1
        discount = torch.where(self.terminated[last], 0.0, torch.pow(gamma, m.double()))
        self._nstep = NStep(ret.float(), boot_index, discount.float())
        return self._nstep

    # ----------------------------------------------------------------- sampling
    def gather(self, idx: torch.Tensor) -> Batch:
        """The batch for transition indices idx (whole-batch tensor gathers)."""
        if self._nstep is None:
            raise RuntimeError("call compute_nstep(gamma, n) before sampling")
        ns = self._nstep
        oi = self.obs_index[idx]
        bi = ns.boot_index[idx]
        mask = next_mask = None
        if self.action_mask is not None:
            mask, next_mask = self.action_mask[oi], self.action_mask[bi]
        return Batch(
            obs=self.observations(oi),
            act=self.act[idx],
            ret=ns.ret[idx],
            next_obs=self.observations(bi),
            discount=ns.discount[idx],
            mask=mask,
            next_mask=next_mask,
        )


#: The held-out episodes of a dataset are drawn from the seed plan's "holdout" stream with seed
#: 0, not the run's seed: every seed and every algorithm trained on a dataset with the same
#: fraction holds out the same episodes.
HOLDOUT_SEED = stream_seed("holdout", 0)


def held_out_episodes(num_episodes: int, fraction: float) -> int:
    """How many episodes a holdout fraction takes: round(fraction * episodes), at least one
    when fraction > 0; a split that leaves no episode to train on is an error."""
    if fraction <= 0:
        return 0
    n = max(1, round(fraction * num_episodes))
    if n >= num_episodes:
        raise DatasetError(
            f"--holdout {fraction:g} holds out {n} of the dataset's {num_episodes} episodes, "
            "leaving none to train on"
        )
    return n


def split_transitions(data: OfflineData, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, held-out) transition indices: whole episodes, a fixed random `fraction` of
    them held out (HOLDOUT_SEED), each index set in dataset order."""
    ends = torch.unique_consecutive(data.episode_end.cpu())
    E = len(ends)
    n = held_out_episodes(E, fraction)
    g = torch.Generator().manual_seed(HOLDOUT_SEED)
    held = torch.zeros(E, dtype=torch.bool)
    held[torch.randperm(E, generator=g)[:n]] = True
    starts = torch.cat([torch.zeros(1, dtype=torch.long), ends[:-1]])
    per_transition = torch.repeat_interleave(held, ends - starts)
    device = data.act.device
    return (
        torch.nonzero(~per_transition).squeeze(1).to(device),
        torch.nonzero(per_transition).squeeze(1).to(device),
    )


class Sampler:
    """Uniform index batches for S seeds at once: [S, B, ...], seed s's indices from its own
    stream (bench.seeding.SeedStreams), so they do not depend on which seeds share the job.
    With `rows` (transition indices), batches come from those transitions only (a training
    split); without, from all of them."""

    def __init__(
        self,
        data: OfflineData,
        batch_size: int,
        seeds: Sequence[int],
        rows: torch.Tensor | None = None,
    ):
        self.data = data
        self.batch_size = batch_size
        self.rows = rows
        self.streams = SeedStreams(seeds, data.act.device, "sampler")

    def sample(self) -> Batch:
        S, B = self.streams.num_seeds, self.batch_size
        if self.rows is None:
            idx = self.streams.integers(len(self.data), B)  # [S, B]
        else:
            idx = self.rows[self.streams.integers(len(self.rows), B)]
        flat = self.data.gather(idx.reshape(-1))
        return flat.map(lambda v: v.view(S, B, *v.shape[1:]))

    def state_dict(self) -> dict:
        return self.streams.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.streams.load_state_dict(state)
