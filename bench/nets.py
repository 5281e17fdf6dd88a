"""Networks shared by the algorithms: MLPs, the Nature DQN convolutional trunk, the SAC actor.

Every network holds a leading member dimension: (S,) for S seeds trained together, or (S, E) for
an ensemble of E per seed. Weights are stacked ([*members, in, out]), each layer is one batched
matmul (or one grouped convolution), so S seeds cost one network's dispatch. Member s is
initialized from seeds[s] alone (init_members); Adam is elementwise, so one optimizer over the
stacked weights is exactly S optimizers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn


def _members_input(x: torch.Tensor, members: tuple[int, ...], tail: int) -> torch.Tensor:
    """x [*lead, *tail dims] with lead broadcast to `members`: lead [S] (or [S, 1]) feeds an
    (S, E) ensemble the same input for every member of a seed."""
    k = x.dim() - tail
    if tuple(x.shape[:k]) != members:
        lead = tuple(x.shape[:k]) + (1,) * (len(members) - k)
        x = x.reshape(*lead, *x.shape[k:]).expand(*members, *x.shape[k:])
    return x


class Linear(nn.Module):
    """Independent linear layers, one per member, as one [*members, in, out] weight.

    members is (S,) for S seeds, or (S, E) for an ensemble of E per seed. Input
    [*members, *batch, in] (leading dims of size 1 broadcast) -> [*members, *batch, out]: one
    batched matmul. Every member is initialized like torch's nn.Linear, from its seed
    (init_members)."""

    def __init__(self, members: tuple[int, ...], in_dim: int, out_dim: int):
        super().__init__()
        self.members, self.in_dim, self.out_dim = tuple(members), in_dim, out_dim
        self.weight = nn.Parameter(torch.empty(*self.members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(*self.members, 1, out_dim))
        self.init_member(None, None)

    def init_member(self, s: int | None, g: torch.Generator | None) -> None:
        """torch's nn.Linear initialization: uniform in +-1/sqrt(in) (all members when s is None)."""
        _uniform_init(self.weight, self.in_dim, s, g)
        _uniform_init(self.bias, self.in_dim, s, g)

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        """[M, N, in] -> [M, N, out] for the M = prod(members) members, one batched matmul."""
        if len(self.members) == 1:
            return torch.baddbmm(self.bias, x, self.weight)
        M = x.shape[0]
        return torch.baddbmm(
            self.bias.view(M, 1, self.out_dim), x, self.weight.view(M, self.in_dim, self.out_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x3, batch = _flatten(x, self.members)
        return _unflatten(self.flat(x3), self.members, batch)

    def member(self, x: torch.Tensor, j: int) -> torch.Tensor:
        """Ensemble member j of every seed alone, for members (S, E): [S, B, in] -> [S, B, out]."""
        return torch.baddbmm(self.bias[:, j], x, self.weight[:, j])


def _flatten(x: torch.Tensor, members: tuple[int, ...]) -> tuple[torch.Tensor, tuple[int, ...]]:
    """[*members, *batch, in] (or [S, *batch, in] into an (S, E) ensemble: the same input for
    every member of a seed) -> ([M, N, in], batch)."""
    n = len(members)
    if x.dim() < n + 2:
        x = x.reshape(*x.shape[:-2], *(1,) * (n + 2 - x.dim()), *x.shape[-2:])
    batch = tuple(x.shape[n:-1])
    x = _members_input(x, members, x.dim() - n)
    if x.dim() == 3:
        return x, batch
    return x.reshape(math.prod(members), -1, x.shape[-1]), batch


def _unflatten(x: torch.Tensor, members: tuple[int, ...], batch: tuple[int, ...]) -> torch.Tensor:
    shape = (*members, *batch, x.shape[-1])
    return x if tuple(x.shape) == shape else x.view(shape)


def _uniform_init(p: torch.Tensor, fan_in: int, s: int | None, g: torch.Generator | None) -> None:
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        target = p if s is None else p[s]
        value = torch.empty(target.shape).uniform_(-bound, bound, generator=g)
        target.copy_(value)


def init_members(seeds, *modules: nn.Module) -> None:
    """Member s of every layer initialized from seeds[s] alone (in module order), so a seed's
    initial weights are the same whichever seeds share its job."""
    from bench.seeding import derive_seed

    for s, seed in enumerate(seeds):
        g = torch.Generator().manual_seed(derive_seed(seed, "init"))
        for module in modules:
            for m in module.modules():
                if (init_member := getattr(m, "init_member", None)) is not None:
                    init_member(s, g)


class MLP(nn.Module):
    """Per-member MLPs: Linear-ReLU over hidden_sizes, then a linear output when out_dim is set.
    [*members, *batch, in] -> [*members, *batch, out]."""

    def __init__(self, members, in_dim: int, hidden_sizes: Sequence[int], out_dim: int | None):
        super().__init__()
        dims = [in_dim, *hidden_sizes] + ([out_dim] if out_dim is not None else [])
        self.layers = nn.ModuleList(
            Linear(members, a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self.relu_last = out_dim is None
        self.out_dim = dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = cast("list[Linear]", self.layers)
        members = layers[0].members
        x, batch = _flatten(x, members)
        for i, layer in enumerate(layers):
            x = layer.flat(x)
            if self.relu_last or i < len(self.layers) - 1:
                x = torch.relu_(x)  # in place (not on a view): baddbmm's backward needs no output
        return _unflatten(x, members, batch)

    def member(self, x: torch.Tensor, j: int) -> torch.Tensor:
        """Ensemble member j of every seed alone (members (S, E)): [S, B, in] -> [S, B, out]."""
        for i, layer in enumerate(cast("list[Linear]", self.layers)):
            x = layer.member(x, j)
            if self.relu_last or i < len(self.layers) - 1:
                x = torch.relu_(x)
        return x


class Conv2d(nn.Module):
    """Per-member convolutions as one grouped convolution over [B, M*C, H, W]."""

    def __init__(self, members, in_ch: int, out_ch: int, kernel: int, stride: int):
        super().__init__()
        self.members, self.in_ch, self.out_ch = tuple(members), in_ch, out_ch
        self.stride, self.fan_in = stride, in_ch * kernel * kernel
        self.weight = nn.Parameter(torch.empty(*self.members, out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.empty(*self.members, out_ch))
        self.init_member(None, None)

    def init_member(self, s: int | None, g: torch.Generator | None) -> None:
        """torch's nn.Conv2d initialization: uniform in +-1/sqrt(fan_in)."""
        _uniform_init(self.weight, self.fan_in, s, g)
        _uniform_init(self.bias, self.fan_in, s, g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, M*in, H, W] -> [B, M*out, H', W']."""
        M = math.prod(self.members)
        w = self.weight.view(M * self.out_ch, self.in_ch, *self.weight.shape[-2:])
        return F.conv2d(x, w, self.bias.view(-1), stride=self.stride, groups=M)

    def member(self, x: torch.Tensor, m: int) -> torch.Tensor:
        """Member m alone (m indexes the flattened members): [B, in, H, W] -> [B, out, H', W']."""
        w = self.weight.view(-1, self.out_ch, self.in_ch, *self.weight.shape[-2:])[m]
        return F.conv2d(x, w, self.bias.view(-1, self.out_ch)[m], stride=self.stride)


class NatureCNN(nn.Module):
    """Mnih et al. 2015 convolutional trunk, per member:
    [*members, B, C, 84, 84] uint8 frames -> [*members, B, 3136] features.

    Two layouts compute the same numbers (tested): "grouped", the members side by side as the
    channel groups of one convolution per layer, and "per_member", each member's convolutions
    on its own frames in turn. On a CPU the grouped convolution of many members is slower per
    member than one member alone (S = 10, batch 32: 28-32 seed-updates/s of forward and backward
    against 55-63; its activations for all members leave the cache), so the CPU runs the members'
    convolutions in turn, each at one seed's speed, and stacks only the layers after the trunk;
    a GPU, where one launch per layer matters more, runs the grouped convolution."""

    out_dim = 64 * 7 * 7
    #: the width of the hidden layer after the trunk in the paper's network
    head = 512
    #: the layout by device type (see the class docstring); a test may set it
    LAYOUTS = {"cpu": "per_member", "cuda": "grouped"}

    def __init__(self, members, in_channels: int):
        super().__init__()
        self.members = tuple(members)
        self.convs = nn.ModuleList(
            [
                Conv2d(members, in_channels, 32, 8, 4),
                Conv2d(members, 32, 64, 4, 2),
                Conv2d(members, 64, 64, 3, 1),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _members_input(x, self.members, 4)
        M, B = math.prod(self.members), x.shape[len(self.members)]
        x = x.reshape(M, B, *x.shape[-3:])
        if M > 1 and self.LAYOUTS.get(x.device.type, "grouped") == "per_member":
            out = torch.stack([self._member(x[m], m) for m in range(M)])
            return out.reshape(*self.members, B, self.out_dim)
        # members side by side as channel groups; channels-last runs 1.4x faster on CPU
        x = x.transpose(0, 1).reshape(B, -1, *x.shape[-2:])
        x = (x.float() / 255.0).contiguous(memory_format=torch.channels_last)
        for conv in self.convs:
            x = torch.relu_(conv(x))
        x = x.reshape(B, M, self.out_dim).transpose(0, 1)
        return x.reshape(*self.members, B, self.out_dim)

    def _member(self, x: torch.Tensor, m: int) -> torch.Tensor:
        """Member m's trunk on its frames: [B, C, 84, 84] uint8 -> [B, 3136]."""
        x = (x.float() / 255.0).contiguous(memory_format=torch.channels_last)
        for conv in cast("list[Conv2d]", self.convs):
            x = torch.relu_(conv.member(x, m))
        return x.reshape(x.shape[0], self.out_dim)


class MinAtarCNN(nn.Module):
    """Young and Tian 2019's MinAtar DQN trunk, per member: one 3 x 3 convolution with 16
    filters, stride 1, over the game's object channels, then ReLU:
    [*members, B, C, H, W] frames of 0 and 1 -> [*members, B, 16 (H - 2) (W - 2)] features
    (1,024 on MinAtar's 10 x 10 grid; the paper's 128-unit layer is the head's, `head`).

    The convolution runs as a batched matmul over the members (im2col: each 3 x 3 patch a row,
    gathered through a strided view of the frames), like the linear layers: every member's
    numbers are those it gets alone (a grouped convolution's kernels accumulate in another
    order)."""

    #: the width of the hidden layer after the trunk in the paper's network
    head = 128

    def __init__(self, members, in_channels: int, height: int = 10, width: int = 10):
        super().__init__()
        self.members = tuple(members)
        self.conv = Conv2d(members, in_channels, 16, 3, 1)  # its weights and initialization
        self.positions = (height - 2) * (width - 2)
        self.out_dim = 16 * self.positions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _members_input(x, self.members, 4)
        M, B = math.prod(self.members), x.shape[len(self.members)]
        C, H, W = x.shape[-3:]
        # im2col through a strided view: frames channels-last ([M B, H, W, C], the channels hold
        # 0 or 1: no scaling), where a patch's row of 3 pixels is 3 C contiguous numbers; one
        # copy gathers [M B, H', W', 3, 3 C] into rows [M, B H' W', 9 C], a row per position
        x = x.reshape(M * B, C, H, W).permute(0, 2, 3, 1).float().contiguous()
        Ho, Wo = H - 2, W - 2
        patches = x.as_strided((M * B, Ho, Wo, 3, 3 * C), (H * W * C, W * C, C, W * C, 1))
        rows = patches.reshape(M, B * Ho * Wo, 9 * C)
        # the kernel in the rows' (dy, dx, channel) order: [M, 16, C, 3, 3] -> [M, 9 C, 16]
        w = self.conv.weight.view(M, 16, C, 3, 3).permute(0, 3, 4, 2, 1).reshape(M, 9 * C, 16)
        out = torch.baddbmm(self.conv.bias.view(M, 1, 16), rows, w)  # [M, B H' W', 16]
        # features in (position, filter) order: a fixed permutation of NCHW's flattening
        return torch.relu_(out).view(*self.members, B, self.out_dim)


class LeanAdam(torch.optim.Adam):
    """torch's fused Adam with a lean step(): the same kernel, math and state_dict layout.

    torch.optim's step() spends ~0.5 ms per call in Python bookkeeping and profiling hooks on
    this CPU (more than the fused kernel itself for small networks); this one calls the kernel
    directly, with the state lists built once, and one step counter shared by the parameters
    while every one of them gets a gradient at every step (as in every algorithm here).
    """

    def __init__(self, params, lr: float, eps: float):
        super().__init__(params, lr=lr, eps=eps, fused=True)
        self._params = [p for g in self.param_groups for p in g["params"]]
        if len(self.param_groups) != 1:
            raise ValueError("LeanAdam takes one parameter group")
        self._lists: tuple | None = None
        # torch.optim wraps the class's step() in hooks; the instance's own attribute skips them
        self.step = self._lean_step  # type: ignore[method-assign]

    def _state_lists(self) -> tuple:
        """(exp_avgs, exp_avg_sqs, shared step) of every parameter, created as torch's Adam
        creates them; a loaded state's equal per-parameter steps become one shared tensor."""
        if self._lists is None:
            p0 = self._params[0]
            if not self.state[p0]:
                shared = torch.zeros((), dtype=torch.float32, device=p0.device)
            else:
                shared = self.state[p0]["step"]
            for p in self._params:
                state = self.state[p]
                if not state:  # same initial state as torch's Adam
                    state.update(
                        exp_avg=torch.zeros_like(p, memory_format=torch.preserve_format),
                        exp_avg_sq=torch.zeros_like(p, memory_format=torch.preserve_format),
                    )
                state["step"] = shared
            states = [self.state[p] for p in self._params]
            self._lists = (
                [st["exp_avg"] for st in states],
                [st["exp_avg_sq"] for st in states],
                shared,
            )
        return self._lists

    @classmethod
    def keep_out_of_compiled_graphs(cls) -> None:
        """--compile: the fused kernel runs as it is, outside the graph. Applied before such a
        run builds its optimizers, not at import: importing the compiler costs ~2.5 s, which
        every `bench` command would pay."""
        if not getattr(cls._lean_step, "_torchdynamo_disable", False):
            cls._lean_step = torch.compiler.disable(cls._lean_step)  # type: ignore[method-assign]

    @torch.no_grad()
    def _lean_step(self, closure=None):
        grads = [p.grad for p in self._params]
        if any(g is None for g in grads):
            return self._partial_step()
        exp_avgs, exp_avg_sqs, step = self._state_lists()
        step.add_(1)
        self._kernel(self._params, grads, exp_avgs, exp_avg_sqs, [step] * len(grads))

    def _partial_step(self) -> None:
        """Some parameters have no gradient: steps per parameter, as torch's Adam counts them."""
        self._lists = None
        params = [p for p in self._params if p.grad is not None]
        for p in params:
            state = self.state[p]
            if not state:
                state.update(
                    exp_avg=torch.zeros_like(p, memory_format=torch.preserve_format),
                    exp_avg_sq=torch.zeros_like(p, memory_format=torch.preserve_format),
                    step=torch.zeros((), dtype=torch.float32, device=p.device),
                )
            else:
                state["step"] = state["step"].clone()  # no longer shared
        states = [self.state[p] for p in params]
        steps = [st["step"] for st in states]
        torch._foreach_add_(steps, 1)
        self._kernel(
            params,
            [p.grad for p in params],
            [st["exp_avg"] for st in states],
            [st["exp_avg_sq"] for st in states],
            steps,
        )

    def _kernel(self, params, grads, exp_avgs, exp_avg_sqs, steps) -> None:
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        torch._fused_adam_(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            amsgrad=False,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        self._lists = None

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self._params:
            p.grad = None


def adam(params, lr: float, eps: float = 1e-8) -> torch.optim.Adam:
    """Adam (fused kernel, lean step). The fused kernel is 3x faster than the default on CPU."""
    return LeanAdam(params, lr=lr, eps=eps)


def is_image(obs_shape: Sequence[int]) -> bool:
    """Stacked frames [C, H, W] go through a CNN; flat vectors through an MLP."""
    return len(obs_shape) == 3


def small_frames(obs_shape: Sequence[int]) -> bool:
    """Frames [C, H, W] below the 36 x 36 the Nature CNN's strides need: MinAtar's object
    channels (10 x 10), which MinAtarCNN takes."""
    return min(obs_shape[1:]) < 36


def frame_trunk(members, obs_shape: Sequence[int]) -> NatureCNN | MinAtarCNN:
    """The convolutional trunk for frames [C, H, W]: MinAtar's for its 10 x 10 object channels
    (small_frames), the Nature CNN otherwise."""
    if small_frames(obs_shape):
        return MinAtarCNN(members, obs_shape[0], obs_shape[1], obs_shape[2])
    return NatureCNN(members, obs_shape[0])


def obs_net(members, obs_shape: Sequence[int], hidden_sizes: Sequence[int], out_dim: int):
    """s -> out_dim outputs: an MLP over hidden_sizes for vectors; for frames the trunk
    (frame_trunk) then one hidden layer of its paper's width (Nature CNN: 512, Mnih et al. 2015;
    MinAtar: 128, Young and Tian 2019)."""
    if is_image(obs_shape):
        trunk = frame_trunk(members, obs_shape)
        return nn.Sequential(trunk, MLP(members, trunk.out_dim, (trunk.head,), out_dim))
    return MLP(members, obs_shape[0], hidden_sizes, out_dim)


class TanhGaussianActor(nn.Module):
    """SAC-style policy per member: s -> a = tanh(mu + sigma * eps), with the tanh-corrected
    log-density. [S, *batch, obs] -> ([S, *batch, act], [S, *batch])."""

    LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0

    def __init__(
        self,
        members,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: Sequence[int],
        log_std_offset: float = 0.0,
    ):
        super().__init__()
        self.trunk = MLP(members, obs_dim, hidden_sizes, None)
        self.head = Linear(members, self.trunk.out_dim, 2 * act_dim)  # [mu | log sigma]
        #: added to the head's log sigma (a smaller initial spread when negative)
        self.log_std_offset = log_std_offset

    def distribution(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma) of the Gaussian before the tanh, log sigma offset and clamped."""
        mu, log_std = self.head(self.trunk(obs)).chunk(2, -1)
        log_std = (log_std + self.log_std_offset).clamp(self.LOG_STD_MIN, self.LOG_STD_MAX)
        return mu, log_std

    def forward(
        self, obs: torch.Tensor, rng=None, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(action in [-1, 1], log pi(action|s)); deterministic: tanh(mu), log-prob 0.
        rng: the seeds' streams (bench.seeding.SeedStreams) the noise eps comes from."""
        mu, log_std = self.distribution(obs)
        if deterministic:
            return torch.tanh(mu), torch.zeros(mu.shape[:-1], device=mu.device)
        noise = rng.normal(*mu.shape[1:])
        u = mu + log_std.exp() * noise
        # log N(u; mu, std) - sum log(1 - tanh(u)^2), the latter in a stable form
        log_prob = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
        return torch.tanh(u), log_prob


def critic_values(critics: nn.Module, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """Q(s, a) of every member of a critic ensemble MLP (S, E) over [s | a]: obs [S, *batch, obs],
    act [S, *batch, act] -> [S, E, *batch]."""
    return critics(torch.cat([obs, act], -1)).squeeze(-1)


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging, target <- (1 - tau) target + tau source, over all parameters at once."""
    with torch.no_grad():
        torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


def hard_update(target: nn.Module, source: nn.Module) -> None:
    with torch.no_grad():
        torch._foreach_copy_(list(target.parameters()), list(source.parameters()))


class ActionScale:
    """Maps env actions in [low, high] to the unit box [-1, 1] the networks use, and back."""

    def __init__(self, low, high, device: torch.device):
        self.low = torch.as_tensor(low, dtype=torch.float32, device=device)
        self.high = torch.as_tensor(high, dtype=torch.float32, device=device)
        self.half = (self.high - self.low) / 2
        self.mid = (self.high + self.low) / 2

    def to_unit(self, a: torch.Tensor) -> torch.Tensor:
        return ((a - self.mid) / self.half).clamp(-1.0, 1.0)

    def from_unit(self, u: torch.Tensor, bound: str = "clip") -> torch.Tensor:
        """bound: 'clip' clips u to [-1, 1]; 'tanh' squashes it (action_bound_method)."""
        u = torch.tanh(u) if bound == "tanh" else u.clamp(-1.0, 1.0)
        return self.mid + self.half * u
