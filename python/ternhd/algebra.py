"""HDC algebra on 2-bit packed rows (docs/FORMAT.md, "HDC algebra"), computed without unpacking.

* :func:`bind`: element-wise product (binding): non-zero where both are, negative where the signs
  differ. Self-inverse on the non-zeros of the key: ``bind(bind(a, k), k) == a`` where ``k != 0``.
* :func:`bundle`: element-wise sum of many vectors, re-quantized: ``+1 if sum > threshold``,
  ``-1 if sum < -threshold``, else ``0``. With the default ``threshold=0`` this is the majority vote;
  ties (as many ``+1`` as ``-1`` at a position) give ``0``.
* :func:`permute`: cyclic shift by ``k`` trits, the same as ``numpy.roll(trits, k, axis=-1)`` on the
  unpacked ``dim`` trits (``k`` may be negative or larger than ``dim``; padding trits stay 0).

All three take uint8 packed rows (numpy arrays or torch tensors; the result has the input's type)
and raise ``ValueError`` on the invalid 2-bit code ``0b11``; :mod:`ternhd._device` picks the C++ or
the Triton implementation.
"""
from __future__ import annotations

from typing import Any, Sequence, Union

import numpy as np

from ._arrays import as_array, check_int, dtype_name, is_torch
from ._device import backend

__all__ = ["bind", "bundle", "permute"]


def _packed(x: Any, name: str) -> Any:
    x = as_array(x, name)
    if dtype_name(x) != "uint8":
        raise TypeError(f"{name}: packed vectors must be uint8, got dtype {dtype_name(x)}")
    if x.ndim == 0:
        raise ValueError(f"{name}: expected packed rows (..., bytes), got a scalar")
    return x


def bind(a: Any, b: Any) -> Any:
    """Element-wise product of packed ternary vectors.

    Args:
        a, b: packed uint8 ``(..., B)``; the leading shapes broadcast as in numpy (for example
            ``(N, B)`` with one key ``(B,)``).

    Returns:
        packed uint8 of the broadcast shape ``(..., B)``.

    Raises:
        TypeError: not uint8. ValueError: widths differ, shapes do not broadcast, code ``0b11``.
    """
    a, b = _packed(a, "a"), _packed(b, "b")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"b: rows have {b.shape[-1]} bytes but a's have {a.shape[-1]}")
    try:
        np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    except ValueError:
        raise ValueError(f"b: shape {tuple(b.shape)} does not broadcast with a's {tuple(a.shape)}") from None
    return backend(a=a, b=b).bind(a, b)


def bundle(vectors: Union[Any, Sequence[Any]], threshold: float = 0.0, packed: bool = True) -> Any:
    """Element-wise sum of packed ternary vectors, re-quantized to ternary.

    Args:
        vectors: packed uint8 ``(n, B)`` (or ``(..., n, B)``: each group along the second-to-last
            axis is bundled separately), or a sequence of ``n`` packed rows ``(B,)``.
        threshold: non-negative count: ``+1 if sum > threshold``, ``-1 if sum < -threshold``, else
            ``0``. ``0`` (default) is the majority vote with ties to ``0``.
        packed: ``False`` returns the int32 sums ``(..., 4 * B)`` instead (padding trits sum to 0),
            for a caller that re-quantizes them another way.

    Returns:
        packed uint8 ``(B,)`` (or ``(..., B)``); int32 ``(..., 4 * B)`` with ``packed=False``.

    Raises:
        TypeError: not uint8 / bad threshold type. ValueError: no vectors, negative threshold,
        code ``0b11``.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)):
        raise TypeError(f"threshold: expected a number, got {type(threshold).__name__}")
    if not (np.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold: must be finite and non-negative, got {threshold}")
    if isinstance(vectors, (list, tuple)):
        if not vectors:
            raise ValueError("vectors: need at least one vector to bundle")
        shapes = {tuple(getattr(v, "shape", np.shape(v))) for v in vectors}
        if len(shapes) != 1:
            raise ValueError(f"vectors: every row must have the same shape, got {sorted(shapes)}")
        if all(is_torch(v) for v in vectors):
            import torch

            vectors = torch.stack(list(vectors))
        else:
            vectors = np.stack([np.asarray(v) for v in vectors])
    vectors = _packed(vectors, "vectors")
    if vectors.ndim < 2:
        raise ValueError(f"vectors: expected packed rows (n, bytes), got shape {tuple(vectors.shape)}")
    if vectors.shape[-2] == 0:
        raise ValueError("vectors: need at least one vector to bundle")
    # Sums are integers, so "> threshold" is "> floor(threshold)"; padding trits bundle to 0.
    return backend(vectors=vectors).bundle(vectors, 4 * vectors.shape[-1], int(np.floor(threshold)), bool(packed))


def permute(a: Any, k: int, dim: int) -> Any:
    """Cyclic shift of packed rows by ``k`` trits: ``numpy.roll`` on the unpacked ``dim`` trits.

    Args:
        a: packed uint8 ``(..., ceil(dim / 4))``.
        k: shift in trits (any integer; trit ``i`` moves to ``(i + k) mod dim``).
        dim: trits per row (>= 1).

    Returns:
        packed uint8 of the same shape, padding trits 0.

    Raises:
        TypeError: not uint8 / non-integer k or dim. ValueError: width is not ``ceil(dim / 4)``,
        ``dim < 1``, code ``0b11`` within the first ``dim`` trits.
    """
    k = check_int(k, "k")
    dim = check_int(dim, "dim", 1)
    a = _packed(a, "a")
    if a.shape[-1] != (dim + 3) // 4:
        raise ValueError(f"a: rows have {a.shape[-1]} bytes but dim={dim} needs {(dim + 3) // 4}")
    return backend(a=a).permute(a, k, dim)
