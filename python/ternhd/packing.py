"""2-bit packing of ternary vectors (the normative layout of DESIGN.md).

Trit ``i`` of a row lives in byte ``i // 4`` at bit offset ``6 - 2 * (i % 4)``; codes ``00`` = 0,
``01`` = +1, ``10`` = -1; ``11`` is invalid and :func:`unpack_ternary` raises ``ValueError`` on it.
A row of ``D`` trits packs to ``ceil(D / 4)`` bytes with zero padding.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._arrays import check_int, is_cuda, to_numpy

__all__ = ["pack_ternary", "unpack_ternary", "packed_width", "LAYOUTS"]

LAYOUTS = ("sign", "offset")


def packed_width(dim: int) -> int:
    """Bytes per packed row of ``dim`` trits: ``ceil(dim / 4)``."""
    return (check_int(dim, "dim", 0) + 3) // 4


def _offset_tables():
    # Byte-wise conversion between the sign layout (0 -> 00, +1 -> 01, -1 -> 10) and the offset
    # layout (stored value t + 1: -1 -> 00, 0 -> 01, +1 -> 10). Code 11 maps to 11 both ways.
    to_off = {0: 1, 1: 2, 2: 0, 3: 3}
    to_sign = {v: k for k, v in to_off.items()}
    b = np.arange(256)
    s2o = np.zeros(256, np.uint8)
    o2s = np.zeros(256, np.uint8)
    for shift in (6, 4, 2, 0):
        c = (b >> shift) & 3
        s2o |= (np.vectorize(to_off.get)(c) << shift).astype(np.uint8)
        o2s |= (np.vectorize(to_sign.get)(c) << shift).astype(np.uint8)
    return s2o, o2s


_SIGN_TO_OFFSET, _OFFSET_TO_SIGN = _offset_tables()


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")


def _as_trits(arr: np.ndarray) -> np.ndarray:
    """int8 view of trit values; other integer/bool/float dtypes are accepted when every value is
    exactly -1, 0 or 1."""
    if arr.dtype == np.int8:
        return arr
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"t: expected an integer, bool or float array of trits, got dtype {arr.dtype}")
    if kind == "b":
        return arr.astype(np.int8)
    if arr.size and not np.isin(arr, (-1, 0, 1)).all():
        raise ValueError("t: values must be -1, 0 or 1 (use ternhd.quantize for real-valued input)")
    return arr.astype(np.int8)


def pack_ternary(t: Any, layout: str = "sign") -> Any:
    """Pack ternary values into 2 bits per trit.

    Args:
        t: int8 array or CPU/CUDA torch tensor of shape ``(..., D)`` with values in {-1, 0, 1}
            (other integer, bool or float dtypes holding exactly those values are converted).
        layout: ``"sign"`` (the normative layout) or ``"offset"`` (stored value ``t + 1``, for
            interop with ternary-weight formats).

    Returns:
        uint8 array of shape ``(..., ceil(D / 4))``, of the input's array type.

    Raises:
        TypeError: unsupported dtype. ValueError: values outside {-1, 0, 1}, 0-d input, bad layout.
    """
    _check_layout(layout)
    if is_cuda(t):
        from .kernels import dispatch as _gpu

        return _gpu.pack_ternary(t, layout=layout)
    arr, wrap = to_numpy(t, "t")
    if arr.ndim == 0:
        raise ValueError("t: expected at least 1 dimension (..., D), got a scalar")
    trits = np.ascontiguousarray(_as_trits(arr))
    dim = trits.shape[-1]
    rows = int(np.prod(trits.shape[:-1], dtype=np.int64))
    out = _core.pack_rows(trits.reshape(-1), rows, dim)
    out = out.reshape(trits.shape[:-1] + (packed_width(dim),))
    if layout == "offset":
        out = _SIGN_TO_OFFSET[out]
    return wrap(out)


def unpack_ternary(packed: Any, dim: int, layout: str = "sign") -> Any:
    """Unpack 2-bit trits.

    Args:
        packed: uint8 array or tensor of shape ``(..., ceil(dim / 4))``.
        dim: number of trits per row (padding trits beyond ``dim`` are ignored).
        layout: ``"sign"`` or ``"offset"``, as in :func:`pack_ternary`.

    Returns:
        int8 array of shape ``(..., dim)`` with values in {-1, 0, 1}, of the input's array type.

    Raises:
        TypeError: dtype is not uint8 or ``dim`` is not an integer. ValueError: the last axis is not
        ``ceil(dim / 4)`` bytes, or a trit has the invalid code ``11``.
    """
    _check_layout(layout)
    dim = check_int(dim, "dim", 0)
    if is_cuda(packed):
        from .kernels import dispatch as _gpu

        return _gpu.unpack_ternary(packed, dim, layout=layout)
    arr, wrap = to_numpy(packed, "packed")
    if arr.dtype != np.uint8:
        raise TypeError(f"packed: expected uint8, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError("packed: expected at least 1 dimension (..., ceil(dim / 4)), got a scalar")
    if arr.shape[-1] != packed_width(dim):
        raise ValueError(f"packed: last axis has {arr.shape[-1]} bytes but dim={dim} needs {packed_width(dim)}")
    arr = np.ascontiguousarray(arr)
    if layout == "offset":
        arr = _OFFSET_TO_SIGN[arr]
    rows = int(np.prod(arr.shape[:-1], dtype=np.int64))
    out = _core.unpack_rows(arr.reshape(-1), rows, dim)
    return wrap(out.reshape(arr.shape[:-1] + (dim,)))
