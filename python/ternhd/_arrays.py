"""Input handling shared by the public API: numpy / torch in, the same array type out.

The front validates with :func:`as_array`, :func:`dtype_kind` and friends, which read only shapes
and dtypes and so hold for numpy arrays and torch tensors on any device. The CPU implementation
(:mod:`ternhd._cpu`) views CPU torch tensors through ``Tensor.numpy()`` (:func:`to_numpy`, zero
copy where possible) and wraps results back with ``torch.from_numpy``.
"""
from __future__ import annotations

from typing import Any, Callable, Tuple

import numpy as np

# Widest packed row the similarity kernels accept: counts are int32 (4 trits per byte).
MAX_ROW_BYTES = 1 << 28

__all__ = ["MAX_ROW_BYTES", "is_torch", "as_array", "dtype_kind", "to_numpy", "check_packed", "check_packed_rows",
           "check_int"]


def is_torch(x: Any) -> bool:
    """True for a ``torch.Tensor`` (checked without importing torch)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "is_cuda") and hasattr(x, "numpy")


def as_array(x: Any, name: str) -> Any:
    """``x`` itself for a numpy array or torch tensor, else ``numpy.asarray(x)`` (TypeError when
    that does not give a numeric array)."""
    if is_torch(x) or isinstance(x, np.ndarray):
        return x
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: cannot be read as an array ({exc})") from None
    if arr.dtype == object:
        raise TypeError(f"{name}: cannot be read as a numeric array")
    return arr


_TORCH_KINDS = {"bool": "b", "uint8": "u", "uint16": "u", "uint32": "u", "uint64": "u"}


def dtype_kind(x: Any) -> str:
    """numpy's dtype kind letter (``b i u f c``) of an array or tensor; ``"f"`` for bfloat16 and
    float8 tensors, ``"?"`` for dtypes numpy has no kind for."""
    if isinstance(x, np.ndarray):
        return x.dtype.kind
    name = str(x.dtype).rsplit(".", 1)[-1]
    if name in _TORCH_KINDS:
        return _TORCH_KINDS[name]
    for prefix, kind in (("int", "i"), ("float", "f"), ("bfloat", "f"), ("complex", "c")):
        if name.startswith(prefix):
            return kind
    return "?"


def dtype_name(x: Any) -> str:
    """The dtype's name without a ``torch.`` prefix (``"uint8"``, ``"bfloat16"``, ...)."""
    return str(x.dtype).rsplit(".", 1)[-1]


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
    return as_array(x, name), _identity


def _identity(r: np.ndarray) -> np.ndarray:
    return r


def check_packed_rows(p: Any, name: str, allow_1d: bool = True) -> None:
    """Validates packed rows on any device: uint8, 2-D (or 1-D for one row), rows not too wide."""
    if dtype_name(p) != "uint8":
        raise TypeError(f"{name}: packed vectors must be uint8, got {dtype_name(p)}")
    if not (p.ndim == 2 or (p.ndim == 1 and allow_1d)):
        raise ValueError(f"{name}: expected a 2-D packed array (rows, bytes){' or one 1-D row' if allow_1d else ''}, "
                         f"got shape {tuple(p.shape)}")
    if p.shape[-1] > MAX_ROW_BYTES:
        raise ValueError(f"{name}: packed rows of {p.shape[-1]} bytes exceed the supported {MAX_ROW_BYTES} "
                         f"(int32 counters)")


def check_packed(p: np.ndarray, name: str, allow_1d: bool = True) -> np.ndarray:
    """:func:`check_packed_rows`, then the rows 2-D and C-contiguous."""
    check_packed_rows(p, name, allow_1d)
    return np.ascontiguousarray(p.reshape(1, -1) if p.ndim == 1 else p)


def check_int(v: Any, name: str, minimum: int | None = None) -> int:
    """An integer argument (Python or numpy int, not bool), optionally bounded below."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(v).__name__}")
    v = int(v)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {v}")
    return v
