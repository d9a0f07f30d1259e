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

import json
import os
import struct
import tempfile
import zlib
from typing import Any, Callable, Optional, Tuple, Union

import numpy as np

from . import packet as _packet
from ._arrays import as_array, check_int, check_packed_rows, dtype_kind, dtype_name, is_torch
from ._device import backend

__all__ = ["dot", "cosine", "hamming", "pairwise", "topk", "Index", "sharded_search", "METRICS", "INDEX_FORMAT"]

#: Version of the index file layout (docs/FORMAT.md, section 6.1) this ternhd reads; it writes 1,
#: or 2 for an index with a :class:`~ternhd.Quantizer` (version 1 readers would score float queries
#: unrotated, so they must refuse it).
INDEX_FORMAT = 2

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
    """A mutable, persistent ternary vector index with external 64-bit ids.

    >>> index = Index(dim=4096)                          # or Index(packed_database, ids=...)
    >>> index.add(packed_rows, ids=[10, 11, 12])         # uint8 (N, ceil(dim / 4)); ids default 0, 1, ...
    >>> scores, ids = index.search(queries, k=10)        # packed, float32 or int8 queries
    >>> index.remove([11]); index.save("db.tnhd")
    >>> index = Index.view("db.tnhd")                    # memory-mapped, read-only, opens instantly

    ``Index(database)`` builds the implementation for the database's device: the CPU index keeps
    it in the native bit-plane layout (:class:`ternhd._cpu.Index`); a CUDA tensor stays on its GPU,
    validated once with its row norms cached (:class:`ternhd.kernels.Index`; ``add`` / ``remove``
    rebuild it from the concatenated rows).

    Queries: packed uint8 rows (ternary x ternary, exact, ``"cosine"``, ``"dot"`` or ``"hamming"``)
    or real vectors of ``dim`` values, float32 / float64 / int8 (asymmetric: ``q . t`` = the sum of
    q where t = +1 minus the sum where t = -1, float32 accumulation; ``"cosine"`` divides by
    ``|q|_2 sqrt(nnz(t))``). Ties go to the row added first.

    ``quantizer``: a fitted :class:`~ternhd.Quantizer`; then ``add`` and the constructor also take
    float vectors ``(n, d)`` (encoded by it), and real-valued queries ``(M, d)`` are rotated by it
    (:meth:`~ternhd.Quantizer.transform`) before they are scored against the codes; it is saved
    with the index.

    ``topk`` / ``pairwise`` (row positions, packed queries), ``norms``, ``nbytes`` and ``len`` keep
    their meaning; ``search`` / ``range_search`` answer with the external ids. ``keep_unpacked=True``
    (CUDA only) also keeps the unpacked database that large query batches multiply against.
    Not thread-safe: do not mutate an index while another thread searches it.
    """

    def __init__(self, database: Any = None, *, ids: Any = None, dim: Optional[int] = None,
                 keep_unpacked: bool = False, device: Any = None, quantizer: Any = None):
        from .quantizer import Quantizer

        if quantizer is not None:
            if not isinstance(quantizer, Quantizer):
                raise TypeError(f"quantizer: expected a ternhd.Quantizer, got {type(quantizer).__name__}")
            if not quantizer.fitted:
                raise ValueError("quantizer: not fitted (call quantizer.fit(database_vectors) first)")
            if dim is not None and dim != quantizer.dim:
                raise ValueError(f"dim: {dim}, but the quantizer gives {quantizer.dim} trits")
            dim = quantizer.dim
        self.quantizer = quantizer
        if database is not None and quantizer is not None:
            database = self._encode(database, "database", device)
        if database is None:
            if dim is None:
                raise ValueError("dim: an empty Index needs dim (trits per row)")
            width = (check_int(dim, "dim", 1) + 3) // 4
            if device is not None and str(device) != "cpu":
                import torch

                database = torch.zeros((0, width), dtype=torch.uint8, device=device)
            else:
                database = np.zeros((0, width), np.uint8)
        database = as_array(database, "database")
        check_packed_rows(database, "database", allow_1d=False)
        width = int(database.shape[-1])
        self.dim = 4 * width if dim is None else check_int(dim, "dim", 1)
        if (self.dim + 3) // 4 != width:
            raise ValueError(f"dim: {self.dim} trits take {(self.dim + 3) // 4} packed bytes, the rows have {width}")
        self._keep_unpacked = keep_unpacked
        self._readonly = False
        self._ids = np.zeros(0, np.int64)
        self._sorted: Optional[np.ndarray] = np.zeros(0, np.int64)  # ids sorted (None: build on use)
        self._order: Optional[np.ndarray] = np.zeros(0, np.int64)   # their row positions
        self._next_id = 0
        self._ids_dev: Any = None
        new = self._new_ids(ids, int(database.shape[0]))
        self._check_padding(database)
        self._backend = backend(database=database)
        #: the device's index (``ternhd._cpu.Index`` or ``ternhd.kernels.Index``)
        self.impl = self._backend.Index(database, keep_unpacked=keep_unpacked)
        self._merge_ids(new)

    # ------------------------------------------------------------------ basics
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

    @property
    def ids(self) -> np.ndarray:
        """The external ids (int64), in row order (read-only)."""
        v = self._ids.view()
        v.flags.writeable = False
        return v

    @property
    def vectors(self) -> Any:
        """The packed rows ``(N, nbytes)`` in row order (read-only numpy, or the CUDA tensor)."""
        impl = self.impl
        return impl.vectors if hasattr(impl, "vectors") else impl.database

    @property
    def readonly(self) -> bool:
        """True for an index opened with :meth:`view`."""
        return self._readonly

    # ------------------------------------------------------------------ ids
    def _lookup(self) -> Tuple[np.ndarray, np.ndarray]:
        if self._sorted is None or self._order is None:
            self._order = np.argsort(self._ids, kind="stable")
            self._sorted = self._ids[self._order]
        return self._sorted, self._order

    def _new_ids(self, ids: Any, m: int) -> np.ndarray:
        if ids is None:
            if self._next_id + m > np.iinfo(np.int64).max:
                raise ValueError("ids: automatic ids would pass 2**63 - 1; give ids explicitly")
            return np.arange(self._next_id, self._next_id + m, dtype=np.int64)
        arr = ids.detach().cpu().numpy() if is_torch(ids) else np.asarray(ids)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1 or arr.shape[0] != m:
            raise ValueError(f"ids: expected {m} ids (one per row), got shape {arr.shape}")
        if arr.dtype.kind not in "iu" or arr.dtype == np.bool_:
            raise TypeError(f"ids: expected integers, got dtype {arr.dtype}")
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            raise ValueError("ids: values must fit in int64")
        arr = arr.astype(np.int64)
        s = np.sort(arr)
        dup = s[1:][s[1:] == s[:-1]]
        if dup.size:
            raise ValueError(f"ids: duplicate id {int(dup[0])} in this call")
        if len(self._ids) and m:
            srt, _ = self._lookup()
            pos = np.minimum(np.searchsorted(srt, s), len(srt) - 1)
            taken = s[srt[pos] == s]
            if taken.size:
                raise ValueError(f"ids: id {int(taken[0])} is already in the index")
        return arr

    def _merge_ids(self, new: np.ndarray) -> None:
        n0 = len(self._ids)
        self._ids = np.concatenate([self._ids, new]) if n0 else new
        if self._sorted is not None and self._order is not None:
            allsorted = np.concatenate([self._sorted, new])
            order = np.concatenate([self._order, np.arange(n0, n0 + len(new), dtype=np.int64)])
            perm = np.argsort(allsorted, kind="stable")  # two sorted runs: a merge
            self._sorted, self._order = allsorted[perm], order[perm]
        if len(new):
            self._next_id = max(self._next_id, int(new.max()) + 1)
        self._ids_dev = None

    def _ids_of(self, pos: Any) -> Any:
        if is_torch(pos):
            import torch

            if self._ids_dev is None or self._ids_dev.device != pos.device:
                self._ids_dev = torch.as_tensor(self._ids, device=pos.device)
            return self._ids_dev[pos]
        return self._ids[pos]

    def _check_padding(self, rows: Any) -> None:
        if self.dim % 4 == 0 or not len(rows):
            return
        last = rows[..., -1]
        last = last.cpu().numpy() if is_torch(last) else np.asarray(last)
        if (last & ((1 << (2 * (4 - self.dim % 4))) - 1)).any():
            raise ValueError(f"vectors: non-zero padding trits past dim={self.dim}")

    # ------------------------------------------------------------------ mutation
    def _writable(self) -> None:
        if self._readonly:
            raise ValueError("index: opened with Index.view (read-only); use Index.load for a mutable copy")

    def _encode(self, vectors: Any, name: str, device: Any = None) -> Any:
        """Float vectors -> packed codes through the quantizer (packed uint8 rows pass through)."""
        v = as_array(vectors, name)
        if self.quantizer is None or dtype_name(v) == "uint8":
            return v
        dev = v.device if is_torch(v) else device
        codes = self.quantizer.encode(v.reshape(1, -1) if v.ndim == 1 else v, name=name)
        if dev is not None and str(dev) != "cpu":
            import torch

            return torch.as_tensor(codes, device=dev)
        return codes

    def add(self, vectors: Any, ids: Any = None) -> np.ndarray:
        """Appends packed rows ``(n, nbytes)`` (or one row) under ``ids`` (int64, default the next
        free ones); returns the ids. Duplicate or existing ids raise ValueError, nothing added.
        With a quantizer, float vectors ``(n, d)`` are encoded first."""
        self._writable()
        v = self._encode(vectors, "vectors")
        check_packed_rows(v, "vectors")
        v = v.reshape(1, -1) if v.ndim == 1 else v
        if v.shape[1] != self.nbytes:
            raise ValueError(f"vectors: packed row width {v.shape[1]} does not match the index's {self.nbytes}")
        self._same_device(v, "vectors")
        new = self._new_ids(ids, int(v.shape[0]))
        if not len(new):
            return new
        self._check_padding(v)
        if hasattr(self.impl, "append"):
            self.impl.append(v.numpy() if is_torch(v) else v)
        else:  # the GPU index: rebuilt from the concatenated rows (row norms recomputed)
            import torch

            self.impl = self._backend.Index(torch.cat([self.impl.database, v]), keep_unpacked=self._keep_unpacked)
        self._merge_ids(new)
        return new

    def remove(self, ids: Any) -> int:
        """Removes the rows of ``ids``; returns how many. An id not in the index raises ValueError
        (nothing removed). O(N): the rows after each removed one move up."""
        self._writable()
        arr = ids.detach().cpu().numpy() if is_torch(ids) else np.asarray(ids)
        arr = arr.reshape(-1)
        if arr.dtype.kind not in "iu" or arr.dtype == np.bool_:
            raise TypeError(f"ids: expected integers, got dtype {arr.dtype}")
        if not arr.size:
            return 0
        if arr.dtype.kind == "u" and int(arr.max()) > np.iinfo(np.int64).max:
            raise ValueError("ids: values must fit in int64")
        want = np.unique(arr.astype(np.int64))
        srt, order = self._lookup()
        pos = np.minimum(np.searchsorted(srt, want), max(len(srt) - 1, 0))
        found = (srt[pos] == want) if len(srt) else np.zeros(len(want), bool)
        if not found.all():
            raise ValueError(f"ids: id {int(want[~found][0])} is not in the index")
        keep = np.ones(len(self._ids), bool)
        keep[order[pos]] = False
        if hasattr(self.impl, "keep"):
            self.impl.keep(keep)
        else:
            import torch

            mask = torch.as_tensor(keep, device=self.impl.database.device)
            self.impl = self._backend.Index(self.impl.database[mask], keep_unpacked=self._keep_unpacked)
        self._ids = self._ids[keep]
        self._sorted = self._order = None
        self._ids_dev = None
        return int(len(want))

    # ------------------------------------------------------------------ queries
    def _same_device(self, x: Any, name: str) -> None:
        if backend(x=x) is not self._backend:
            where = "a CUDA tensor, but the index is on the CPU" if self._backend.__name__ == "ternhd._cpu" \
                else "not a CUDA tensor, but the index is on a GPU"
            raise ValueError(f"{name}: {where} (build the Index on the device you search on)")

    def _queries(self, queries: Any) -> Any:
        queries = as_array(queries, "queries")
        check_packed_rows(queries, "queries")
        self._same_device(queries, "queries")
        return queries

    def _search_queries(self, queries: Any) -> Tuple[Any, bool, bool]:
        """-> (2-D queries, was 1-D, packed?); float queries come back as float32."""
        q = as_array(queries, "queries")
        self._same_device(q, "queries")
        if q.ndim not in (1, 2):
            raise ValueError(f"queries: expected 1-D or 2-D, got shape {tuple(q.shape)}")
        one = q.ndim == 1
        q = q.reshape(1, -1) if one else q
        name = dtype_name(q)
        if name == "uint8":
            check_packed_rows(q, "queries")
            if q.shape[1] != self.nbytes:
                raise ValueError(f"queries: packed row width {q.shape[1]} does not match the index's {self.nbytes} "
                                 f"(real-valued queries: float32 or int8 with {self.dim} values)")
            return q, one, True
        if not (dtype_kind(q) == "f" or name == "int8"):
            raise TypeError(f"queries: expected packed uint8 rows or float32 / int8 vectors of {self.dim} values, "
                            f"got dtype {name}")
        if self.quantizer is not None:
            dev = q.device if is_torch(q) else None
            q = self.quantizer.transform(q.cpu().numpy() if dev is not None else q, name="queries")
            if dev is not None:
                import torch

                q = torch.as_tensor(q, device=dev)
        if q.shape[1] != self.dim:
            raise ValueError(f"queries: {q.shape[1]} values per row, the index holds {self.dim} trits per row")
        if is_torch(q):
            import torch

            q = q.to(torch.float32).contiguous()
            finite = bool(torch.isfinite(q).all())
        else:
            q = np.ascontiguousarray(q, dtype=np.float32)
            finite = bool(np.isfinite(q).all())
        if not finite:
            raise ValueError("queries: contain NaN or Inf (or values beyond float32)")
        return q, one, False

    def _float_scores(self, q: Any, metric: str) -> Any:
        """Asymmetric scores (M, N) float32 of float32 queries ``q``."""
        if hasattr(self.impl, "float_scores"):
            s = self.impl.float_scores(q)
            norms = self.impl.norms
            if metric == "cosine":
                den = np.linalg.norm(q.astype(np.float64), axis=1)[:, None] * np.sqrt(norms.astype(np.float64))[None]
                with np.errstate(invalid="ignore", divide="ignore"):
                    s = np.where(den > 0, s / den, 0.0).astype(np.float32)
            return s
        import torch

        from .packing import unpack_ternary

        db = self.impl.database
        out = torch.empty((q.shape[0], db.shape[0]), dtype=torch.float32, device=q.device)
        step = max(1, (1 << 24) // max(self.dim, 1))
        for r0 in range(0, db.shape[0], step):
            t = unpack_ternary(db[r0:r0 + step], self.dim).to(torch.float32)
            out[:, r0:r0 + step] = q @ t.T
        if metric == "cosine":
            den = torch.linalg.norm(q.double(), dim=1)[:, None] * torch.sqrt(self.impl.norms.double())[None]
            out = torch.where(den > 0, out.double() / den, torch.zeros((), dtype=torch.float64,
                                                                       device=q.device)).float()
        return out

    def _float_topk(self, q: Any, k: int, metric: str) -> Tuple[Any, Any]:
        if hasattr(self.impl, "float_topk"):  # CPU: scores and selection fused, no (M, N) matrix
            return self.impl.float_topk(q, k, metric)
        n = max(len(self), 1)
        step = max(1, (1 << 24) // n)
        parts = [_topk_rows(self._float_scores(q[i:i + step], metric), k) for i in range(0, q.shape[0], step)]
        if is_torch(q):
            import torch

            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def topk(self, queries: Any, k: int, metric: str = "cosine") -> Tuple[Any, Any]:
        """As :func:`topk` against this database (packed queries; row positions, not ids)."""
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

    def search(self, queries: Any, k: int, metric: str = "cosine", *,
               rescore: Union[None, Any, Callable[[np.ndarray], Any]] = None, oversample: int = 4,
               rescore_queries: Any = None) -> Tuple[Any, Any]:
        """The ``k`` best rows per query: ``(scores, ids)``, ``(M, k)`` (``(k,)`` for one query),
        best first, ids int64 (external).

        Args:
            queries: packed uint8 ``(M, nbytes)`` or real-valued ``(M, dim)`` (float32 / int8 / ...).
            k: 1 <= k <= len(index).
            metric: ``"cosine"`` (default), ``"dot"``; ``"hamming"`` for packed queries only.
            rescore: oversample then rescore: ``k * oversample`` candidates are found on the ternary
                codes, then re-ranked by ``rescore``: float vectors ``(len(index), d)`` in row order
                (see :attr:`ids`; the new score is their dot product with ``rescore_queries``, by
                default the float queries themselves), or a callable ``f(ids (M, C)) -> (M, C)``
                scores, higher better. The returned scores are the rescored ones (float32).
            oversample: candidates per result for ``rescore`` (>= 1).
            rescore_queries: float ``(M, d)`` queries for array ``rescore`` (needed with packed queries).
        """
        _check_metric(metric)
        k = check_int(k, "k", 1)
        oversample = check_int(oversample, "oversample", 1)
        wrap = None
        if is_torch(queries) and self._backend.__name__ == "ternhd._cpu":  # CPU tensors: numpy inside
            import torch

            queries, wrap = queries.detach().numpy(), torch.from_numpy
        if rescore is not None and rescore_queries is None and self.quantizer is not None:
            rescore_queries = queries  # the float vectors live in the input space, not the rotated one
        q, one, packed = self._search_queries(queries)
        if k > len(self):
            raise ValueError(f"k: {k} exceeds the index size {len(self)}")
        kk = k if rescore is None else min(len(self), k * oversample)
        if packed:
            scores, pos = self.impl.topk(q, kk, metric)
        else:
            if metric == "hamming":
                raise ValueError("metric: 'hamming' needs packed ternary queries; real-valued queries use 'cosine' "
                                 "or 'dot'")
            scores, pos = self._float_topk(q, kk, metric)
        if rescore is not None:
            scores, pos = self._rescore(None if packed else q, pos, k, rescore, rescore_queries)
        ids = self._ids_of(pos)
        if wrap is not None:
            scores, ids = wrap(np.ascontiguousarray(scores)), wrap(np.ascontiguousarray(ids))
        return (scores[0], ids[0]) if one else (scores, ids)

    def _search_positions(self, queries: Any, k: int, metric: str) -> Tuple[Any, Any]:
        """(scores, row positions) of 2-D queries, as :meth:`search` without rescoring."""
        q, _, packed = self._search_queries(queries)
        if packed:
            return self.impl.topk(q, k, metric)
        if metric == "hamming":
            raise ValueError("metric: 'hamming' needs packed ternary queries")
        return self._float_topk(q, k, metric)

    def _rescore(self, qf: Any, pos: Any, k: int, rescore: Any, rescore_queries: Any) -> Tuple[Any, Any]:
        dev = pos.device if is_torch(pos) else None
        p = pos.cpu().numpy() if dev is not None else np.asarray(pos)
        if callable(rescore):
            new = np.asarray(rescore(self._ids[p]), dtype=np.float64)
            if new.shape != p.shape:
                raise ValueError(f"rescore: the callable returned shape {new.shape}, expected {p.shape}")
        else:
            r = rescore.detach().cpu().numpy() if is_torch(rescore) else np.asarray(rescore)
            if r.ndim != 2 or r.shape[0] != len(self) or r.dtype.kind not in "fiu":
                raise ValueError(f"rescore: expected real vectors ({len(self)}, d), one per row in row order, "
                                 f"got {r.dtype} {r.shape}")
            rq = rescore_queries if rescore_queries is not None else qf
            if rq is None:
                raise ValueError("rescore_queries: needed to rescore packed queries with float vectors")
            rq = rq.detach().cpu().numpy() if is_torch(rq) else np.asarray(rq)
            rq = rq.reshape(1, -1) if rq.ndim == 1 else rq
            if rq.shape != (p.shape[0], r.shape[1]):
                raise ValueError(f"rescore_queries: expected shape {(p.shape[0], r.shape[1])}, got {rq.shape}")
            new = np.einsum("mcd,md->mc", r[p].astype(np.float32), rq.astype(np.float32)).astype(np.float64)
        order = np.lexsort((p, -new), axis=-1)[:, :k]
        s_out = np.take_along_axis(new, order, 1).astype(np.float32)
        p_out = np.take_along_axis(p, order, 1)
        if dev is not None:
            import torch

            return torch.as_tensor(s_out, device=dev), torch.as_tensor(p_out, device=dev)
        return s_out, p_out

    def range_search(self, queries: Any, min_score: float, metric: str = "cosine") -> Tuple[Any, Any, Any]:
        """Every row scoring at least ``min_score`` (``"cosine"`` or ``"dot"``), faiss-style:
        ``(lims, scores, ids)`` numpy arrays; query i's results are ``scores[lims[i]:lims[i + 1]]``
        / ``ids[...]``, best first."""
        _check_metric(metric)
        if metric == "hamming":
            raise ValueError("metric: range_search takes 'cosine' or 'dot' (a minimum score)")
        if isinstance(min_score, bool) or not isinstance(min_score, (int, float, np.integer, np.floating)):
            raise TypeError(f"min_score: expected a number, got {type(min_score).__name__}")
        if is_torch(queries) and self._backend.__name__ == "ternhd._cpu":
            queries = queries.detach().numpy()
        q, _, packed = self._search_queries(queries)
        step = max(1, (1 << 24) // max(len(self), 1))
        lims, scores, pos = [0], [], []
        for i0 in range(0, q.shape[0], step):
            qc = q[i0:i0 + step]
            s = self.impl.pairwise(qc, metric) if packed else self._float_scores(qc, metric)
            s = s.cpu().numpy() if is_torch(s) else np.asarray(s)
            for row in s:
                sel = np.flatnonzero(row >= min_score)
                order = np.lexsort((sel, -row[sel].astype(np.float64)))
                scores.append(row[sel[order]])
                pos.append(sel[order])
                lims.append(lims[-1] + len(sel))
        p = np.concatenate(pos) if pos else np.zeros(0, np.int64)
        sc = np.concatenate(scores) if scores else np.zeros(0, np.float32)
        return np.asarray(lims, np.int64), sc, self._ids[p]

    # ------------------------------------------------------------------ files
    def save(self, path: Union[str, "os.PathLike[str]"]) -> int:
        """Writes the index to ``path`` (a packet, docs/FORMAT.md section 6.1) through a temporary
        file renamed into place: the file is never half-written. Returns the bytes written."""
        v = self.vectors
        v = v.cpu().numpy() if is_torch(v) else np.ascontiguousarray(v)
        meta: dict = {"ternhd_index": 1, "next_id": self._next_id}
        if self.quantizer is not None:
            meta.update(ternhd_index=2, quantizer=self.quantizer.to_dict())
        return _write_index(path, v, self.dim, self._ids, meta)

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"], *, device: Any = None) -> "Index":
        """Reads an index file into memory (checksum verified, rows validated); ``device`` e.g.
        ``"cuda"`` for a GPU index. Raises :class:`ternhd.PacketError` on a bad file."""
        vectors, ids, dim, meta = _open_index(_packet._map_file(path), verify=True)
        db: Any = np.array(vectors, copy=True)
        if device is not None and str(device) != "cpu":
            import torch

            db = torch.as_tensor(db, device=device)
        index = cls(db, ids=np.array(ids, copy=True), dim=dim)
        index.quantizer = _quantizer_of(meta, dim)
        index._next_id = max(index._next_id, int(meta.get("next_id", 0)))
        return index

    @classmethod
    def view(cls, path: Union[str, "os.PathLike[str]"], *, verify: bool = False) -> "Index":
        """Opens an index file memory-mapped and read-only: nothing is copied or converted, so it
        opens in constant time and memory; searches read the rows from the map (the page cache).
        The header and the file length are checked; ``verify=True`` also reads the whole file to
        verify the checksum and the rows (an invalid row is otherwise reported by the search that
        reads it). ``add`` / ``remove`` raise; :meth:`load` gives a mutable copy."""
        from . import _cpu

        vectors, ids, dim, meta = _open_index(_packet._map_file(path), verify=verify)
        index = cls.__new__(cls)
        index.dim = dim
        index._keep_unpacked = False
        index._readonly = True
        index._ids = ids
        index._sorted = index._order = None
        index._next_id = int(meta.get("next_id", 0))
        index._ids_dev = None
        index._backend = _cpu
        index.impl = _cpu.PackedView(vectors)
        index.quantizer = _quantizer_of(meta, dim)
        return index


def _quantizer_of(meta: dict, dim: int) -> Any:
    """The quantizer stored in an index file's metadata, or None. Raises PacketError."""
    from .quantizer import Quantizer

    rec = meta.get("quantizer")
    if rec is None:
        return None
    try:
        q = Quantizer.from_dict(rec)
    except ValueError as e:
        raise _packet.PacketError(f"index: {e}") from None
    if q.dim != dim:
        raise _packet.PacketError(f"index: the quantizer gives {q.dim} trits, the rows hold {dim}")
    return q


def _topk_rows(s: Any, k: int) -> Tuple[Any, Any]:
    """The k best columns of each row of ``s`` (higher better), ties to the lower column."""
    if is_torch(s):
        import torch

        vals, idx = torch.sort(s, dim=1, descending=True, stable=True)
        return vals[:, :k].contiguous(), idx[:, :k].contiguous()
    m, n = s.shape
    out_i = np.empty((m, k), np.int64)
    if k < n:
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(s, part, 1).min(axis=1)
        tied = (s >= kth[:, None]).sum(axis=1) > k
    else:
        part = np.broadcast_to(np.arange(n), (m, n))
        tied = np.zeros(m, bool)
    for i in range(m):
        cand = np.flatnonzero(s[i] >= kth[i]) if tied[i] else part[i]
        order = np.lexsort((cand, -s[i, cand].astype(np.float64)))[:k]
        out_i[i] = cand[order]
    return np.take_along_axis(s, out_i, 1), out_i


def _write_index(path: Any, vectors: np.ndarray, dim: int, ids: np.ndarray, extra: dict) -> int:
    """One packet (docs/FORMAT.md 6.1) streamed to a temporary file, fsync'ed and renamed over ``path``."""
    meta = json.dumps(extra, separators=(",", ":")).encode("utf-8")
    count, width = vectors.shape
    head = bytearray(_packet._HEADER.pack(_packet.MAGIC, _packet.VERSION, _packet.FLAG_LABELS,
                                          _packet.HEADER_SIZE + len(meta), dim, count, 0, 0, 0, 0, 0, 0.0, 0, 0, 0,
                                          len(meta), count * width, 0))
    payload = memoryview(np.ascontiguousarray(vectors).reshape(-1)).cast("B")
    labels = memoryview(np.ascontiguousarray(ids, dtype="<i8")).cast("B")
    crc = zlib.crc32(memoryview(head)[:64])
    for part in (meta, payload, labels):
        crc = zlib.crc32(part, crc)
    struct.pack_into("<Q", head, 64, crc)
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=".ternhd-index-", suffix=".tmp", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            for part in (head, meta, payload, labels):
                f.write(part)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return len(head) + len(meta) + len(payload) + len(labels)


def _open_index(mv: Any, verify: bool) -> Tuple[np.ndarray, np.ndarray, int, dict]:
    """(vectors, ids, dim, meta) of an index file's bytes, zero-copy. Raises PacketError."""
    err = _packet.PacketError
    if verify:
        pkt = _packet.loads(mv)
        h_kind, h_enc, flags_labels, vectors, ids, dim = (pkt.kind, pkt.encoding, pkt.labels is not None,
                                                          pkt.vectors, pkt.labels, pkt.dim)
        meta = pkt.meta
    else:
        if len(mv) < _packet.HEADER_SIZE:
            raise err(f"truncated: {len(mv)} bytes, a packet header needs {_packet.HEADER_SIZE}")
        h = _packet._parse_header(mv[:_packet.HEADER_SIZE])
        if h.total != len(mv):
            raise err(f"truncated: the file holds {len(mv)} bytes, its header declares {h.total}")
        start = _packet.HEADER_SIZE + h.mid_len
        meta = _packet._parse_meta(mv[start:start + h.meta_len])
        h_kind, h_enc, flags_labels, dim = (_packet.KINDS[h.kind], _packet.ENCODINGS[h.encoding],
                                            bool(h.flags & _packet.FLAG_LABELS), h.dim)
        vectors = ids = None
        if h_enc == "2bit" and flags_labels:
            vectors = np.frombuffer(mv, np.uint8, count=h.payload_len, offset=h.header_size)
            vectors = vectors.reshape(h.count, (h.dim + 3) // 4)
            ids = np.frombuffer(mv, "<i8", count=h.count, offset=h.header_size + h.payload_len)
    version = meta.get("ternhd_index")
    if version is None or h_kind != "vectors" or not flags_labels:
        raise err("index: not a ternhd index file (a vectors packet with ids and ternhd_index metadata)")
    if not isinstance(version, int) or version < 1:
        raise err(f"index: invalid format version {version!r}")
    if version > INDEX_FORMAT:
        raise err(f"index: format version {version} is newer than this ternhd reads ({INDEX_FORMAT}); upgrade "
                  f"ternhd")
    if h_enc != "2bit":
        raise err("index: the rows must use the 2-bit encoding")
    assert vectors is not None and ids is not None
    return vectors, ids, int(dim), meta


def sharded_search(index: Index, queries: Any, k: int, metric: str = "cosine", *, group: Any = None,
                   src: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Top-k over a database split across the ranks of a ``torch.distributed`` process group.

    Every rank calls it with its own shard (``index``, a CPU :class:`Index`); the queries of rank
    ``src`` are broadcast (other ranks may pass None), each rank searches its shard, and the
    per-shard top-k lists are gathered and merged. Every rank returns the same ``(scores, ids)``
    (numpy, ``(M, k)``, or ``(k,)`` for one query). With the rows split over the ranks in rank
    order (rank 0 first), the result equals that of one index holding all rows, ties included.
    Raises ValueError on every rank when ``k`` exceeds the total number of rows.
    """
    import torch.distributed as dist

    _check_metric(metric)
    k = check_int(k, "k", 1)
    rank = dist.get_rank(group)
    box = [None]
    if rank == (dist.get_group_rank(group, src) if group is not None else src):
        q = as_array(queries, "queries")
        box = [q.detach().cpu().numpy() if is_torch(q) else np.asarray(q)]
    dist.broadcast_object_list(box, src=src, group=group)
    q = box[0]
    one = q.ndim == 1
    q2 = q.reshape(1, -1) if one else q
    kl = min(k, len(index))
    err = None
    part = None
    try:
        if kl:
            s, pos = index._search_positions(q2, kl, metric)
            s, pos = np.asarray(s), np.asarray(pos)
            part = (s, pos, index.ids[pos])
    except (ValueError, TypeError) as exc:  # reported on every rank after the exchange
        err = f"{type(exc).__name__}: {exc}"
    parts: list = [None] * dist.get_world_size(group)
    dist.all_gather_object(parts, (len(index), part, err), group=group)
    errors = [e for _, _, e in parts if e]
    if errors:
        raise ValueError(f"sharded_search: {errors[0]}")
    total = sum(n for n, _, _ in parts)
    if k > total:
        raise ValueError(f"k: {k} exceeds the total size {total} of the shards")
    got = [(r, p) for r, (_, p, _) in enumerate(parts) if p is not None]
    scores = np.concatenate([p[0] for _, p in got], axis=1)
    ids = np.concatenate([p[2] for _, p in got], axis=1)
    shard = np.concatenate([np.full(p[1].shape, r, np.int64) for r, p in got], axis=1)
    pos = np.concatenate([p[1] for _, p in got], axis=1)
    key = scores.astype(np.float64) if metric == "hamming" else -scores.astype(np.float64)
    order = np.lexsort((pos, shard, key), axis=-1)[:, :k]
    scores, ids = np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)
    return (scores[0], ids[0]) if one else (scores, ids)
