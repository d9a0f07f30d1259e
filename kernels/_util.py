"""Shared helpers of the Triton kernels: device checks, error flags and the popcount.

The kernels run on CUDA tensors, or on CPU tensors through the Triton interpreter when the
environment variable ``TRITON_INTERPRET=1`` is set before ``ternhd.kernels`` is imported.
"""
from __future__ import annotations

import os
import warnings
from typing import Any

import torch
import triton
import triton.language as tl

__all__ = ["interpreting", "hw_popcount", "check_tensor", "check_int", "new_flag", "raise_if", "raise_flag",
           "popcount32", "launch", "tune",
           "autotune_enabled", "tuning_table", "size_class"]


def interpreting() -> bool:
    """True when Triton runs kernels through its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def hw_popcount(device: torch.device) -> bool:
    """Whether kernels on ``device`` use the hardware ``popc`` instruction (CUDA, compiled) rather
    than the SWAR form (the interpreter cannot run inline PTX)."""
    return device.type == "cuda" and not interpreting()


def check_tensor(x: Any, name: str) -> torch.Tensor:
    """``x`` as a torch tensor the kernels can run on: CUDA, or CPU under the interpreter.

    Raises:
        TypeError: not a tensor, or a CPU tensor without ``TRITON_INTERPRET=1``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch tensor, got {type(x).__name__}")
    if x.device.type == "cuda":
        return x
    if x.device.type == "cpu" and interpreting():
        return x
    raise TypeError(f"{name}: Triton kernels need a CUDA tensor (or a CPU tensor with TRITON_INTERPRET=1), "
                    f"got a tensor on {x.device}")


