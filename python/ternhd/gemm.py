"""Dense block products ``x @ P`` for the CPU encoder, on a well-kept GEMM library.

The encoder projects rows in blocks and hands each float32 block to the native epilogue, so the
``N x dim`` float matrix never exists. The product itself stays in a BLAS, chosen by
``TERNHD_GEMM`` (default ``auto``):

* ``onednn`` — torch's oneDNN inner product. ``P`` is pre-packed once into oneDNN's blocked weight
  layout (``mkldnn::_reorder_linear_weight``) and each block runs ``mkldnn::_linear_pointwise``,
  the path torch's compiler uses for CPU linear layers; a product that re-packs ``P`` on every
  call loses much of its speed on small blocks. These ops are internal to torch, so they are
  probed once; where missing or failing, the public ``aten::mkldnn_linear`` is used.
* ``torch`` — ``torch.matmul`` (MKL in the x86 wheels).
* ``numpy`` — ``numpy.matmul`` (OpenBLAS in the wheels).

``auto`` is ``onednn`` when torch with oneDNN imports, else ``numpy``. ``benchmarks/bench_encoder.py``
compares them on the machine at hand.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Optional

import numpy as np

__all__ = ["GEMMS", "gemm_backend", "block_rows", "block_product"]

GEMMS = ("auto", "onednn", "torch", "numpy")
# Float output per block, by backend: large enough to amortize a call, small enough for the cache.
BLOCK_BYTES = {"onednn": 16 << 20, "torch": 32 << 20, "numpy": 32 << 20}
ONEDNN_PREPACK = True  # try the pre-packed oneDNN weight first (tests switch it off)

BlockProduct = Callable[[np.ndarray], np.ndarray]


def _torch() -> Optional[Any]:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is optional
        return None
    return torch


def _has_op(torch: Any, name: str) -> bool:
    try:
        getattr(torch.ops.aten, name)
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without the op
        return False
    return True


def gemm_backend() -> str:
    """The backend ``TERNHD_GEMM`` asks for, resolved: ``"onednn"``, ``"torch"`` or ``"numpy"``.

    Raises:
        ValueError: an unknown name, or a backend this installation lacks (named ``TERNHD_GEMM``).
    """
    name = os.environ.get("TERNHD_GEMM", "auto").strip().lower()
    if name not in GEMMS:
        raise ValueError(f"TERNHD_GEMM: expected one of {GEMMS}, got {name!r}")
    if name in ("auto", "onednn"):
        torch = _torch()
        ok = torch is not None and bool(torch.backends.mkldnn.is_available()) and _has_op(torch, "mkldnn_linear")
        if not ok and name == "onednn":
            raise ValueError("TERNHD_GEMM: 'onednn' needs torch built with oneDNN (mkldnn)")
        return "onednn" if ok else "numpy"
    if name == "torch" and _torch() is None:
        raise ValueError("TERNHD_GEMM: 'torch' needs torch installed")
    return name


def block_rows(backend: str, dim: int) -> int:
    """Default rows per block for ``dim`` output columns (at least 16)."""
    return max(16, BLOCK_BYTES[backend] // (4 * dim))


def onednn_linear(p: np.ndarray) -> BlockProduct:
    """``x -> x @ p`` through oneDNN for float32 ``p`` ``(in_dim, dim)``: a callable on float32
    torch tensors ``(n, in_dim)`` returning ``(n, dim)``."""
    torch = _torch()
    in_dim, dim = p.shape
    w = torch.from_numpy(np.ascontiguousarray(p.T))
    if ONEDNN_PREPACK:
        try:
            packed = torch.ops.mkldnn._reorder_linear_weight(w, block_rows("onednn", dim))
            op = torch.ops.mkldnn._linear_pointwise

            def prepacked(xt: Any) -> Any:
                return op(xt, packed, None, "none", [], "")

            probe = torch.ones((3, in_dim), dtype=torch.float32)
            got = prepacked(probe)
            if tuple(got.shape) == (3, dim) and bool(torch.allclose(got, probe @ torch.from_numpy(p), rtol=1e-4,
                                                                    atol=1e-5)):
                return prepacked
        except (AttributeError, RuntimeError, TypeError):  # pragma: no cover - other torch builds
            pass
    weight = w.to_mkldnn()
    plain_op = torch.ops.aten.mkldnn_linear

    def linear(xt: Any) -> Any:
        return plain_op(xt.to_mkldnn(), weight, None).to_dense()

    return linear


def block_product(p: np.ndarray, rows: int, backend: str, onednn: Optional[BlockProduct] = None) -> BlockProduct:
    """A function ``xb -> xb @ p`` for float32 C-contiguous blocks ``(n <= rows, in_dim)``,
    returning a float32 C-contiguous numpy ``(n, dim)`` (a view of a reused buffer for the torch
    and numpy backends: consume it before the next call).

    Args:
        p: float32 ``(in_dim, dim)``. rows: the largest block. backend: from :func:`gemm_backend`.
        onednn: a cached :func:`onednn_linear` of ``p`` (built here when None).
    """
    dim = p.shape[1]
    if backend == "onednn":
        torch = _torch()
        linear = onednn if onednn is not None else onednn_linear(p)

        def run(xb: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return linear(torch.from_numpy(xb)).contiguous().numpy()
    elif backend == "torch":
        torch = _torch()
        pt = torch.from_numpy(p)
        buf = torch.empty((rows, dim), dtype=torch.float32)

        def run(xb: np.ndarray) -> np.ndarray:
            hb = buf[:len(xb)]
            torch.matmul(torch.from_numpy(xb), pt, out=hb)
            return hb.numpy()
    else:
        nbuf = np.empty((rows, dim), dtype=np.float32)

        def run(xb: np.ndarray) -> np.ndarray:
            hb = nbuf[:len(xb)]
            np.matmul(xb, p, out=hb)
            return hb
    return run
