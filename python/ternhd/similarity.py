"""Similarity of 2-bit packed ternary rows: dot, cosine, Hamming distance and top-k search.

All functions take packed uint8 rows ``(M, B)`` and ``(N, B)`` (a 1-D array is one row, and the
matching axis is dropped from the result, as in ``numpy.matmul``). The native kernels convert rows
to an internal bit-plane layout (mask / sign) and count with popcount; :class:`Index` keeps a
database in that layout so repeated searches skip the conversion.

* ``dot(a, b)``: int32, the sum of trit products.
* ``cosine(a, b)``: float32, ``dot / sqrt(|a| |b|)`` with ``|a|`` the number of non-zeros;
  **0 when either row is the zero vector**.
* ``hamming(a, b)``: int32, the number of positions whose trits differ.
* ``topk``: best first (highest cosine/dot, lowest hamming); ties go to the lower database index.
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from . import _core
from ._arrays import check_int, check_packed, is_cuda, to_numpy

__all__ = ["dot", "cosine", "hamming", "pairwise", "topk", "Index", "METRICS"]

METRICS = ("cosine", "dot", "hamming")


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {METRICS}, got {metric!r}")


def pairwise(a: Any, b: Any, metric: str = "cosine") -> Any:
    """All-pairs similarity of packed rows ``a`` (M, B) and ``b`` (N, B) -> (M, N).

    int32 for ``"dot"`` and ``"hamming"``, float32 for ``"cosine"``; the input's array type.
    """
    _check_metric(metric)
    if is_cuda(a) or is_cuda(b):
        from .kernels import dispatch as _gpu

        return _gpu.pairwise(a, b, metric)
    na, wrap = to_numpy(a, "a")
    nb, _ = to_numpy(b, "b")
    a2, b2 = check_packed(na, "a"), check_packed(nb, "b")
    if a2.shape[1] != b2.shape[1]:
        raise ValueError(f"b: packed row width {b2.shape[1]} does not match a's {a2.shape[1]}")
    out = _core.pairwise(a2, b2, metric)
    if na.ndim == 1 and nb.ndim == 1:
        return wrap(out.reshape(()))  # 0-d result for two single rows
    if na.ndim == 1:
        out = out[0]
    elif nb.ndim == 1:
        out = out[:, 0]
    return wrap(np.ascontiguousarray(out))


def dot(a: Any, b: Any) -> Any:
    """Packed dot products: int32 (M, N)."""
    return pairwise(a, b, "dot")


def cosine(a: Any, b: Any) -> Any:
    """Packed cosine similarity: float32 (M, N); 0 where either row is the zero vector."""
    return pairwise(a, b, "cosine")


def hamming(a: Any, b: Any) -> Any:
    """Number of differing trits: int32 (M, N)."""
    return pairwise(a, b, "hamming")


def topk(queries: Any, database: Any, k: int, metric: str = "cosine") -> Tuple[Any, Any]:
    """The ``k`` best database rows for each query, without materializing the M x N matrix.

    Args:
        queries: packed uint8 (M, B) or one row (B,).
        database: packed uint8 (N, B).
        k: 1 <= k <= N.
        metric: ``"cosine"`` (default), ``"dot"`` or ``"hamming"``.

    Returns:
        ``(scores, indices)``: scores float32 (cosine) or int32, indices int64, shape (M, k) — or
        (k,) for a 1-D query — best first, ties to the lower index.
    """
    _check_metric(metric)
    k = check_int(k, "k", 1)
    if is_cuda(queries) or is_cuda(database):
        from .kernels import dispatch as _gpu

        return _gpu.topk(queries, database, k, metric)
    nq, wrap = to_numpy(queries, "queries")
    nd, _ = to_numpy(database, "database")
    q2 = check_packed(nq, "queries")
    d2 = check_packed(nd, "database", allow_1d=False)
    if q2.shape[1] != d2.shape[1]:
        raise ValueError(f"queries: packed row width {q2.shape[1]} does not match the database's {d2.shape[1]}")
    if k > d2.shape[0]:
        raise ValueError(f"k: {k} exceeds the database size {d2.shape[0]}")
    scores, idx = _core.topk(q2, d2, k, metric)
    if nq.ndim == 1:
        scores, idx = scores[0], idx[0]
    return wrap(scores), wrap(idx)


class Index:
    """A packed database kept ready for repeated searches: in the native bit-plane layout, or for a
    CUDA tensor on its GPU (``ternhd.kernels.Index``: validated once, row norms cached).

    >>> index = Index(database_packed)           # uint8 (N, B)
    >>> scores, ids = index.topk(queries, k=10)  # cosine by default

    ``keep_unpacked=True`` (CUDA only) also keeps the unpacked database that large query batches
    multiply against (four times the packed size) instead of unpacking it in every call.
    """

    def __init__(self, database: Any, *, keep_unpacked: bool = False):
        self._gpu = None
        if is_cuda(database):
            from .kernels import dispatch as _gpu

            self._gpu = _gpu.Index(database, keep_unpacked=keep_unpacked)
            self.nbytes = self._gpu.nbytes
            return
        if keep_unpacked:
            raise ValueError("keep_unpacked: only for a CUDA database (the CPU index keeps bit planes)")
        arr, _ = to_numpy(database, "database")
        d2 = check_packed(arr, "database", allow_1d=False)
        self._planes = _core.PlanesIndex(d2)
        self.nbytes = d2.shape[1]

    def __len__(self) -> int:
        return len(self._gpu) if self._gpu is not None else int(self._planes.rows)

    @property
    def norms(self) -> Any:
        """Non-zeros per database row (int32; a CUDA tensor for a CUDA database)."""
        return self._gpu.norms if self._gpu is not None else self._planes.norms

    def _queries(self, queries: Any):
        if is_cuda(queries):
            raise ValueError("queries: a CUDA tensor, but the index is on the CPU (build the Index from a CUDA "
                             "tensor to search on the GPU)")
        nq, wrap = to_numpy(queries, "queries")
        q2 = check_packed(nq, "queries")
        if q2.shape[1] != self.nbytes:
            raise ValueError(f"queries: packed row width {q2.shape[1]} does not match the index's {self.nbytes}")
        return nq, q2, wrap

    def topk(self, queries: Any, k: int, metric: str = "cosine") -> Tuple[Any, Any]:
        """As :func:`topk` against this database."""
        if self._gpu is not None:
            return self._gpu.topk(queries, k, metric)
        _check_metric(metric)
        k = check_int(k, "k", 1)
        if k > len(self):
            raise ValueError(f"k: {k} exceeds the database size {len(self)}")
        nq, q2, wrap = self._queries(queries)
        scores, idx = self._planes.topk(q2, k, metric)
        if nq.ndim == 1:
            scores, idx = scores[0], idx[0]
        return wrap(scores), wrap(idx)

    def pairwise(self, queries: Any, metric: str = "cosine") -> Any:
        """As :func:`pairwise` (queries x database)."""
        if self._gpu is not None:
            return self._gpu.pairwise(queries, metric)
        _check_metric(metric)
        nq, q2, wrap = self._queries(queries)
        out = self._planes.pairwise(q2, metric)
        return wrap(out[0] if nq.ndim == 1 else out)
