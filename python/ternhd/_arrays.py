"""Input handling shared by the public API: numpy / torch in, the same array type out.

The native core takes C-contiguous numpy buffers. CPU torch tensors are viewed through
``Tensor.numpy()`` (zero copy where possible) and results are wrapped back with
``torch.from_numpy``. CUDA tensors never reach the native core: the public functions send them to
the Triton kernels (``ternhd.kernels``).
"""
from __future__ import annotations

from typing import Any, Callable, Tuple

import numpy as np

# Widest packed row the similarity kernels accept: counts are int32 (4 trits per byte).
MAX_ROW_BYTES = 1 << 28

__all__ = ["MAX_ROW_BYTES", "is_torch", "is_cuda", "to_numpy", "wrap_like", "check_packed", "check_int"]


def is_torch(x: Any) -> bool:
    """True for a ``torch.Tensor`` (checked without importing torch)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "is_cuda") and hasattr(x, "numpy")


def is_cuda(x: Any) -> bool:
    """True for a torch tensor that lives on a GPU."""
    return is_torch(x) and bool(getattr(x, "is_cuda", False))


def to_numpy(x: Any, name: str) -> Tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Returns ``(array, wrap)``: a numpy view of ``x`` and a function that turns a numpy result
    into the caller's array type (torch tensor for torch input, numpy otherwise)."""
    if is_torch(x):
        import torch

        if x.is_cuda:
            raise TypeError(f"{name}: CUDA tensors go through ternhd.kernels (Triton), not the CPU core")
        if x.dtype == torch.bfloat16:
            x = x.float()
        try:
            arr = x.detach().cpu().resolve_conj().resolve_neg().numpy()
        except (TypeError, RuntimeError) as exc:  # e.g. quantized or sparse tensors
            raise TypeError(f"{name}: unsupported tensor ({exc})") from None

        def wrap(r: np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(r))

        return arr, wrap
    if isinstance(x, np.ndarray):
        return x, _identity
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: cannot be read as an array ({exc})") from None
    if arr.dtype == object:
        raise TypeError(f"{name}: cannot be read as a numeric array")
    return arr, _identity


def _identity(r: np.ndarray) -> np.ndarray:
    return r


def check_packed(p: np.ndarray, name: str, allow_1d: bool = True) -> np.ndarray:
    """Validates a packed matrix (uint8, 2-D, or 1-D for one row) and returns it 2-D, C-contiguous."""
    if p.dtype != np.uint8:
        raise TypeError(f"{name}: packed vectors must be uint8, got {p.dtype}")
    if p.ndim == 1 and allow_1d:
        p = p.reshape(1, -1)
    elif p.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D packed array (rows, bytes){' or one 1-D row' if allow_1d else ''}, "
                         f"got shape {p.shape}")
    if p.shape[1] > MAX_ROW_BYTES:
        raise ValueError(f"{name}: packed rows of {p.shape[1]} bytes exceed the supported {MAX_ROW_BYTES} "
                         f"(int32 counters)")
    return np.ascontiguousarray(p)


def check_int(v: Any, name: str, minimum: int | None = None) -> int:
    """An integer argument (Python or numpy int, not bool), optionally bounded below."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(v).__name__}")
    v = int(v)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {v}")
    return v
