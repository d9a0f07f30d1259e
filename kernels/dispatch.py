"""Entry points the public ``ternhd`` functions call for CUDA tensors.

``ternhd.pack_ternary``, ``unpack_ternary``, ``quantize``, ``pairwise`` (and ``dot`` / ``cosine`` /
``hamming``), ``topk`` and ``Index`` send CUDA tensors here; results are identical to the C++ path (same
dtypes; cosine bit-identical in practice, within 1e-6 by contract). The same functions run on CPU
tensors under ``TRITON_INTERPRET=1``. ``encode``, ``bind``, ``bundle`` and ``permute`` are exported
for the HDC encoder and algebra (see their modules for the signatures).
"""
from __future__ import annotations

from .algebra import bind, bundle, permute
from .encode import Projection, encode, encode_stats, prepare_projection
from .index import Index
from .pack import pack_ternary, unpack_ternary
from .quantize import quantize
from .similarity import cosine, dot, hamming, pairwise, row_norms, topk

__all__ = ["pack_ternary", "unpack_ternary", "quantize", "pairwise", "dot", "cosine", "hamming", "topk", "Index",
           "row_norms", "encode", "encode_stats", "prepare_projection", "Projection", "bind", "bundle", "permute"]
