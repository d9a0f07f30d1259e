"""Ternary quantization of real-valued vectors: ``+1 if x > thr, -1 if x < -thr, else 0``.

Threshold modes (DESIGN.md, "Quantization"):

* ``threshold="std"`` (default): ``thr = tau * std(row)`` per row (population std, ddof=0), so a
  vector's code never depends on the rest of the batch;
* ``threshold="batch"``: ``thr = tau * std(x)`` over the whole array, as the paper's notebooks do;
* ``threshold=<float>``: a fixed threshold;
* ``sparsity=s``: per row, ``thr`` = the ``round(s * D)``-th smallest ``|x|``, which leaves a fraction
  ``s`` of zeros (more when values tie at the threshold).
"""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from . import _core
from ._arrays import is_cuda, to_numpy

__all__ = ["quantize", "row_thresholds"]


def _as_float(arr: np.ndarray, name: str = "x") -> np.ndarray:
    if arr.dtype in (np.float32, np.float64):
        return np.ascontiguousarray(arr)
    kind = arr.dtype.kind
    if kind == "f":  # float16 and friends
        return np.ascontiguousarray(arr, dtype=np.float32)
    if kind in "iub":
        return np.ascontiguousarray(arr, dtype=np.float64)
    raise TypeError(f"{name}: expected a real-valued array, got dtype {arr.dtype}")


def _check_mode(tau: float, threshold: Union[str, float], sparsity: Optional[float]) -> None:
    if sparsity is not None:
        if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float, np.floating, np.integer)):
            raise TypeError(f"sparsity: expected a float in [0, 1], got {type(sparsity).__name__}")
        if not 0.0 <= float(sparsity) <= 1.0:
            raise ValueError(f"sparsity: must be in [0, 1], got {sparsity}")
        if not (isinstance(threshold, str) and threshold == "std"):
            raise ValueError("sparsity: cannot be combined with an explicit threshold")
        return
    if isinstance(threshold, str):
        if threshold not in ("std", "batch"):
            raise ValueError(f"threshold: expected 'std', 'batch' or a number, got {threshold!r}")
        if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating, np.integer)):
            raise TypeError(f"tau: expected a number, got {type(tau).__name__}")
        if not (np.isfinite(tau) and tau >= 0):
            raise ValueError(f"tau: must be finite and non-negative, got {tau}")
    elif isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)):
        raise TypeError(f"threshold: expected 'std', 'batch' or a number, got {type(threshold).__name__}")
    elif not (np.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold: must be finite and non-negative, got {threshold}")


def row_thresholds(x2: np.ndarray, tau: float = 0.3, threshold: Union[str, float] = "std",
                   sparsity: Optional[float] = None) -> np.ndarray:
    """Per-row thresholds (float64, shape (rows,)) for a C-contiguous float32/float64 (rows, D)."""
    rows, dim = x2.shape
    if sparsity is not None:
        k = int(round(float(sparsity) * dim))
        if not np.isfinite(x2).all():
            raise ValueError("x: contains NaN or Inf")
        if k == 0 or rows == 0:
            return np.zeros(rows)
        return np.partition(np.abs(x2), k - 1, axis=1)[:, k - 1].astype(np.float64)
    if threshold == "std":
        return float(tau) * _core.row_std(x2.reshape(-1), rows, dim)
    if threshold == "batch":
        if x2.size == 0:
            return np.zeros(rows)
        if not np.isfinite(x2).all():
            raise ValueError("x: contains NaN or Inf")
        return np.full(rows, float(tau) * float(x2.astype(np.float64, copy=False).std()))
    return np.full(rows, float(threshold))


def quantize(x: Any, tau: float = 0.3, threshold: Union[str, float] = "std",
             sparsity: Optional[float] = None, packed: bool = False) -> Any:
    """Quantize real values to ternary.

    Args:
        x: float array or tensor ``(..., D)`` (integers are read as float64; float16/bfloat16 as
            float32). Each row is the last axis.
        tau: threshold factor for the ``"std"`` and ``"batch"`` modes.
        threshold: ``"std"``, ``"batch"`` or a fixed non-negative number.
        sparsity: instead of ``tau``: the fraction of zeros per row, in [0, 1].
        packed: return the 2-bit packed rows (uint8 ``(..., ceil(D/4))``) instead of int8 trits,
            thresholding and packing in one pass.

    Returns:
        int8 ``(..., D)`` in {-1, 0, 1} (or packed uint8), of the input's array type.

    Raises:
        ValueError: NaN/Inf in ``x``, bad mode arguments, 0-d input. TypeError: non-real dtype.
    """
    _check_mode(tau, threshold, sparsity)
    if is_cuda(x):
        from .kernels import dispatch as _gpu

        return _gpu.quantize(x, tau=tau, threshold=threshold, sparsity=sparsity, packed=packed)
    arr, wrap = to_numpy(x, "x")
    if arr.ndim == 0:
        raise ValueError("x: expected at least 1 dimension (..., D), got a scalar")
    arr = _as_float(arr)
    dim = arr.shape[-1]
    x2 = arr.reshape(-1, dim)
    if sparsity is None and threshold == "batch":
        thr = np.ascontiguousarray(row_thresholds(x2, tau, threshold, sparsity), dtype=np.float64)
        out = _core.quantize_rows(x2.reshape(-1), x2.shape[0], dim, thr, bool(packed))
    else:  # per-row modes: thresholds computed and applied in one native pass
        mode = _core.ThresholdMode
        spec = ((mode.sparsity, 0.0, 0.0, int(round(float(sparsity) * dim))) if sparsity is not None else
                (mode.std, float(tau), 0.0, 0) if isinstance(threshold, str) else
                (mode.fixed, 0.0, float(threshold), 0))
        out = _core.quantize_rows(x2.reshape(-1), x2.shape[0], dim, *spec, bool(packed))
    width = (dim + 3) // 4 if packed else dim
    return wrap(out.reshape(arr.shape[:-1] + (width,)))
