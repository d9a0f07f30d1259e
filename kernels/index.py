"""A packed database kept on the GPU for repeated searches: the Triton counterpart of ``ternhd.Index``.

``ternhd.Index(database)`` builds one of these when ``database`` is a CUDA tensor. Building it
validates the 2-bit codes and counts each row's non-zeros once; every search after that skips
both passes over the database. With ``keep_unpacked=True`` the database is also kept unpacked (int8 or
float8 e4m3: four times the packed size) for the "int8" / "fp8" methods of large query batches,
which otherwise unpack it again in every call. Results are those of :func:`ternhd.kernels.topk` /
:func:`ternhd.kernels.pairwise` on the same rows.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from ._util import check_int
from .similarity import _as_packed, _check_metric, _method, _pairwise_rows, _topk_rows, _unpacked, row_norms

__all__ = ["Index"]


class Index:
    """Packed uint8 database rows ``(N, B)`` resident on their device.

    >>> index = Index(database_packed_cuda)          # validated once, row norms cached
    >>> scores, ids = index.topk(queries, k=10)      # cosine by default, as ternhd.topk
    >>> sims = index.pairwise(queries, "hamming")    # (M, N), as ternhd.pairwise

    Args:
        database: packed uint8 ``(N, B)`` torch tensor (CUDA; CPU under ``TRITON_INTERPRET=1``).
        keep_unpacked: keep the unpacked database of the "int8" / "fp8" methods (``N x 16 ceil(B/4)``
            bytes each) after its first use instead of unpacking it in every call.
        copy: hold a private copy of ``database`` (default). With ``copy=False`` the index reads the
            caller's tensor, which must then not change: the cached norms would no longer match.
    """

    def __init__(self, database: torch.Tensor, *, keep_unpacked: bool = False, copy: bool = True):
        d2 = _as_packed(database, "database", allow_1d=False)
        if copy and d2.data_ptr() == database.data_ptr():
            d2 = d2.clone()
        self.database = d2
        self.norms = row_norms(d2, "database")  # raises ValueError on the invalid code 0b11
        self.keep_unpacked = bool(keep_unpacked)
        self._unpacked: Dict[bool, torch.Tensor] = {}

    def __len__(self) -> int:
        return int(self.database.shape[0])

    @property
    def nbytes(self) -> int:
        """Packed bytes per row."""
        return int(self.database.shape[1])

    @property
    def device(self) -> torch.device:
        return self.database.device

    def __repr__(self) -> str:
        return f"ternhd.kernels.Index({len(self)} rows x {self.nbytes} bytes on {self.device})"

    def _queries(self, queries: torch.Tensor) -> torch.Tensor:
        q2 = _as_packed(queries, "queries")
        if q2.device != self.device:
            raise ValueError(f"queries: on {q2.device} but the index is on {self.device}")
        if q2.shape[1] != self.nbytes:
            raise ValueError(f"queries: packed row width {q2.shape[1]} does not match the index's {self.nbytes}")
        return q2

    def _operand(self, how: str) -> Optional[torch.Tensor]:
        """The kept unpacked database for method ``how``, made on first use (None: not kept)."""
        if how not in ("int8", "fp8") or not self.keep_unpacked or self.nbytes == 0:
            return None
        fp8 = how == "fp8"
        if fp8 not in self._unpacked:
            self._unpacked[fp8] = _unpacked(self.database, fp8)
        return self._unpacked[fp8]

    def pairwise(self, queries: torch.Tensor, metric: str = "cosine", *, method: Optional[str] = None,
                 hw: Optional[bool] = None, config: Optional[dict] = None) -> torch.Tensor:
        """Scores of queries ``(M, B)`` (or one row ``(B,)``) against every row: ``(M, N)`` (or ``(N,)``);
        arguments as :func:`ternhd.kernels.pairwise`."""
        _check_metric(metric)
        q2 = self._queries(queries)
        how = _method(q2.shape[0], method, self.device)
        out = _pairwise_rows(q2, self.database, metric, how, ("queries", "database"), hw, config, self.norms,
                             self._operand(how))
        return out[0] if queries.dim() == 1 else out

    def topk(self, queries: torch.Tensor, k: int, metric: str = "cosine", *, method: Optional[str] = None,
             hw: Optional[bool] = None, chunk: Optional[int] = None,
             config: Optional[dict] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` best rows per query, best first, ties to the lower index; arguments and results as
        :func:`ternhd.kernels.topk`."""
        _check_metric(metric)
        k = check_int(k, "k", 1)
        q2 = self._queries(queries)
        how = _method(q2.shape[0], method, self.device)
        scores, idx = _topk_rows(q2, self.database, k, metric, how, hw, chunk, config, self.norms,
                                 self._operand(how))
        if queries.dim() == 1:
            return scores[0], idx[0]
        return scores, idx
