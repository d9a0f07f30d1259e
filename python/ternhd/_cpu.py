"""The CPU implementation of every op: numpy glue around the C++ core (``ternhd._core``).

The same ops, with the same signatures, as :mod:`ternhd.kernels.dispatch` (the GPU side of the
seam in :mod:`ternhd._device`). Arguments arrive validated by the front (shapes, dtypes, scalar
arguments); numpy arrays come back as numpy arrays and CPU torch tensors as CPU torch tensors.
The C++ core checks the data itself (invalid codes, trit values, NaN/Inf) as it reads it.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import numpy as np

from . import _core
from ._arrays import check_packed, is_torch, to_numpy

__all__ = ["pack_ternary", "unpack_ternary", "quantize", "pairwise", "topk", "Index", "PackedView", "bind", "bundle",
           "permute"]


# ----------------------------------------------------------------------------- packing
def _offset_tables() -> Tuple[np.ndarray, np.ndarray]:
    # Byte-wise conversion between the sign layout (0 -> 00, +1 -> 01, -1 -> 10) and the offset
    # layout (stored value t + 1: -1 -> 00, 0 -> 01, +1 -> 10). Code 11 maps to 11 both ways.
    to_off = {0: 1, 1: 2, 2: 0, 3: 3}
    to_sign = {v: k for k, v in to_off.items()}
    b = np.arange(256)
    s2o = np.zeros(256, np.uint8)
    o2s = np.zeros(256, np.uint8)
    for shift in (6, 4, 2, 0):
        c = (b >> shift) & 3
        s2o |= (np.vectorize(to_off.get)(c) << shift).astype(np.uint8)
        o2s |= (np.vectorize(to_sign.get)(c) << shift).astype(np.uint8)
    return s2o, o2s


_SIGN_TO_OFFSET, _OFFSET_TO_SIGN = _offset_tables()


def _as_trits(arr: np.ndarray) -> np.ndarray:
    """int8 trits; other dtypes are accepted when every value is exactly -1, 0 or 1."""
    if arr.dtype == np.int8:
        return arr
    if arr.dtype.kind == "b":
        return arr.astype(np.int8)
    if arr.size and not np.isin(arr, (-1, 0, 1)).all():
        raise ValueError("t: values must be -1, 0 or 1 (use ternhd.quantize for real-valued input)")
    return arr.astype(np.int8)


def pack_ternary(t: Any, layout: str = "sign") -> Any:
    """int8 (or exact-trit) ``(..., D)`` -> packed uint8 ``(..., ceil(D / 4))``."""
    arr, wrap = to_numpy(t, "t")
    trits = np.ascontiguousarray(_as_trits(arr))
    dim = trits.shape[-1]
    rows = int(np.prod(trits.shape[:-1], dtype=np.int64))
    out = _core.pack_rows(trits.reshape(-1), rows, dim).reshape(trits.shape[:-1] + ((dim + 3) // 4,))
    return wrap(_SIGN_TO_OFFSET[out] if layout == "offset" else out)


def unpack_ternary(packed: Any, dim: int, layout: str = "sign") -> Any:
    """packed uint8 ``(..., ceil(dim / 4))`` -> int8 ``(..., dim)``."""
    arr, wrap = to_numpy(packed, "packed")
    arr = np.ascontiguousarray(arr)
    if layout == "offset":
        arr = _OFFSET_TO_SIGN[arr]
    rows = int(np.prod(arr.shape[:-1], dtype=np.int64))
    out = _core.unpack_rows(arr.reshape(-1), rows, dim)
    return wrap(out.reshape(arr.shape[:-1] + (dim,)))


# ----------------------------------------------------------------------------- quantization
def _as_float(arr: np.ndarray) -> np.ndarray:
    if arr.dtype in (np.float32, np.float64):
        return np.ascontiguousarray(arr)
    if arr.dtype.kind == "f":  # float16 and friends
        return np.ascontiguousarray(arr, dtype=np.float32)
    return np.ascontiguousarray(arr, dtype=np.float64)  # integers and bool


def _batch_thresholds(x2: np.ndarray, tau: float) -> np.ndarray:
    """The ``"batch"`` mode's thresholds (float64, shape (rows,)): ``tau * std`` of all of ``x2``."""
    rows = x2.shape[0]
    if x2.size == 0:
        return np.zeros(rows)
    if not np.isfinite(x2).all():
        raise ValueError("x: contains NaN or Inf")
    return np.full(rows, float(tau) * float(x2.astype(np.float64, copy=False).std()))


