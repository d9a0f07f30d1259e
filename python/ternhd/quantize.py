"""Ternary quantization of real-valued vectors: ``+1 if x > thr, -1 if x < -thr, else 0``.

Threshold modes (docs/FORMAT.md, "Quantization"):

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

from ._arrays import as_array, dtype_kind, dtype_name
from ._device import backend

__all__ = ["quantize", "check_mode"]


def check_mode(tau: float, threshold: Union[str, float], sparsity: Optional[float]) -> None:
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
    check_mode(tau, threshold, sparsity)
    x = as_array(x, "x")
    if dtype_kind(x) not in "biuf":
        raise TypeError(f"x: expected a real-valued array, got dtype {dtype_name(x)}")
    if x.ndim == 0:
        raise ValueError("x: expected at least 1 dimension (..., D), got a scalar")
    return backend(x=x).quantize(x, tau, threshold, sparsity, bool(packed))
