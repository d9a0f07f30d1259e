"""ternhd: native-accelerated hyperdimensional computing on 2-bit packed ternary vectors.

>>> import numpy as np, ternhd
>>> ternhd.pack_ternary(np.array([1, 0, -1, 1], dtype=np.int8))
array([73], dtype=uint8)
"""
from __future__ import annotations

from . import _core, distributed, interop, knowledge, packet, vsa  # torch and gguf are imported lazily
from .algebra import bind, bundle, permute
from .backend import backend_info, get_num_threads, get_simd, set_num_threads, set_simd, simd_paths, use_simd
from .encoder import HDCEncoder
from .packet import PacketError
from .packing import pack_ternary, packed_width, unpack_ternary
from .quantize import quantize
from .quantizer import Quantizer
from .similarity import Index, cosine, dot, hamming, pairwise, sharded_search, topk

__version__ = _core.__version__

__all__ = [
    "__version__", "backend_info", "simd_paths", "get_simd", "set_simd", "use_simd", "get_num_threads",
    "set_num_threads", "pack_ternary", "unpack_ternary", "packed_width", "quantize", "dot", "cosine",
    "hamming", "pairwise", "topk", "Index", "Quantizer", "sharded_search", "HDCEncoder", "bind", "bundle", "permute",
    "packet", "knowledge", "distributed", "PacketError", "vsa", "interop",
]

from .backend import _apply_env as _apply_env

_apply_env()
del _apply_env