def quantize(x: Any, tau: float = 0.3, threshold: Union[str, float] = "std", sparsity: Optional[float] = None,
             packed: bool = False) -> Any:
    """float ``(..., D)`` -> int8 ``(..., D)`` (or packed uint8 ``(..., ceil(D / 4))``)."""
    arr, wrap = to_numpy(x, "x")
    arr = _as_float(arr)
    dim = arr.shape[-1]
    x2 = arr.reshape(-1, dim)
    if sparsity is None and threshold == "batch":  # one statistic over the whole array first
        thr = np.ascontiguousarray(_batch_thresholds(x2, tau), dtype=np.float64)
        out = _core.quantize_rows(x2.reshape(-1), x2.shape[0], dim, thr, bool(packed))
    else:  # per-row modes: each row's threshold found and applied in one native pass
        mode = _core.ThresholdMode
        spec = ((mode.sparsity, 0.0, 0.0, int(round(float(sparsity) * dim))) if sparsity is not None else
                (mode.std, float(tau), 0.0, 0) if isinstance(threshold, str) else
                (mode.fixed, 0.0, float(threshold), 0))
        out = _core.quantize_rows(x2.reshape(-1), x2.shape[0], dim, *spec, bool(packed))
    width = (dim + 3) // 4 if packed else dim
    return wrap(out.reshape(arr.shape[:-1] + (width,)))


# ----------------------------------------------------------------------------- similarity
def pairwise(a: Any, b: Any, metric: str = "cosine") -> Any:
    """packed ``(M, B)`` x ``(N, B)`` -> ``(M, N)`` int32 (dot, hamming) or float32 (cosine)."""
    na, wrap = to_numpy(a, "a")
    nb, _ = to_numpy(b, "b")
    return wrap(_core.pairwise(np.ascontiguousarray(na), np.ascontiguousarray(nb), metric))


def topk(queries: Any, database: Any, k: int, metric: str = "cosine") -> Tuple[Any, Any]:
    """packed ``(M, B)`` against ``(N, B)`` -> scores and int64 indices ``(M, k)``, best first."""
    nq, wrap = to_numpy(queries, "queries")
    nd, _ = to_numpy(database, "database")
    scores, idx = _core.topk(np.ascontiguousarray(nq), np.ascontiguousarray(nd), k, metric)
    return wrap(scores), wrap(idx)


class Index:
    """A packed database ``(N, B)`` kept in the native bit-plane layout for repeated searches.

    Mutable: :meth:`append` converts only the new rows (the planes grow by ``realloc``, amortized)
    and :meth:`keep` compacts in place. The packed rows are kept too (for :attr:`vectors`, saving and
    rescoring), as a list of appended chunks joined on first use.
    """

    def __init__(self, database: Any, *, keep_unpacked: bool = False):
        if keep_unpacked:
            raise ValueError("keep_unpacked: only for a CUDA database (the CPU index keeps bit planes)")
        arr, _ = to_numpy(database, "database")
        d2 = check_packed(arr, "database", allow_1d=False)
        self._planes = _core.PlanesIndex(d2)
        self.nbytes = d2.shape[1]
        self._chunks = [np.array(d2, dtype=np.uint8, copy=True)]

    def __len__(self) -> int:
        return int(self._planes.rows)

    def __repr__(self) -> str:
        return f"ternhd.Index({len(self)} rows x {self.nbytes} bytes, CPU bit planes)"

    @property
    def norms(self) -> np.ndarray:
        """Non-zeros per database row, int32 ``(N,)``."""
        return self._planes.norms

    @property
    def vectors(self) -> np.ndarray:
        """The packed rows ``(N, B)`` (read-only view)."""
        if len(self._chunks) != 1:
            self._chunks = [np.concatenate(self._chunks)]
        v = self._chunks[0].view()
        v.flags.writeable = False
        return v

    def append(self, packed: np.ndarray) -> None:
        """Appends validated packed rows ``(n, B)`` (ValueError on the code 0b11, nothing added)."""
        p = np.ascontiguousarray(packed, dtype=np.uint8)
        self._planes.append(p)
        self._chunks.append(np.array(p, copy=True))

    def keep(self, mask: np.ndarray) -> None:
        """Keeps the rows where ``mask`` (bool ``(N,)``) is true, in order."""
        rows = self.vectors[mask]
        self._planes.keep(np.ascontiguousarray(mask, dtype=np.uint8))
        self._chunks = [rows]

    def float_scores(self, queries: np.ndarray) -> np.ndarray:
        """float32 queries ``(M, dim)`` -> float32 ``(M, N)``: ``q . t`` for every row."""
        return self._planes.float_scores(np.ascontiguousarray(queries, dtype=np.float32))

    def float_topk(self, queries: np.ndarray, k: int, metric: str) -> Tuple[np.ndarray, np.ndarray]:
        """float32 queries ``(M, dim)`` -> float32 scores and int64 rows ``(M, k)``, best first ("dot" / "cosine")."""
        return self._planes.float_topk(np.ascontiguousarray(queries, dtype=np.float32), k, metric)

    def _queries(self, queries: Any) -> Tuple[np.ndarray, Any]:
        nq, wrap = to_numpy(queries, "queries")
        q2 = check_packed(nq, "queries")
        if q2.shape[1] != self.nbytes:
            raise ValueError(f"queries: packed row width {q2.shape[1]} does not match the index's {self.nbytes}")
        return q2, wrap

    def topk(self, queries: Any, k: int, metric: str = "cosine") -> Tuple[Any, Any]:
        """Packed queries ``(M, B)`` -> scores and int64 indices ``(M, k)``, best first."""
        if k > len(self):
            raise ValueError(f"k: {k} exceeds the database size {len(self)}")
        q2, wrap = self._queries(queries)
        scores, idx = self._planes.topk(q2, k, metric)
        return wrap(scores), wrap(idx)

    def pairwise(self, queries: Any, metric: str = "cosine") -> Any:
        """Packed queries ``(M, B)`` -> scores ``(M, N)``."""
        q2, wrap = self._queries(queries)
        return wrap(self._planes.pairwise(q2, metric))


