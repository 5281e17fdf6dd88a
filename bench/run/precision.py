"""Numeric precision of the update: fp32, or bf16 mixed precision where the hardware has it.

bf16 runs the forward and backward passes under torch.autocast: matmuls and convolutions take
bf16 operands and accumulate in fp32, while the parameters (the master weights), their
gradients, the optimizer's moments and the target networks stay fp32, and autocast keeps the
reductions that need range (softmax, log-softmax, losses) in fp32. Acting and evaluation run in
fp32 on the same weights. The precision is part of a run's key: a bf16 run is another
configuration, never compared as if it were the fp32 one.

bf16 is offered only where the hardware computes it natively: on the CPU, AVX512-BF16 or AMX
(x86) or the BF16 extension (Arm); on CUDA, a device of compute capability 8.0 or newer.
Elsewhere torch would emulate it, slower than fp32, so it is refused.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from bench.errors import BenchError

PRECISIONS = ("fp32", "bf16")
#: CPU flags (Linux /proc/cpuinfo) that mean native bf16 arithmetic
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo: 'flags' on x86, 'Features' on Arm);
    empty where they cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_bf16() -> str | None:
    """The CPU's native bf16 feature (e.g. 'avx512_bf16'), or None without one."""
    flags = cpu_flags()
    return next((f for f in BF16_CPU_FLAGS if f in flags), None)


def cuda_bf16(device: torch.device) -> bool:
    return torch.cuda.get_device_capability(device) >= (8, 0)


def check_precision(precision: str, device: torch.device | str) -> None:
    """A precision this device computes natively: one line otherwise."""
    if precision not in PRECISIONS:
        raise BenchError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "bf16":
        return
    dev = torch.device(device)
    if dev.type == "cuda":
        if not cuda_bf16(dev):
            name = torch.cuda.get_device_name(dev)
            raise BenchError(
                f"--precision bf16: {name} has no native bf16 (compute capability "
                "8.0 or newer needed); use --precision fp32"
            )
        return
    if cpu_bf16() is None:
        from bench.run.provenance import cpu_model

        raise BenchError(
            f"--precision bf16: this CPU ({cpu_model()}) has no native bf16 (AVX512-BF16 or AMX "
            "on x86, BF16 on Arm), so bf16 would be emulated, slower than fp32; use --precision "
            "fp32"
        )


def autocast(precision: str, device: torch.device):
    """The context the update runs in: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def with_precision(fn, precision: str, device: torch.device):
    """fn run under the precision's autocast (fn itself for fp32)."""
    if precision == "fp32":
        return fn

    def wrapped(*args, **kwargs):
        with autocast(precision, device):
            return fn(*args, **kwargs)

    return wrapped
