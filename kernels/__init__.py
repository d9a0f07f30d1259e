"""Triton GPU kernels of ternhd (installed as ``ternhd.kernels``; needs ``torch`` and ``triton``).

Every function takes CUDA torch tensors, or CPU tensors when ``TRITON_INTERPRET=1`` is set before
this package is imported (the Triton interpreter, used by the CI tests):

* ``pack_ternary(t, layout="sign")``, ``unpack_ternary(packed, dim, layout="sign")``
* ``quantize(x, tau=0.3, threshold="std", sparsity=None, packed=False)``
* ``pairwise(a, b, metric="cosine")``, ``dot``, ``cosine``, ``hamming``, ``topk(queries, database, k, metric)``
* ``Index(database, keep_unpacked=False)`` — a database kept on the device (``.topk``, ``.pairwise``)
* ``encode(x, projection, tau=0.3, threshold="std", sparsity=None, packed=True)`` with
  ``prepare_projection(P, dtype=torch.bfloat16)`` — fused projection + threshold + packing
* ``bind(a, b)``, ``permute(a, k, dim)``, ``bundle(vectors, dim, threshold=0, packed=True)``

These functions validate their arguments (they are public). The public ``ternhd`` functions
validate once themselves and call :mod:`ternhd.kernels.dispatch`, the trusted GPU side of the
device seam.
"""
from __future__ import annotations

try:
    import torch  # noqa: F401
    import triton  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("ternhd.kernels needs torch and triton: pip install 'ternhd[gpu]'") from exc

from . import dispatch
from ._util import interpreting
from .algebra import bind, bundle, permute
from .encode import Projection, encode, encode_stats, prepare_projection
from .index import Index
from .pack import pack_ternary, unpack_ternary
from .quantize import quantize
from .similarity import cosine, dot, hamming, pairwise, row_norms, topk

__all__ = ["dispatch", "interpreting", "pack_ternary", "unpack_ternary", "quantize", "pairwise", "dot", "cosine",
           "hamming", "topk", "Index", "row_norms", "encode", "encode_stats", "prepare_projection", "Projection",
           "bind", "bundle", "permute"]