class PackedView:
    """Read-only packed rows ``(N, B)`` searched where they lie (a memory map: no copy, no planes).

    The kernels convert the rows to bit planes one cache block at a time, so opening costs nothing
    and a search reads only the file; searches are slower than :class:`Index`'s for small query
    batches."""

    def __init__(self, packed: np.ndarray):
        self._packed = packed
        self.nbytes = int(packed.shape[1])
        self._norms: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return int(self._packed.shape[0])

    def __repr__(self) -> str:
        return f"ternhd.Index({len(self)} rows x {self.nbytes} bytes, memory-mapped, read-only)"

    @property
    def vectors(self) -> np.ndarray:
        return self._packed

    @property
    def norms(self) -> np.ndarray:
        """Non-zeros per row, int32 ``(N,)`` (computed on first use: reads the whole file)."""
        if self._norms is None:
            self._norms = self._nnz()
        return self._norms

    def _nnz(self) -> np.ndarray:
        out = np.empty(len(self), np.int32)
        step = 1 << 16
        for r0 in range(0, len(self), step):
            block = np.ascontiguousarray(self._packed[r0:r0 + step])
            out[r0:r0 + step] = _core.PlanesIndex(block).norms
        return out

    def float_scores(self, queries: np.ndarray) -> np.ndarray:
        return _core.float_scores(np.ascontiguousarray(queries, dtype=np.float32), self._packed)

    def float_topk(self, queries: np.ndarray, k: int, metric: str) -> Tuple[np.ndarray, np.ndarray]:
        return _core.float_topk(np.ascontiguousarray(queries, dtype=np.float32), self._packed, k, metric)

    def topk(self, queries: Any, k: int, metric: str = "cosine") -> Tuple[Any, Any]:
        if k > len(self):
            raise ValueError(f"k: {k} exceeds the database size {len(self)}")
        q2 = check_packed(to_numpy(queries, "queries")[0], "queries")
        return _core.topk(q2, self._packed, k, metric)

    def pairwise(self, queries: Any, metric: str = "cosine") -> Any:
        q2 = check_packed(to_numpy(queries, "queries")[0], "queries")
        return _core.pairwise(q2, self._packed, metric)


# ----------------------------------------------------------------------------- HDC algebra
def bind(a: Any, b: Any) -> Any:
    """Element-wise product of packed rows; leading shapes broadcast, the result has their shape."""
    pa, wrap = to_numpy(a, "a")
    pb, wrap_b = to_numpy(b, "b")
    if not is_torch(a):
        wrap = wrap_b  # a torch tensor on either side makes the result a tensor
    shape = np.broadcast_shapes(pa.shape, pb.shape)
    width = shape[-1]

    def rows(p: np.ndarray) -> np.ndarray:
        if p.shape == shape or p.size == width:
            return np.ascontiguousarray(p).reshape(-1, width)
        return np.ascontiguousarray(np.broadcast_to(p, shape)).reshape(-1, width)

    return wrap(_core.bind_rows(rows(pa), rows(pb)).reshape(shape))


def bundle(vectors: Any, dim: int, threshold: int = 0, packed: bool = True) -> Any:
    """Packed ``(..., n, ceil(dim / 4))`` -> packed ``(..., ceil(dim / 4))`` (or int32 sums
    ``(..., dim)`` with ``packed=False``)."""
    arr, wrap = to_numpy(vectors, "vectors")
    lead, (n, width) = arr.shape[:-2], arr.shape[-2:]
    groups = int(np.prod(lead, dtype=np.int64))
    rows = np.ascontiguousarray(arr).reshape(groups, n, width)
    if not packed:  # the same bit-sliced counts as the majority vote, finished as int32
        return wrap(_core.bundle_sums(rows)[:, :dim].reshape(lead + (dim,)))
    return wrap(_core.bundle_rows(rows, float(threshold)).reshape(lead + (width,)))


def permute(a: Any, k: int, dim: int) -> Any:
    """Packed ``(..., ceil(dim / 4))`` rows shifted cyclically by ``k`` trits (same shape)."""
    arr, wrap = to_numpy(a, "a")
    rows = np.ascontiguousarray(arr).reshape(-1, arr.shape[-1])
    return wrap(_core.permute_rows(rows, k % dim, dim).reshape(arr.shape))
