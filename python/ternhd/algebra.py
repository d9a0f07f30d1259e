"""HDC algebra on 2-bit packed rows (DESIGN.md, "HDC algebra"), computed without unpacking.

* :func:`bind`: element-wise product (binding): non-zero where both are, negative where the signs
  differ. Self-inverse on the non-zeros of the key: ``bind(bind(a, k), k) == a`` where ``k != 0``.
* :func:`bundle`: element-wise sum of many vectors, re-quantized: ``+1 if sum > threshold``,
  ``-1 if sum < -threshold``, else ``0``. With the default ``threshold=0`` this is the majority vote;
  ties (as many ``+1`` as ``-1`` at a position) give ``0``.
* :func:`permute`: cyclic shift by ``k`` trits, the same as ``numpy.roll(trits, k, axis=-1)`` on the
  unpacked ``dim`` trits (``k`` may be negative or larger than ``dim``; padding trits stay 0).

All three take uint8 packed rows (numpy arrays or torch tensors; the result has the input's type)
and raise ``ValueError`` on the invalid 2-bit code ``0b11``. CUDA tensors go to the GPU kernels
(``ternhd.kernels``).
"""
from __future__ import annotations

from typing import Any, Sequence, Union

import numpy as np

from . import _core
from ._arrays import check_int, is_cuda, is_torch, to_numpy

__all__ = ["bind", "bundle", "permute"]


def _packed(x: Any, name: str):
    arr, wrap = to_numpy(x, name)
    if arr.dtype != np.uint8:
        raise TypeError(f"{name}: packed vectors must be uint8, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{name}: expected packed rows (..., bytes), got a scalar")
    return arr, wrap


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
    if is_cuda(a) or is_cuda(b):
        from .kernels import dispatch as _gpu

        return _gpu.bind(a, b)
    pa, wrap = _packed(a, "a")
    pb, wrap_b = _packed(b, "b")
    if not is_torch(a):
        wrap = wrap_b
    if pa.shape[-1] != pb.shape[-1]:
        raise ValueError(f"b: rows have {pb.shape[-1]} bytes but a's have {pa.shape[-1]}")
    try:
        shape = np.broadcast_shapes(pa.shape, pb.shape)
    except ValueError:
        raise ValueError(f"b: shape {pb.shape} does not broadcast with a's {pa.shape}") from None
    width = shape[-1]

    def rows(p: np.ndarray) -> np.ndarray:
        if p.shape == shape or p.size == width:
            return np.ascontiguousarray(p).reshape(-1, width)
        return np.ascontiguousarray(np.broadcast_to(p, shape)).reshape(-1, width)

    return wrap(_core.bind_rows(rows(pa), rows(pb)).reshape(shape))


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
    if is_cuda(vectors):
        from .kernels import dispatch as _gpu

        # Sums are integers, so "> threshold" is "> floor(threshold)"; padding trits bundle to 0.
        return _gpu.bundle(vectors, vectors.shape[-1] * 4, threshold=int(np.floor(threshold)), packed=packed)
    if isinstance(vectors, (list, tuple)):
        if not vectors:
            raise ValueError("vectors: need at least one vector to bundle")
        shapes = {tuple(getattr(v, "shape", np.shape(v))) for v in vectors}
        if len(shapes) != 1:
            raise ValueError(f"vectors: every row must have the same shape, got {sorted(shapes)}")
        if all(is_torch(v) for v in vectors):
            import torch

            return bundle(torch.stack(list(vectors)), threshold, packed)
        vectors = np.stack([np.asarray(v) for v in vectors])
    arr, wrap = _packed(vectors, "vectors")
    if arr.ndim < 2:
        raise ValueError(f"vectors: expected packed rows (n, bytes), got shape {arr.shape}")
    if arr.shape[-2] == 0:
        raise ValueError("vectors: need at least one vector to bundle")
    lead = arr.shape[:-2]
    groups = int(np.prod(lead, dtype=np.int64))
    rows = np.ascontiguousarray(arr).reshape(groups, arr.shape[-2], arr.shape[-1])
    if not packed:
        return wrap(_bundle_sums(rows).reshape(lead + (4 * arr.shape[-1],)))
    out = _core.bundle_rows(rows, float(threshold))
    return wrap(out.reshape(lead + (arr.shape[-1],)))


def _bundle_sums(rows: np.ndarray) -> np.ndarray:
    """int32 sums (groups, 4 * B) of packed rows (groups, n, B), unpacked a block of rows at a time."""
    from .packing import unpack_ternary

    groups, n, width = rows.shape
    sums = np.zeros((groups, 4 * width), np.int32)
    step = max(1, (1 << 22) // max(4 * width, 1))
    for r0 in range(0, n, step):
        sums += unpack_ternary(rows[:, r0:r0 + step], 4 * width).sum(axis=1, dtype=np.int32)
    return sums


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
    if is_cuda(a):
        from .kernels import dispatch as _gpu

        return _gpu.permute(a, k, dim)
    arr, wrap = _packed(a, "a")
    if arr.shape[-1] != (dim + 3) // 4:
        raise ValueError(f"a: rows have {arr.shape[-1]} bytes but dim={dim} needs {(dim + 3) // 4}")
    rows = np.ascontiguousarray(arr).reshape(-1, arr.shape[-1])
    return wrap(_core.permute_rows(rows, k % dim, dim).reshape(arr.shape))
