"""HDC algebra on 2-bit packed ternary rows in Triton, without unpacking to int8 in memory.

* :func:`bind` — element-wise product: non-zero where both are, negative where the signs differ.
* :func:`permute` — cyclic shift by ``k`` trits within each row of ``dim`` trits (``numpy.roll``
  convention: output trit ``i`` is input trit ``(i - k) mod dim``); padding trits stay 0.
* :func:`bundle` — element-wise sum of ``n`` rows, re-quantized to ``+1 if s > threshold,
  -1 if s < -threshold, else 0`` (majority vote for ``threshold=0``, ties to 0), packed; or the
  int32 sums themselves with ``packed=False``.

All take and return packed uint8 in the normative sign layout; code ``11`` raises ``ValueError``.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._util import check_int, check_tensor, new_flag, raise_flag, raise_if

__all__ = ["bind", "permute", "bundle"]

_BLOCK = 1024
_BAD = "{}: contains the invalid 2-bit code 0b11"


@triton.jit(do_not_specialize=["n", "B"])
def _bind_kernel(a_ptr, b_ptr, out_ptr, flag_ptr, n, B, B_ROW: tl.constexpr, BLOCK: tl.constexpr):
    g = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = g < n
    x = tl.load(a_ptr + g, mask=m, other=0).to(tl.int32)
    if B_ROW:
        y = tl.load(b_ptr + g % B, mask=m, other=0).to(tl.int32)
    else:
        y = tl.load(b_ptr + g, mask=m, other=0).to(tl.int32)
    nz = ((x | (x >> 1)) & (y | (y >> 1))) & 0x55
    neg = ((x ^ y) >> 1) & nz
    out = (nz & ~neg) | (neg << 1)
    tl.store(out_ptr + g, out.to(tl.uint8), mask=m)
    bad = (x & (x >> 1) & 0x55) | (y & (y >> 1) & 0x55)
    raise_flag(flag_ptr, tl.max(bad, axis=0))


@triton.jit(do_not_specialize=["n", "B", "D", "k"])
def _permute_kernel(a_ptr, out_ptr, flag_ptr, n, B, D, k, BLOCK: tl.constexpr):
    g = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    sub = tl.arange(0, 4)
    row = g // B
    i = (g - row * B)[:, None] * 4 + sub[None, :]  # output trit index within the row
    valid = (g < n)[:, None] & (i < D)
    src = i - k
    src = tl.where(src < 0, src + D, src)  # 0 <= k < D
    byte = tl.load(a_ptr + row[:, None] * B + src // 4, mask=valid, other=0).to(tl.int32)
    code = (byte >> (6 - 2 * (src % 4))) & 3
    code = tl.where(valid, code, 0)
    out = tl.sum(code << (6 - 2 * sub[None, :]), axis=1)
    tl.store(out_ptr + g, out.to(tl.uint8), mask=g < n)
    raise_flag(flag_ptr, tl.max(tl.max((code == 3).to(tl.int32), axis=1), axis=0))


@triton.jit(do_not_specialize=["n", "B", "q", "r2"])
def _permute_aligned_kernel(a_ptr, out_ptr, flag_ptr, n, B, q, r2, BLOCK: tl.constexpr):
    """``D % 4 == 0``, shift ``k = 4 q + r2 / 2``: output byte j of a row is the bit stream of the
    row rotated by 2k bits, i.e. the low ``r2`` bits of input byte ``j - q - 1`` followed by the
    high ``8 - r2`` bits of input byte ``j - q`` (indices mod B): two coalesced loads per byte."""
    g = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = g < n
    row = g // B
    j = g - row * B
    jc = j - q
    jc = tl.where(jc < 0, jc + B, jc)
    jp = tl.where(jc == 0, B - 1, jc - 1)
    cur = tl.load(a_ptr + row * B + jc, mask=m, other=0).to(tl.int32)
    prev = tl.load(a_ptr + row * B + jp, mask=m, other=0).to(tl.int32)
    out = ((prev << (8 - r2)) | (cur >> r2)) & 0xFF
    tl.store(out_ptr + g, out.to(tl.uint8), mask=m)
    raise_flag(flag_ptr, tl.max(cur & (cur >> 1) & 0x55, axis=0))


@triton.jit(do_not_specialize=["n", "B", "D", "threshold"])
def _bundle_kernel(v_ptr, out_ptr, flag_ptr, n, B, D, threshold,
                   PACKED: tl.constexpr, BLOCK: tl.constexpr):
    """Program (group, byte block): sums the n rows of one group, then thresholds and packs."""
    grp = tl.program_id(0).to(tl.int64)
    j = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    sub = tl.arange(0, 4)
    mj = j < B
    acc = tl.zeros([BLOCK, 4], dtype=tl.int32)
    bad = tl.zeros([BLOCK], dtype=tl.int32)
    base = v_ptr + grp * n * B
    for r in range(0, n):
        x = tl.load(base + r * B + j, mask=mj, other=0).to(tl.int32)
        bad = bad | (x & (x >> 1) & 0x55)
        code = (x[:, None] >> (6 - 2 * sub[None, :])) & 3
        acc += (code & 1) - (code >> 1)
    i = j[:, None] * 4 + sub[None, :]
    if PACKED:
        c = tl.where(acc > threshold, 1, tl.where(acc < -threshold, 2, 0))
        c = tl.where(i < D, c, 0)
        tl.store(out_ptr + grp * B + j, tl.sum(c << (6 - 2 * sub[None, :]), axis=1).to(tl.uint8), mask=mj)
    else:
        tl.store(out_ptr + grp * D + i, acc, mask=mj[:, None] & (i < D))
    raise_flag(flag_ptr, tl.max(bad, axis=0))


@triton.jit(do_not_specialize=["n", "B", "D", "rows_per"])
def _bundle_partial_kernel(v_ptr, acc_ptr, flag_ptr, n, B, D, rows_per, BLOCK: tl.constexpr):
    """Program (group, byte block, row chunk): sums rows [chunk * rows_per, ...) of one group and adds
    the partial int32 sums into ``acc`` (groups, D) atomically: the row axis split over programs
    when there are too few groups x byte blocks to fill the GPU (one large bundle)."""
    grp = tl.program_id(0).to(tl.int64)
    j = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    r0 = tl.program_id(2).to(tl.int64) * rows_per
    sub = tl.arange(0, 4)
    mj = j < B
    acc = tl.zeros([BLOCK, 4], dtype=tl.int32)
    bad = tl.zeros([BLOCK], dtype=tl.int32)
    base = v_ptr + grp * n * B
    for r in range(r0, tl.minimum(r0 + rows_per, n)):
        x = tl.load(base + r * B + j, mask=mj, other=0).to(tl.int32)
        bad = bad | (x & (x >> 1) & 0x55)
        code = (x[:, None] >> (6 - 2 * sub[None, :])) & 3
        acc += (code & 1) - (code >> 1)
    i = j[:, None] * 4 + sub[None, :]
    tl.atomic_add(acc_ptr + grp * D + i, acc, mask=mj[:, None] & (i < D))
    raise_flag(flag_ptr, tl.max(bad, axis=0))


def _packed(x, name: str) -> torch.Tensor:
    x = check_tensor(x, name)
    if x.dtype != torch.uint8:
        raise TypeError(f"{name}: packed vectors must be uint8, got {x.dtype}")
    if x.dim() == 0:
        raise ValueError(f"{name}: expected at least 1 dimension (..., bytes), got a scalar")
    return x.contiguous()


def bind(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise product of packed ternary vectors.

    Args:
        a: packed uint8 ``(..., B)``.
        b: packed uint8 of ``a``'s shape, or one row ``(B,)`` bound to every row of ``a``.

    Returns:
        packed uint8 of ``a``'s shape (padding trits stay 0).
    """
    a, b = _packed(a, "a"), _packed(b, "b")
    if a.device != b.device:
        raise ValueError(f"b: on {b.device} but a is on {a.device}")
    row = b.dim() == 1 and a.dim() > 1
    if (b.shape[-1] != a.shape[-1]) or (not row and b.shape != a.shape):
        raise ValueError(f"b: shape {tuple(b.shape)} does not match a's {tuple(a.shape)} (or one row of it)")
    return _bind(a, b, row)