def check_int(v: Any, name: str, minimum=None) -> int:
    """``v`` as an integer argument: TypeError for non-integers (bool included), ValueError below
    ``minimum``."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{name}: expected an integer, got {type(v).__name__}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {v}")
    return v


def new_flag(device: torch.device) -> torch.Tensor:
    """A zeroed int32 scalar the kernels raise (``atomic_max``) when they meet invalid input."""
    return torch.zeros(1, dtype=torch.int32, device=device)


def raise_if(flag: torch.Tensor, message: str) -> None:
    """Raises ``ValueError(message)`` when a kernel set ``flag`` (one device-to-host sync)."""
    if int(flag.item()) != 0:
        raise ValueError(message)


@triton.jit
def raise_flag(flag_ptr, value):
    """``flag = max(flag, value)`` for a scalar ``value``, as a masked atomic that only runs where
    ``value > 0``: valid input (the normal case) sends no atomic traffic to the one flag address
    that every program of a launch shares."""
    v = tl.zeros([1], dtype=tl.int32) + value  # a 1-element tensor: older interpreters reject a scalar mask
    tl.atomic_max(flag_ptr + tl.arange(0, 1), v, mask=v > 0)


@triton.jit
def grouped_tile(pid, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """(pid_m, pid_n) of program ``pid`` over a cdiv(M, BLOCK_M) x cdiv(N, BLOCK_N) grid, visited in
    groups of GROUP_M row-tiles so that neighbouring programs share operand tiles in L2."""
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(N, BLOCK_N)
    width = GROUP_M * num_n
    first_m = (pid // width) * GROUP_M
    size_m = tl.minimum(num_m - first_m, GROUP_M)
    return first_m + (pid % width) % size_m, (pid % width) // size_m


@triton.jit
def popcount32(x, HW: tl.constexpr):
    """Per-element popcount of a 32-bit integer tensor -> int32.

    ``HW=True``: the PTX ``popc.b32`` instruction (compiled CUDA only). ``HW=False``: the SWAR form
    (shifts, masks and one multiply), which also runs under the interpreter.
    """
    if HW:
        y = tl.inline_asm_elementwise("popc.b32 $0, $1;", "=r,r", [x.to(tl.int32, bitcast=True)],
                                      dtype=tl.int32, is_pure=True, pack=1)
    else:
        v = x.to(tl.uint32, bitcast=True)
        v = v - ((v >> 1) & 0x55555555)
        v = (v & 0x33333333) + ((v >> 2) & 0x33333333)
        v = (v + (v >> 4)) & 0x0F0F0F0F
        y = ((v * 0x01010101) >> 24).to(tl.int32)
    return y


def launch(kernel, grid, args: tuple, cfg: dict, **constexprs) -> dict:
    """Launches ``kernel[grid](*args, **constexprs, **cfg)``; if the GPU lacks the shared memory or
    registers for ``cfg``, retries with fewer pipeline stages, then with half of ``BLOCK_K``.
    Returns the configuration that ran."""
    try:
        from triton.runtime.errors import OutOfResources
    except ImportError:  # pragma: no cover - older layouts
        OutOfResources = RuntimeError
    tries = [dict(cfg)]
    if cfg.get("num_stages", 1) > 2:
        tries.append({**cfg, "num_stages": 2})
    if cfg.get("BLOCK_K", 0) >= 32:
        tries.append({**cfg, "num_stages": min(cfg.get("num_stages", 2), 2), "BLOCK_K": cfg["BLOCK_K"] // 2})
    for i, c in enumerate(tries):
        try:
            kernel[grid(c) if callable(grid) else grid](*args, **constexprs, **c)
            return c
        except OutOfResources:
            if i == len(tries) - 1:
                raise
    return tries[-1]


# ----------------------------------------------------------------------------- launch-config tuning
#: Chosen configuration per (kernel, key), with the timings of every candidate (see :func:`tuning_table`).
_TUNED: dict = {}


def autotune_enabled() -> bool:
    """Whether large launches time their candidate configurations on first use (compiled CUDA only;
    ``TERNHD_AUTOTUNE=0`` turns it off and every launch uses the module's default configuration)."""
    return os.environ.get("TERNHD_AUTOTUNE", "1") not in ("", "0")


def size_class(n: int) -> int:
    """``n`` rounded up to a power of two: the size part of a tuning key, so that a new batch size
    reuses the choice made for one of the same order."""
    return 1 << max(0, int(n) - 1).bit_length()


def tune(name: str, key: tuple, candidates, run) -> dict:
    """The fastest of ``candidates`` (launch-config dicts) for ``(name, key)``: on first use each is
    timed with ``triton.testing.do_bench`` through ``run(cfg)`` (which launches the kernel on the
    caller's real operands; it must be repeatable: outputs overwritten, flags only raised); the
    choice is cached for the process. Candidates the GPU cannot run (shared memory, registers) are
    skipped, and so, with a ``RuntimeWarning``, are candidates that fail to compile or launch."""
    k = (name,) + tuple(key)
    hit = _TUNED.get(k)
    if hit is not None:
        return dict(hit["config"])
    try:
        from triton.runtime.errors import OutOfResources
    except ImportError:  # pragma: no cover - older layouts
        OutOfResources = RuntimeError
    timings, failed = [], []
    for cfg in candidates:
        try:
            ms = triton.testing.do_bench(lambda: run(dict(cfg)), warmup=5, rep=25, return_mode="median")
        except OutOfResources:
            continue
        except Exception as exc:  # a candidate this triton / GPU cannot compile: the others still count
            failed.append((dict(cfg), f"{type(exc).__name__}: {exc}"))
            warnings.warn(f"{name}: launch candidate {cfg} failed ({type(exc).__name__}: {exc}); skipped",
                          RuntimeWarning, stacklevel=2)
            continue
        timings.append((float(ms), dict(cfg)))
    if not timings:
        raise RuntimeError(f"{name}: no launch configuration runs on this GPU"
                           + "".join(f"; {c}: {e}" for c, e in failed))
    timings.sort(key=lambda t: t[0])
    _TUNED[k] = {"config": timings[0][1], "timings": timings}
    return dict(timings[0][1])


def tuning_table() -> list:
    """``[(kernel, key, chosen config, [(ms, config), ...])]`` of every tuning done in this process."""
    return [(k[0], k[1:], v["config"], list(v["timings"])) for k, v in _TUNED.items()]
