"""Ternary quantization of float rows in Triton: ``+1 if x > thr, -1 if x < -thr, else 0``.

Every comparison is exact in float64 (as in the C++ path), so a row quantized here and by
``ternhd.quantize`` on the CPU agree trit for trit whenever the thresholds agree. Threshold modes
(see ``ternhd.quantize``): ``"std"`` (per-row population std, computed in the kernel in float64),
``"batch"`` (one std over the whole tensor, float64), a fixed number, or ``sparsity=s`` (per row
the ``round(s * D)``-th smallest ``|x|``, found exactly by a radix select over the bits of ``|x|``:
one pass per bit over the row, which stays in L1, instead of a sort).
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
import triton
import triton.language as tl

from ._util import check_tensor, new_flag, raise_flag, raise_if

__all__ = ["quantize", "row_thresholds"]

_INF = tl.constexpr(float("inf"))  # |v| < inf: finite (false for NaN and +-Inf)
_BLOCK = 1024      # elements per step of the per-row loops
_BLOCK_BYTES = 256  # packed bytes per step of the packing loop
_ONE_BLOCK_MAX = 4096  # rows up to this length are read once and kept in registers


@triton.jit
def _quantize_row(x_row, thr_ptr, out_ptr, flag_ptr, row, D, B, tau_ptr, STD: tl.constexpr, PACKED: tl.constexpr,
                  BLOCK: tl.constexpr):
    """:func:`_quantize_kernel` for a row that fits one block: one load, then mean, std and codes
    from registers (the same float64 arithmetic)."""
    offs = tl.arange(0, BLOCK)
    valid = offs < D
    v = tl.load(x_row + offs, mask=valid, other=0).to(tl.float64)
    if STD:
        mean = tl.sum(v, axis=0) / D
        dv = tl.where(valid, v - mean, 0.0)
        thr = tl.load(tau_ptr) * tl.sqrt(tl.sum(dv * dv, axis=0) / D)  # float64 tau, as on the CPU
    else:
        thr = tl.load(thr_ptr + row)
    bad = tl.max((valid & ~(tl.abs(v) < _INF)).to(tl.int32), axis=0)
    if PACKED:
        sub = tl.arange(0, 4)
        v4 = tl.reshape(v, (BLOCK // 4, 4))
        ok4 = tl.reshape(valid, (BLOCK // 4, 4))
        code = tl.where(ok4, tl.where(v4 > thr, 1, tl.where(v4 < -thr, 2, 0)), 0)
        byte = tl.sum(code << (6 - 2 * sub[None, :]), axis=1)
        j = tl.arange(0, BLOCK // 4)
        tl.store(out_ptr + row * B + j, byte.to(tl.uint8), mask=j < B)
    else:
        t = (v > thr).to(tl.int8) - (v < -thr).to(tl.int8)
        tl.store(out_ptr + row * D + offs, t, mask=valid)
    raise_flag(flag_ptr, bad)


@triton.jit(do_not_specialize=["D", "B"])
def _quantize_kernel(x_ptr, thr_ptr, out_ptr, flag_ptr, D, B, tau_ptr,
                     STD: tl.constexpr, PACKED: tl.constexpr, BLOCK: tl.constexpr, BLOCK_BYTES: tl.constexpr,
                     ONE_BLOCK: tl.constexpr = False):
    """One program per row of x (rows, D). STD: thr = tau * std(row) (two passes in float64),
    else thr = thr_ptr[row]. PACKED: write ceil(D/4) bytes per row, else D int8 trits.
    ONE_BLOCK (D <= BLOCK): the row is read once and kept in registers for every pass."""
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * D
    if ONE_BLOCK:
        _quantize_row(x_row, thr_ptr, out_ptr, flag_ptr, row, D, B, tau_ptr, STD, PACKED, BLOCK)
        return
    if STD:
        acc = tl.zeros([BLOCK], dtype=tl.float64)
        for start in range(0, D, BLOCK):
            offs = start + tl.arange(0, BLOCK)
            acc += tl.load(x_row + offs, mask=offs < D, other=0).to(tl.float64)
        mean = tl.sum(acc, axis=0) / D
        acc2 = tl.zeros([BLOCK], dtype=tl.float64)
        for start in range(0, D, BLOCK):
            offs = start + tl.arange(0, BLOCK)
            v = tl.load(x_row + offs, mask=offs < D, other=0).to(tl.float64)
            dv = tl.where(offs < D, v - mean, 0.0)
            acc2 += dv * dv
        thr = tl.load(tau_ptr) * tl.sqrt(tl.sum(acc2, axis=0) / D)  # float64 tau, as on the CPU
    else:
        thr = tl.load(thr_ptr + row)
    bad = tl.zeros([1], dtype=tl.int32)
    if PACKED:
        sub = tl.arange(0, 4)
        for start in range(0, B, BLOCK_BYTES):
            j = start + tl.arange(0, BLOCK_BYTES)
            i = j[:, None] * 4 + sub[None, :]
            valid = i < D
            v = tl.load(x_row + i, mask=valid, other=0).to(tl.float64)
            bad = tl.maximum(bad, tl.max(tl.max((valid & ~(tl.abs(v) < _INF)).to(tl.int32),
                                                axis=1), axis=0))
            code = tl.where(v > thr, 1, tl.where(v < -thr, 2, 0))
            byte = tl.sum(code << (6 - 2 * sub[None, :]), axis=1)
            tl.store(out_ptr + row * B + j, byte.to(tl.uint8), mask=j < B)
    else:
        for start in range(0, D, BLOCK):
            offs = start + tl.arange(0, BLOCK)
            valid = offs < D
            v = tl.load(x_row + offs, mask=valid, other=0).to(tl.float64)
            bad = tl.maximum(bad, tl.max((valid & ~(tl.abs(v) < _INF)).to(tl.int32), axis=0))
            t = (v > thr).to(tl.int8) - (v < -thr).to(tl.int8)
            tl.store(out_ptr + row * D + offs, t, mask=valid)
    raise_flag(flag_ptr, tl.max(bad, axis=0))


@triton.jit
def _abs_bits(x_row, offs, D, F64: tl.constexpr):
    """|x| as its bit pattern (int64 / int32), -1 past D (so it never counts as <= a trial)."""
    v = tl.load(x_row + offs, mask=offs < D, other=0.0)
    if F64:
        u = v.to(tl.int64, bitcast=True) & 0x7FFFFFFFFFFFFFFF
    else:
        u = v.to(tl.int32, bitcast=True) & 0x7FFFFFFF
    return tl.where(offs < D, u, -1)


@triton.jit(do_not_specialize=["D", "k"])
def _kth_abs_kernel(x_ptr, out_ptr, D, k, F64: tl.constexpr, ONE_BLOCK: tl.constexpr, BLOCK: tl.constexpr,
                    NBITS: tl.constexpr):
    """One program per row: the k-th smallest |x| (1 <= k <= D) of a finite float row, exactly.
    Non-negative floats order like their bit patterns, so the answer is built from the top bit down:
    bit b is 0 when at least k elements are <= (the bits fixed so far, b = 0, lower bits all 1).
    ONE_BLOCK (D <= BLOCK): the row is loaded once and kept in registers for all passes. NBITS: 63
    (float64) or 31 (float32), the bits below the sign."""
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * D
    offs0 = tl.arange(0, BLOCK)
    if F64:
        r = tl.zeros([1], dtype=tl.int64)
    else:
        r = tl.zeros([1], dtype=tl.int32)
    if ONE_BLOCK:
        u0 = _abs_bits(x_row, offs0, D, F64)
    for i in range(NBITS):
        b = NBITS - 1 - i
        trial = r | ((r * 0 + 1 << b) - 1)
        if ONE_BLOCK:
            cnt = tl.sum(((u0[None, :] <= trial[:, None]) & (u0[None, :] >= 0)).to(tl.int32), axis=1)
        else:
            cnt = tl.zeros([1], dtype=tl.int32)
            for start in range(0, D, BLOCK):
                u = _abs_bits(x_row, start + offs0, D, F64)
                cnt += tl.sum(((u[None, :] <= trial[:, None]) & (u[None, :] >= 0)).to(tl.int32), axis=1)
        r = tl.where(cnt >= k, r, r | (r * 0 + 1 << b))
    if F64:
        val = r.to(tl.float64, bitcast=True)
    else:
        val = r.to(tl.float32, bitcast=True).to(tl.float64)
    tl.store(out_ptr + row + tl.arange(0, 1), val)


def _kth_abs(x2: torch.Tensor, k: int) -> torch.Tensor:
    """float64 (rows,): the k-th smallest |x| of each row of a finite float32/float64 (rows, D) tensor."""
    rows, D = x2.shape
    out = torch.empty(rows, dtype=torch.float64, device=x2.device)
    block = min(4096, triton.next_power_of_2(D))
    f64 = x2.dtype == torch.float64
    _kth_abs_kernel[(rows,)](x2, out, D, k, F64=f64, ONE_BLOCK=D <= block, BLOCK=block, NBITS=63 if f64 else 31,
                             num_warps=8)
    return out


def _as_float(x: torch.Tensor) -> torch.Tensor:
    if x.dtype in (torch.float32, torch.float64):
        return x.contiguous()
    if x.is_floating_point():  # float16, bfloat16: read as float32, like the CPU path
        return x.to(torch.float32).contiguous()
    if x.is_complex():
        raise TypeError(f"x: expected a real-valued tensor, got dtype {x.dtype}")
    return x.to(torch.float64).contiguous()  # integers and bool: float64, like the CPU path


def row_thresholds(x2: torch.Tensor, tau: float = 0.3, threshold: Union[str, float] = "std",
                   sparsity: Optional[float] = None) -> Optional[torch.Tensor]:
    """float64 per-row thresholds (rows,) of a float (rows, D) tensor, or ``None`` for the ``"std"``
    mode (computed inside the kernel)."""
    rows, dim = x2.shape
    if sparsity is not None:
        k = int(round(float(sparsity) * dim))
        if k == 0 or rows == 0:
            return torch.zeros(rows, dtype=torch.float64, device=x2.device)
        return _kth_abs(x2, k)
    if isinstance(threshold, str) and threshold == "std":
        return None
    if isinstance(threshold, str) and threshold == "batch":
        if x2.numel() == 0:
            return torch.zeros(rows, dtype=torch.float64, device=x2.device)
        sd = x2.to(torch.float64).std(correction=0)
        return (float(tau) * sd).expand(rows).contiguous()
    return torch.full((rows,), float(threshold), dtype=torch.float64, device=x2.device)


def quantize(x: torch.Tensor, tau: float = 0.3, threshold: Union[str, float] = "std",
             sparsity: Optional[float] = None, packed: bool = False) -> torch.Tensor:
    """Quantize real values to ternary (same arguments and results as ``ternhd.quantize``).

    Args:
        x: float tensor ``(..., D)`` (integers are read as float64, float16/bfloat16 as float32).
        tau, threshold, sparsity: the threshold mode, trusted (``ternhd.quantize`` validates it
            before it calls here).
        packed: return packed uint8 ``(..., ceil(D/4))`` instead of int8 ``(..., D)``.

    Raises:
        ValueError: NaN/Inf in ``x``, 0-d input. TypeError: non-real dtype.
    """
    x = check_tensor(x, "x")
    if x.dim() == 0:
        raise ValueError("x: expected at least 1 dimension (..., D), got a scalar")
    if x.is_complex():
        raise TypeError(f"x: expected a real-valued tensor, got dtype {x.dtype}")
    return quantize_rows(x, tau, threshold, sparsity, packed)


def quantize_rows(x: torch.Tensor, tau: float = 0.3, threshold: Union[str, float] = "std",
                  sparsity: Optional[float] = None, packed: bool = False) -> torch.Tensor:
    """:func:`quantize` on validated arguments (a real tensor of at least 1 dimension, a valid
    mode): the entry of the device seam."""
    x = _as_float(x)
    D = x.shape[-1]
    B = (D + 3) // 4
    rows = math.prod(x.shape[:-1])
    x2 = x.reshape(rows, D)
    out = torch.empty((rows, B if packed else D), dtype=torch.uint8 if packed else torch.int8, device=x.device)
    if rows and D:
        flag = new_flag(x.device)
        if sparsity is not None and not bool(torch.isfinite(x2).all()):
            raise ValueError("x: contains NaN or Inf")  # before the selection, like the CPU path
        thr = row_thresholds(x2, tau, threshold, sparsity)
        std = thr is None
        tau_t = torch.full((1,), float(tau), dtype=torch.float64, device=x.device)
        one = D <= _ONE_BLOCK_MAX
        block = max(4, triton.next_power_of_2(D)) if one else _BLOCK
        _quantize_kernel[(rows,)](x2, tau_t if std else thr, out, flag, D, B, tau_t, STD=std,
                                  PACKED=bool(packed), BLOCK=block,
                                  BLOCK_BYTES=min(_BLOCK_BYTES, triton.next_power_of_2(B)), ONE_BLOCK=one,
                                  num_warps=8 if block >= 4096 else 4)
        raise_if(flag, "x: contains NaN or Inf")
    return out.reshape(x.shape[:-1] + out.shape[-1:])
