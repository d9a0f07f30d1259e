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

from ._arrays import as_array, check_int, check_packed_rows
from ._device import backend

__all__ = ["dot", "cosine", "hamming", "pairwise", "topk", "Index", "METRICS"]

METRICS = ("cosine", "dot", "hamming")


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {METRICS}, got {metric!r}")


def _rows(x: Any) -> Any:
    return x.reshape(1, -1) if x.ndim == 1 else x


def pairwise(a: Any, b: Any, metric: str = "cosine") -> Any:
    """All-pairs similarity of packed rows ``a`` (M, B) and ``b`` (N, B) -> (M, N).

    int32 for ``"dot"`` and ``"hamming"``, float32 for ``"cosine"``; the input's array type.
    """
    _check_metric(metric)
    a, b = as_array(a, "a"), as_array(b, "b")
    check_packed_rows(a, "a")
    check_packed_rows(b, "b")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"b: packed row width {b.shape[-1]} does not match a's {a.shape[-1]}")
    out = backend(a=a, b=b).pairwise(_rows(a), _rows(b), metric)
    if a.ndim == 1 and b.ndim == 1:
        return out.reshape(())  # 0-d result for two single rows
    if a.ndim == 1:
        return out[0]
    return out[:, 0] if b.ndim == 1 else out


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
    queries, database = as_array(queries, "queries"), as_array(database, "database")
    check_packed_rows(queries, "queries")
    check_packed_rows(database, "database", allow_1d=False)
    if queries.shape[-1] != database.shape[-1]:
        raise ValueError(f"queries: packed row width {queries.shape[-1]} does not match the database's "
                         f"{database.shape[-1]}")
    if k > database.shape[0]:
        raise ValueError(f"k: {k} exceeds the database size {database.shape[0]}")
    scores, idx = backend(queries=queries, database=database).topk(_rows(queries), database, k, metric)
    return (scores[0], idx[0]) if queries.ndim == 1 else (scores, idx)


class Index:
    """A packed database kept ready for repeated searches, on the device it was given.

    ``Index(database)`` builds the implementation for the database's device: the CPU index keeps
    it in the native bit-plane layout (:class:`ternhd._cpu.Index`); a CUDA tensor stays on its GPU,
    validated once with its row norms cached (:class:`ternhd.kernels.Index`).

    >>> index = Index(database_packed)           # uint8 (N, B)
    >>> scores, ids = index.topk(queries, k=10)  # cosine by default

    ``keep_unpacked=True`` (CUDA only) also keeps the unpacked database that large query batches
    multiply against (four times the packed size) instead of unpacking it in every call.

    Both implementations offer ``topk(queries, k, metric)``, ``pairwise(queries, metric)``,
    ``norms`` (int32 non-zeros per row), ``nbytes`` (bytes per row) and ``len``; 1-D queries give
    1-D results, as with :func:`topk` and :func:`pairwise`.
    """

    def __init__(self, database: Any, *, keep_unpacked: bool = False):
        database = as_array(database, "database")
        check_packed_rows(database, "database", allow_1d=False)
        self._backend = backend(database=database)
        #: the device's index (``ternhd._cpu.Index`` or ``ternhd.kernels.Index``)
        self.impl = self._backend.Index(database, keep_unpacked=keep_unpacked)

    def __len__(self) -> int:
        return len(self.impl)

    def __repr__(self) -> str:
        return repr(self.impl)

    @property
    def norms(self) -> Any:
        """Non-zeros per database row (int32; a CUDA tensor for a CUDA database)."""
        return self.impl.norms

    @property
    def nbytes(self) -> int:
        """Packed bytes per row."""
        return int(self.impl.nbytes)

    def _queries(self, queries: Any) -> Any:
        queries = as_array(queries, "queries")
        check_packed_rows(queries, "queries")
        if backend(queries=queries) is not self._backend:
            where = "a CUDA tensor, but the index is on the CPU" if self._backend.__name__ == "ternhd._cpu" \
                else "not a CUDA tensor, but the index is on a GPU"
            raise ValueError(f"queries: {where} (build the Index on the device you search on)")
        return queries

    def topk(self, queries: Any, k: int, metric: str = "cosine") -> Tuple[Any, Any]:
        """As :func:`topk` against this database."""
        _check_metric(metric)
        k = check_int(k, "k", 1)
        queries = self._queries(queries)
        scores, idx = self.impl.topk(_rows(queries), k, metric)
        return (scores[0], idx[0]) if queries.ndim == 1 else (scores, idx)

    def pairwise(self, queries: Any, metric: str = "cosine") -> Any:
        """As :func:`pairwise` (queries x database)."""
        _check_metric(metric)
        queries = self._queries(queries)
        out = self.impl.pairwise(_rows(queries), metric)
        return out[0] if queries.ndim == 1 else out
