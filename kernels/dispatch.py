"""The GPU side of the device seam (:mod:`ternhd._device`): the ops of :mod:`ternhd._cpu`, with the
same signatures, on arguments the public front has already validated.

``ternhd.pack_ternary``, ``unpack_ternary``, ``quantize``, ``pairwise`` (and ``dot`` / ``cosine`` /
``hamming``), ``topk``, ``Index``, ``bind``, ``bundle``, ``permute`` and ``HDCEncoder.encode`` check
shapes, dtypes and scalar arguments once, for both devices, then call these for CUDA tensors (CPU
tensors under ``TRITON_INTERPRET=1`` in the tests). Nothing here checks those again; the kernels
still check the data they read (invalid codes, trit values, NaN/Inf). Results are identical to the
C++ path (same dtypes; cosine within one float32 ulp by contract, bit-identical in practice).

Direct users of ``ternhd.kernels`` get the validating functions of the op modules instead
(``ternhd.kernels.pairwise`` and friends), which take extra tuning arguments.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch

from .algebra import bind_rows, bundle_rows, permute_rows
from .encode import Projection, encode, prepare_projection
from .index import Index
from .pack import pack_rows, unpack_rows
from .quantize import quantize_rows
from .similarity import _method, _pairwise_rows, _topk_rows

__all__ = ["pack_ternary", "unpack_ternary", "quantize", "pairwise", "topk", "Index", "bind", "bundle", "permute",
           "encode", "prepare_projection", "Projection"]


def pack_ternary(t: torch.Tensor, layout: str = "sign") -> torch.Tensor:
    """Trits ``(..., D)`` -> packed uint8 ``(..., ceil(D / 4))``."""
    return pack_rows(t, layout)


def unpack_ternary(packed: torch.Tensor, dim: int, layout: str = "sign") -> torch.Tensor:
    """Packed uint8 ``(..., ceil(dim / 4))`` -> int8 ``(..., dim)``."""
    return unpack_rows(packed.contiguous(), dim, layout)


def quantize(x: torch.Tensor, tau: float = 0.3, threshold: Union[str, float] = "std",
             sparsity: Optional[float] = None, packed: bool = False) -> torch.Tensor:
    """Real ``(..., D)`` -> int8 ``(..., D)`` or packed uint8 ``(..., ceil(D / 4))``."""
    return quantize_rows(x, tau, threshold, sparsity, packed)


def pairwise(a: torch.Tensor, b: torch.Tensor, metric: str = "cosine") -> torch.Tensor:
    """Packed ``(M, B)`` x ``(N, B)`` -> ``(M, N)`` scores (the method picked by ``M``)."""
    a, b = a.contiguous(), b.contiguous()
    return _pairwise_rows(a, b, metric, _method(a.shape[0], None, a.device), ("a", "b"), None, None)


def topk(queries: torch.Tensor, database: torch.Tensor, k: int,
         metric: str = "cosine") -> Tuple[torch.Tensor, torch.Tensor]:
    """Packed ``(M, B)`` against ``(N, B)`` -> scores and int64 indices ``(M, k)``, best first."""
    q, d = queries.contiguous(), database.contiguous()
    return _topk_rows(q, d, k, metric, _method(q.shape[0], None, q.device), None, None, None)


def bind(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Packed rows whose shapes broadcast -> their element-wise product."""
    return bind_rows(a, b)


def bundle(vectors: torch.Tensor, dim: int, threshold: int = 0, packed: bool = True) -> torch.Tensor:
    """Packed ``(..., n, ceil(dim / 4))`` -> packed ``(..., ceil(dim / 4))`` or int32 sums ``(..., dim)``."""
    return bundle_rows(vectors, dim, threshold, packed)


def permute(a: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Packed rows shifted cyclically by ``k`` trits (same shape)."""
    return permute_rows(a, k, dim)
