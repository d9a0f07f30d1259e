"""2-bit packing of ternary vectors (the normative layout of docs/FORMAT.md).

Trit ``i`` of a row lives in byte ``i // 4`` at bit offset ``6 - 2 * (i % 4)``; codes ``00`` = 0,
``01`` = +1, ``10`` = -1; ``11`` is invalid and :func:`unpack_ternary` raises ``ValueError`` on it.
A row of ``D`` trits packs to ``ceil(D / 4)`` bytes with zero padding.
"""
from __future__ import annotations

from typing import Any

from ._arrays import as_array, check_int, dtype_kind, dtype_name
from ._device import backend

__all__ = ["pack_ternary", "unpack_ternary", "packed_width", "LAYOUTS"]

LAYOUTS = ("sign", "offset")


def packed_width(dim: int) -> int:
    """Bytes per packed row of ``dim`` trits: ``ceil(dim / 4)``."""
    return (check_int(dim, "dim", 0) + 3) // 4


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")


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
    t = as_array(t, "t")
    if dtype_kind(t) not in "biuf":
        raise TypeError(f"t: expected an integer, bool or float array of trits, got dtype {dtype_name(t)}")
    if t.ndim == 0:
        raise ValueError("t: expected at least 1 dimension (..., D), got a scalar")
    return backend(t=t).pack_ternary(t, layout)


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
    packed = as_array(packed, "packed")
    if dtype_name(packed) != "uint8":
        raise TypeError(f"packed: expected uint8, got dtype {dtype_name(packed)}")
    if packed.ndim == 0:
        raise ValueError("packed: expected at least 1 dimension (..., ceil(dim / 4)), got a scalar")
    if packed.shape[-1] != packed_width(dim):
        raise ValueError(f"packed: last axis has {packed.shape[-1]} bytes but dim={dim} needs {packed_width(dim)}")
    return backend(packed=packed).unpack_ternary(packed, dim, layout)
