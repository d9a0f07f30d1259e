"""Device functions shared by the similarity kernels (:mod:`.similarity_scan`, :mod:`.similarity_gemm`):
plane decoding of packed bytes, the cosine / key epilogue. Contract in :mod:`.similarity`."""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _decode_plane(x, S: tl.constexpr, HW: tl.constexpr):
    """Trits of 2-bit slot ``S`` (0 = high bits) of every byte of the uint8 tile ``x`` -> int8 in
    {-1, 0, 1}. HW: one PTX sequence per 4 bytes (pack=4), else per-element Triton arithmetic."""
    if HW:
        if S == 0:
            y = tl.inline_asm_elementwise(
                "{.reg .b32 t, n; shr.b32 t, $1, 6; and.b32 t, t, 0x03030303; shr.b32 n, t, 1; "
                "and.b32 n, n, 0x01010101; mul.lo.u32 n, n, 253; xor.b32 $0, t, n;}",
                "=r,r", [x], dtype=tl.int8, is_pure=True, pack=4)
        elif S == 1:
            y = tl.inline_asm_elementwise(
                "{.reg .b32 t, n; shr.b32 t, $1, 4; and.b32 t, t, 0x03030303; shr.b32 n, t, 1; "
                "and.b32 n, n, 0x01010101; mul.lo.u32 n, n, 253; xor.b32 $0, t, n;}",
                "=r,r", [x], dtype=tl.int8, is_pure=True, pack=4)
        elif S == 2:
            y = tl.inline_asm_elementwise(
                "{.reg .b32 t, n; shr.b32 t, $1, 2; and.b32 t, t, 0x03030303; shr.b32 n, t, 1; "
                "and.b32 n, n, 0x01010101; mul.lo.u32 n, n, 253; xor.b32 $0, t, n;}",
                "=r,r", [x], dtype=tl.int8, is_pure=True, pack=4)
        else:
            y = tl.inline_asm_elementwise(
                "{.reg .b32 t, n; and.b32 t, $1, 0x03030303; shr.b32 n, t, 1; "
                "and.b32 n, n, 0x01010101; mul.lo.u32 n, n, 253; xor.b32 $0, t, n;}",
                "=r,r", [x], dtype=tl.int8, is_pure=True, pack=4)
    else:
        c = (x >> (6 - 2 * S)) & 3
        y = (c & 1).to(tl.int8) - (c >> 1).to(tl.int8)
    return y


@triton.jit
def _nonzero_plane(x, S: tl.constexpr):
    """1 where the trit in slot ``S`` of each byte is non-zero, as int8."""
    c = (x >> (6 - 2 * S)) & 3
    return (c != 0).to(tl.int8)


@triton.jit
def _cosine(dotv, na, nb):
    """float32(dot / sqrt(na * nb)) computed in float64 (IEEE divide and square root, as the C++
    path), 0 where either norm is 0. Used where there is one score per row (the scan)."""
    p = (na.to(tl.int64) * nb).to(tl.float64)  # exact: na * nb < 2**53
    ok = p > 0
    return tl.where(ok, dotv.to(tl.float64) / tl.sqrt(tl.where(ok, p, 1.0)), 0.0).to(tl.float32)


@triton.jit
def _inv_sqrt(n):
    """float64 1 / sqrt(n) of int32 row norms (0 where n == 0): the per-row cosine scale of the
    batched kernels, computed once per tile row / column instead of once per pair."""
    ok = n > 0
    return tl.where(ok, 1.0 / tl.sqrt(tl.where(ok, n, 1).to(tl.float64)), 0.0)


@triton.jit
def _output(score, METRIC: tl.constexpr, KEY: tl.constexpr, idx):
    """The score itself, or with KEY its int64 top-k key: order-preserving score bits << 32 |
    (2**32 - 1 - index), so that larger keys are better and ties go to the lower index."""
    if KEY:
        if METRIC == 1:
            bits = score.to(tl.int32, bitcast=True)
            ordered = tl.where(bits >= 0, bits, bits ^ 0x7FFFFFFF)
        elif METRIC == 2:
            ordered = -score
        else:
            ordered = score
        res = (ordered.to(tl.int64) << 32) + (4294967296 - 1 - idx)
    else:
        res = score
    return res


@triton.jit
def _epilogue(dotv, both, na, nb, METRIC: tl.constexpr, KEY: tl.constexpr, idx):
    """Scores of a (rows x cols) tile from its dot products, ``both`` (non-zero overlaps, hamming;
    int32, or float32 holding integers) and the int32 norms ``na`` (rows) / ``nb`` (cols): int32
    dot / hamming, float32 cosine, or with KEY the int64 top-k keys. Cosine is
    ``float32(dot * (1/sqrt(na)) * (1/sqrt(nb)))`` in float64: two multiplies per pair (no per-pair
    divide or square root, which spilled registers); it equals the C++ path's
    ``float32(dot / sqrt(na * nb))`` except, rarely, in the last float32 bit."""
    if METRIC == 0:
        score = dotv.to(tl.int32)
    elif METRIC == 2:
        score = na[:, None] + nb[None, :] - (3 * both.to(tl.int32) + dotv.to(tl.int32)) // 2
    else:
        score = ((dotv.to(tl.float64) * _inv_sqrt(na)[:, None]) * _inv_sqrt(nb)[None, :]).to(tl.float32)
    return _output(score, METRIC, KEY, idx)
