"""2-bit packing and unpacking of ternary rows (the normative layout of docs/FORMAT.md) in Triton.

Trit ``i`` of a row lives in byte ``i // 4`` at bit offset ``6 - 2 * (i % 4)``. ``layout="sign"``:
codes 0 -> ``00``, +1 -> ``01``, -1 -> ``10``; ``layout="offset"``: the stored code is ``t + 1``.
Padding trits (beyond ``D``) are the value 0. Code ``11`` is invalid: unpacking raises on it.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._util import check_int, check_tensor, new_flag, raise_flag, raise_if

__all__ = ["pack_ternary", "unpack_ternary", "unpack_rows", "LAYOUTS"]

LAYOUTS = ("sign", "offset")
_BLOCK_BYTES = 1024


@triton.jit(do_not_specialize=["n_bytes", "D", "B"])
def _pack_kernel(t_ptr, out_ptr, flag_ptr, n_bytes, D, B,
                 OFFSET: tl.constexpr, EVEN: tl.constexpr, INT8: tl.constexpr, BLOCK: tl.constexpr):
    # One program packs BLOCK output bytes of the flat (rows, B) output. t is (rows, D) contiguous.
    g = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)  # flat byte index
    sub = tl.arange(0, 4)
    if EVEN:  # D % 4 == 0: byte g covers trits 4g .. 4g+3 of the flat input
        src = g[:, None] * 4 + sub[None, :]
        valid = (g < n_bytes)[:, None] & (sub[None, :] < 4)
    else:
        row = g // B
        i = (g - row * B) * 4  # first trit of this byte within its row
        src = row[:, None] * D + i[:, None] + sub[None, :]
        valid = (g < n_bytes)[:, None] & ((i[:, None] + sub[None, :]) < D)
    v = tl.load(t_ptr + src, mask=valid, other=0)
    if INT8:
        pos = v == 1
        neg = v == -1
        zero = v == 0
    else:  # any other dtype: compare exactly in float64 (same acceptance as the CPU path)
        f = v.to(tl.float64)
        pos = f == 1.0
        neg = f == -1.0
        zero = f == 0.0
    bad = valid & ~(pos | neg | zero)
    if OFFSET:
        code = tl.where(pos, 2, tl.where(neg, 0, 1))
    else:
        code = tl.where(pos, 1, tl.where(neg, 2, 0))
    byte = tl.sum(code << (6 - 2 * sub[None, :]), axis=1)
    tl.store(out_ptr + g, byte.to(tl.uint8), mask=g < n_bytes)
    raise_flag(flag_ptr, tl.max(bad.to(tl.int32)))


@triton.jit(do_not_specialize=["n_bytes"])
def _pack_words_kernel(t_ptr, out_ptr, flag_ptr, n_bytes, OFFSET: tl.constexpr, BLOCK: tl.constexpr):
    """int8 trits with ``D % 4 == 0``: the 32-bit word g of the flat input (trits 4g .. 4g+3, the
    lowest address in the low byte) becomes output byte g; one coalesced load per byte."""
    g = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    m = g < n_bytes
    w = tl.load(t_ptr + g, mask=m, other=0)
    byte = tl.zeros([BLOCK], dtype=tl.int32)
    bad = tl.zeros([BLOCK], dtype=tl.int32)
    for s in tl.static_range(4):
        v = (w >> (8 * s)) & 0xFF  # trit 4g + s as an unsigned byte: 1, 0 or 255
        pos = v == 1
        neg = v == 255
        bad = bad | (m & ~(pos | neg | (v == 0))).to(tl.int32)
        if OFFSET:
            code = tl.where(pos, 2, tl.where(neg, 0, 1))
        else:
            code = tl.where(pos, 1, tl.where(neg, 2, 0))
        byte = byte | (code << (6 - 2 * s))
    tl.store(out_ptr + g, byte.to(tl.uint8), mask=m)
    raise_flag(flag_ptr, tl.max(bad))


@triton.jit(do_not_specialize=["n_bytes", "D", "B"])
def _unpack_kernel(p_ptr, out_ptr, flag_ptr, n_bytes, D, B, OFFSET: tl.constexpr, BLOCK: tl.constexpr):
    """Any ``D``: the trits of byte g go to row g // B, positions 4 (g % B) .. + 3 below D (padding
    trits are dropped)."""
    g = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    sub = tl.arange(0, 4)
    byte = tl.load(p_ptr + g, mask=g < n_bytes, other=0).to(tl.int32)
    code = (byte[:, None] >> (6 - 2 * sub[None, :])) & 3
    row = g // B
    i = (g - row * B) * 4
    dst = row[:, None] * D + i[:, None] + sub[None, :]
    valid = (g < n_bytes)[:, None] & ((i[:, None] + sub[None, :]) < D)
    if OFFSET:
        val = code - 1
    else:
        val = (code & 1) - (code >> 1)
    bad = valid & (code == 3)
    val = tl.where(code == 3, 0, val)
    tl.store(out_ptr + dst, val.to(tl.int8), mask=valid)
    raise_flag(flag_ptr, tl.max(bad.to(tl.int32)))


@triton.jit(do_not_specialize=["n_bytes"])
def _unpack_words_kernel(p_ptr, out_ptr, flag_ptr, n_bytes, OFFSET: tl.constexpr, FP8: tl.constexpr,
                         BLOCK: tl.constexpr):
    """``D % 4 == 0``: byte g of the flat input becomes the 32-bit word g of the output (its four
    trits as bytes, little-endian: trit 4g at the lowest address), one coalesced store per byte.
    FP8: the trit bytes are float8 e4m3 (0x38 = 1.0, 0xB8 = -1.0) instead of int8."""
    g = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    x = tl.load(p_ptr + g, mask=g < n_bytes, other=0).to(tl.int32)
    word = tl.zeros([BLOCK], dtype=tl.int32)
    bad = tl.zeros([BLOCK], dtype=tl.int32)
    for s in tl.static_range(4):
        c = (x >> (6 - 2 * s)) & 3
        if OFFSET:
            v = c - 1
        else:
            v = (c & 1) - (c >> 1)
        bad = bad | (c == 3).to(tl.int32)
        v = tl.where(c == 3, 0, v)
        if FP8:
            byte = tl.where(v != 0, 0x38, 0) | tl.where(v < 0, 0x80, 0)
        else:
            byte = v & 0xFF
        word = word | (byte << (8 * s))
    tl.store(out_ptr + g, word, mask=g < n_bytes)
    raise_flag(flag_ptr, tl.max(bad))


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")


def pack_ternary(t: torch.Tensor, layout: str = "sign") -> torch.Tensor:
    """Pack trits into 2 bits each.

    Args:
        t: tensor ``(..., D)`` with values in {-1, 0, 1}: int8 (fast path), bool, or any integer or
            floating dtype holding exactly those values. CUDA, or CPU under ``TRITON_INTERPRET=1``.
        layout: ``"sign"`` (normative) or ``"offset"`` (stored code ``t + 1``).

    Returns:
        uint8 tensor ``(..., ceil(D / 4))`` on ``t``'s device.

    Raises:
        TypeError: not a tensor, unsupported device or dtype. ValueError: values outside {-1, 0, 1},
        0-d input, bad layout.
    """
    _check_layout(layout)
    t = check_tensor(t, "t")
    if t.dim() == 0:
        raise ValueError("t: expected at least 1 dimension (..., D), got a scalar")
    if t.is_complex():
        raise TypeError(f"t: expected an integer, bool or float tensor of trits, got dtype {t.dtype}")
    return pack_rows(t, layout)


def pack_rows(t: torch.Tensor, layout: str = "sign") -> torch.Tensor:
    """:func:`pack_ternary` on validated arguments (a tensor of trits of any real or bool dtype, at
    least 1-D; a known layout): the entry of the device seam."""
    if t.dtype == torch.bool:
        t = t.view(torch.int8) if t.is_contiguous() else t.to(torch.int8)
    t = t.contiguous()
    D = t.shape[-1]
    B = (D + 3) // 4
    out = torch.empty(t.shape[:-1] + (B,), dtype=torch.uint8, device=t.device)
    n_bytes = out.numel()
    if n_bytes == 0:
        return out
    flag = new_flag(t.device)
    grid = (triton.cdiv(n_bytes, _BLOCK_BYTES),)
    if t.dtype == torch.int8 and D % 4 == 0 and t.data_ptr() % 4 == 0:
        _pack_words_kernel[grid](t.view(torch.int32), out, flag, n_bytes, OFFSET=layout == "offset",
                                 BLOCK=_BLOCK_BYTES)
    else:
        _pack_kernel[grid](t, out, flag, n_bytes, D, B, OFFSET=layout == "offset", EVEN=D % 4 == 0,
                           INT8=t.dtype == torch.int8, BLOCK=_BLOCK_BYTES)
    raise_if(flag, "t: values must be -1, 0 or 1")
    return out


def unpack_ternary(packed: torch.Tensor, dim: int, layout: str = "sign") -> torch.Tensor:
    """Unpack 2-bit trits.

    Args:
        packed: uint8 tensor ``(..., ceil(dim / 4))``.
        dim: trits per row (padding trits beyond ``dim`` are ignored).
        layout: ``"sign"`` or ``"offset"``.

    Returns:
        int8 tensor ``(..., dim)`` with values in {-1, 0, 1}.

    Raises:
        TypeError: dtype is not uint8, ``dim`` not an integer. ValueError: wrong width, code ``11``.
    """
    _check_layout(layout)
    dim = check_int(dim, "dim", 0)
    packed = check_tensor(packed, "packed")
    if packed.dtype != torch.uint8:
        raise TypeError(f"packed: expected uint8, got dtype {packed.dtype}")
    if packed.dim() == 0:
        raise ValueError("packed: expected at least 1 dimension (..., ceil(dim / 4)), got a scalar")
    B = (dim + 3) // 4
    if packed.shape[-1] != B:
        raise ValueError(f"packed: last axis has {packed.shape[-1]} bytes but dim={dim} needs {B}")
    return unpack_rows(packed.contiguous(), dim, layout)


def unpack_rows(packed: torch.Tensor, dim: int, layout: str = "sign", check: bool = True,
                fp8: bool = False) -> torch.Tensor:
    """:func:`unpack_ternary` on an already validated contiguous uint8 tensor; ``check=False`` skips
    the invalid-code test (and its device-to-host sync) for rows known to be valid. ``fp8=True``
    (``dim % 4 == 0`` only) returns float8 e4m3 trits, the operands of the fp8 similarity GEMM."""
    words = dim % 4 == 0 and packed.shape[-1] == dim // 4
    if fp8 and not words:
        raise ValueError(f"dim: fp8 unpacking needs dim % 4 == 0, got {dim}")
    out = torch.empty(packed.shape[:-1] + (dim,), dtype=torch.uint8 if fp8 else torch.int8, device=packed.device)
    n_bytes = packed.numel()
    if n_bytes == 0:
        return out.view(torch.float8_e4m3fn) if fp8 else out
    flag = new_flag(packed.device)
    grid = (triton.cdiv(n_bytes, _BLOCK_BYTES),)
    if words:
        _unpack_words_kernel[grid](packed, out.view(torch.int32), flag, n_bytes, OFFSET=layout == "offset", FP8=fp8,
                                   BLOCK=_BLOCK_BYTES)
    else:
        _unpack_kernel[grid](packed, out, flag, n_bytes, dim, packed.shape[-1], OFFSET=layout == "offset",
                             BLOCK=_BLOCK_BYTES)
    if check:
        raise_if(flag, "packed: contains the invalid 2-bit code 0b11")
    return out.view(torch.float8_e4m3fn) if fp8 else out
