"""The device seam: the one place that picks the CPU (C++) or GPU (Triton) implementation of an op.

Every public op validates its arguments once, in the front (``packing``, ``quantize``,
``similarity``, ``algebra``, ``encoder``), with checks that read only shapes, dtypes and scalar
arguments, so they hold for numpy arrays and torch tensors alike. It then calls
``backend(name=array, ...).<op>(...)``:

* :mod:`ternhd._cpu` for numpy arrays, CPU torch tensors and anything array-like (the C++ core);
* :mod:`ternhd.kernels.dispatch` for CUDA tensors (Triton; imported on first use).

Both modules offer the same ops with the same signatures. Checks that need the data itself (the
invalid 2-bit code ``0b11``, trits outside {-1, 0, 1}, NaN/Inf) run inside each implementation,
where the data is read anyway.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

__all__ = ["is_cuda", "backend"]


def is_cuda(x: Any) -> bool:
    """True for a torch tensor that lives on a GPU (checked without importing torch)."""
    return type(x).__module__.startswith("torch") and bool(getattr(x, "is_cuda", False))


def backend(**arrays: Any) -> ModuleType:
    """The implementation module for these arrays (keyword names are the arguments' names).

    Raises:
        ValueError: some arrays are CUDA tensors and others are not, or they are on different GPUs
        (the message names both arguments).
    """
    cuda = [name for name, a in arrays.items() if is_cuda(a)]
    if not cuda:
        from . import _cpu

        return _cpu
    if len(cuda) != len(arrays):
        other = next(name for name in arrays if name not in cuda)
        raise ValueError(f"{other}: on the CPU but {cuda[0]} is a CUDA tensor; move both to one device")
    first = arrays[cuda[0]].device
    for name in cuda[1:]:
        if arrays[name].device != first:
            raise ValueError(f"{name}: on {arrays[name].device} but {cuda[0]} is on {first}")
    from .kernels import dispatch

    return dispatch