def bind_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """:func:`bind` on validated packed tensors whose shapes broadcast (numpy rules): the entry of
    the device seam. One row ``b`` is bound to every row of ``a`` without being copied."""
    row = b.dim() == 1 and a.dim() > 1
    if not row and a.shape != b.shape:
        a, b = torch.broadcast_tensors(a, b)
    return _bind(a.contiguous(), b.contiguous(), row)


def _bind(a: torch.Tensor, b: torch.Tensor, row: bool) -> torch.Tensor:
    out = torch.empty_like(a)
    n = a.numel()
    if n:
        flag = new_flag(a.device)
        _bind_kernel[(triton.cdiv(n, _BLOCK),)](a, b, out, flag, n, a.shape[-1], B_ROW=row, BLOCK=_BLOCK)
        raise_if(flag, _BAD.format("a or b"))
    return out


def permute(a: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Cyclic shift of each packed row by ``k`` trits (any integer; negative shifts left).

    Args:
        a: packed uint8 ``(..., ceil(dim / 4))``.
        k: shift; output trit ``i`` = input trit ``(i - k) mod dim`` (``numpy.roll``).
        dim: trits per row.

    Returns:
        packed uint8 of ``a``'s shape.
    """
    a = _packed(a, "a")
    k = check_int(k, "k")
    dim = check_int(dim, "dim", 1)
    B = (dim + 3) // 4
    if a.shape[-1] != B:
        raise ValueError(f"a: last axis has {a.shape[-1]} bytes but dim={dim} needs {B}")
    return permute_rows(a, k, dim)


def permute_rows(a: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """:func:`permute` on validated arguments (packed rows of ``ceil(dim / 4)`` bytes, integers
    ``k`` and ``dim >= 1``): the entry of the device seam."""
    a = a.contiguous()
    B = a.shape[-1]
    out = torch.empty_like(a)
    n = a.numel()
    if n:
        flag = new_flag(a.device)
        k %= dim
        if dim % 4 == 0:
            _permute_aligned_kernel[(triton.cdiv(n, _BLOCK),)](a, out, flag, n, B, k // 4, 2 * (k % 4), BLOCK=_BLOCK)
        else:
            _permute_kernel[(triton.cdiv(n, _BLOCK),)](a, out, flag, n, B, dim, k, BLOCK=_BLOCK)
        raise_if(flag, _BAD.format("a"))
    return out


#: ``bundle`` splits the rows of each group over several programs when groups x byte blocks would
#: give fewer than this many programs (one program per tile would leave most of the GPU idle) ...
BUNDLE_MIN_PROGRAMS = 512
#: ... but never into chunks of fewer than this many rows.
BUNDLE_MIN_ROWS = 64


def bundle(vectors: torch.Tensor, dim: int, threshold: int = 0, packed: bool = True) -> torch.Tensor:
    """Element-wise sum of packed vectors, re-quantized.

    Args:
        vectors: packed uint8 ``(..., n, ceil(dim / 4))``: each group of ``n`` rows is bundled.
        dim: trits per row.
        threshold: non-negative integer; ``+1 if sum > threshold, -1 if sum < -threshold, else 0``
            (0: the majority sign, ties to 0).
        packed: return packed uint8 ``(..., ceil(dim / 4))``; ``False``: the int32 sums ``(..., dim)``.
    """
    v = _packed(vectors, "vectors")
    dim = check_int(dim, "dim", 1)
    threshold = check_int(threshold, "threshold", 0)
    if v.dim() < 2:
        raise ValueError(f"vectors: expected (..., n, bytes), got shape {tuple(v.shape)}")
    B = (dim + 3) // 4
    if v.shape[-1] != B:
        raise ValueError(f"vectors: last axis has {v.shape[-1]} bytes but dim={dim} needs {B}")
    return bundle_rows(v, dim, threshold, packed)


def bundle_rows(v: torch.Tensor, dim: int, threshold: int = 0, packed: bool = True) -> torch.Tensor:
    """:func:`bundle` on validated arguments (packed ``(..., n >= 1, ceil(dim / 4))``, integers
    ``dim >= 1`` and ``threshold >= 0``): the entry of the device seam."""
    v = v.contiguous()
    B = (dim + 3) // 4
    n = v.shape[-2]
    lead = v.shape[:-2]
    groups = math.prod(lead)
    if packed:
        out = torch.empty(lead + (B,), dtype=torch.uint8, device=v.device)
    else:
        out = torch.empty(lead + (dim,), dtype=torch.int32, device=v.device)
    if groups and B:
        block = min(_BLOCK // 4, triton.next_power_of_2(B))
        flag = new_flag(v.device)
        tiles = groups * triton.cdiv(B, block)
        splits = min(triton.cdiv(BUNDLE_MIN_PROGRAMS, tiles), triton.cdiv(n, BUNDLE_MIN_ROWS)) if n else 1
        thr = min(threshold, 2 ** 31 - 1)
        if splits <= 1:
            _bundle_kernel[(groups, triton.cdiv(B, block))](v, out, flag, n, B, dim, thr, PACKED=bool(packed),
                                                            BLOCK=block)
        else:  # few, long bundles: the rows split over programs, partial sums added atomically
            sums = out if not packed else torch.empty(lead + (dim,), dtype=torch.int32, device=v.device)
            sums.zero_()
            rows_per = triton.cdiv(n, splits)
            _bundle_partial_kernel[(groups, triton.cdiv(B, block), triton.cdiv(n, rows_per))](
                v, sums, flag, n, B, dim, rows_per, BLOCK=block)
            if packed:
                from .pack import pack_rows

                out = pack_rows((sums > thr).to(torch.int8) - (sums < -thr).to(torch.int8))
        raise_if(flag, _BAD.format("vectors"))
    return out
