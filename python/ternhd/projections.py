"""Random projection generators for :class:`ternhd.HDCEncoder`: one documented recipe per kind.

Every generator draws from ``numpy.random.default_rng(seed)`` (PCG64) in the order written below,
so the same ``(in_dim, dim, seed)`` gives the same matrix on every platform and backend. Every
matrix is float32 ``(in_dim, dim)`` with unit-norm columns (``h = x @ P``).

* ``"gaussian"`` (the paper's): ``standard_normal((in_dim, dim))`` in float64, each column divided
  by its L2 norm, cast to float32.
* ``"sparse"``: ``k = max(1, round(density * in_dim))`` non-zeros per column (``density`` defaults
  to ``1 / sqrt(in_dim)``, the "very sparse" projections of Li, Hastie and Church, 2006), values
  ``+-1/sqrt(k)``. Draws: ``keys = random((dim, in_dim))``; column ``j`` holds the rows of its ``k``
  smallest keys (in increasing row order); then ``signs = integers(0, 2, (dim, k))`` (1 -> ``+``,
  0 -> ``-``). Encoding costs ``k`` additions per output trit instead of ``in_dim`` multiply-adds.
* ``"srht"``: stacked subsampled randomized Hadamard transforms. ``L`` = the smallest power of two
  ``>= in_dim``, ``B = ceil(dim / L)`` blocks; draws ``signs = integers(0, 2, (B, L))`` (1 -> ``+1``,
  0 -> ``-1``) then ``select = permutation(B * L)[:dim]``. With ``g = select[j]``, ``b = g // L``,
  ``c = g % L``: ``P[i, j] = sign[b, i] * H[i, c] / sqrt(in_dim)``, ``H[i, c] = (-1) ** popcount(i & c)``
  the Sylvester-ordered Hadamard matrix. So ``h`` is ``B`` fast Walsh-Hadamard transforms of the
  zero-padded ``sign[b] * x / sqrt(in_dim)``, concatenated and read at ``select``:
  ``O(B L log L) = O(dim log in_dim)`` per row instead of ``O(in_dim * dim)``. Each block is an
  isometry of ``x`` (a different one per block). One transform of length ``>= dim`` over the
  zero-padded ``x`` would not do: it repeats the same ``next_pow2(in_dim)`` values ``dim / L`` times.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ._arrays import check_int

__all__ = ["PROJECTIONS", "gaussian_projection", "sparse_projection", "srht_projection", "SparseSpec",
           "SrhtSpec", "sparse_spec", "srht_spec", "hadamard_size"]

PROJECTIONS = ("gaussian", "sparse", "srht")


def gaussian_projection(in_dim: int, dim: int, seed: int = 0) -> np.ndarray:
    """The paper's projection: float32 ``(in_dim, dim)``, unit-norm columns, from PCG64(seed)."""
    rng = np.random.default_rng(seed)
    p = rng.standard_normal((in_dim, dim))
    p /= np.linalg.norm(p, axis=0, keepdims=True)
    return p.astype(np.float32)


# ------------------------------------------------------------------------------------------ sparse
@dataclass(frozen=True)
class SparseSpec:
    """Column-compressed sparse projection: column ``j`` is ``sum_t values[j, t] * e_{rows[j, t]}``.

    ``rows``: int32 ``(dim, k)`` (increasing per column); ``values``: float32 ``(dim, k)``, each
    ``+-1/sqrt(k)``.
    """

    in_dim: int
    rows: np.ndarray
    values: np.ndarray


def sparse_nnz(in_dim: int, density: Optional[float] = None) -> int:
    """Non-zeros per column: ``max(1, round(density * in_dim))``, density ``1/sqrt(in_dim)`` by default."""
    if density is None:
        density = 1.0 / np.sqrt(in_dim)
    return int(min(in_dim, max(1, round(float(density) * in_dim))))


def check_density(density: Optional[float]) -> Optional[float]:
    if density is None:
        return None
    if isinstance(density, bool) or not isinstance(density, (int, float, np.integer, np.floating)):
        raise TypeError(f"density: expected a float in (0, 1], got {type(density).__name__}")
    if not 0.0 < float(density) <= 1.0:
        raise ValueError(f"density: must be in (0, 1], got {density}")
    return float(density)


def sparse_spec(in_dim: int, dim: int, seed: int = 0, density: Optional[float] = None) -> SparseSpec:
    """The sparse projection in column-compressed form (see the module docstring for the recipe)."""
    in_dim, dim = check_int(in_dim, "in_dim", 1), check_int(dim, "dim", 1)
    k = sparse_nnz(in_dim, check_density(density))
    rng = np.random.default_rng(seed)
    keys = rng.random((dim, in_dim))
    if k < in_dim:
        rows = np.sort(np.argpartition(keys, k - 1, axis=1)[:, :k], axis=1)
    else:
        rows = np.broadcast_to(np.arange(in_dim), (dim, in_dim))
    signs = rng.integers(0, 2, size=(dim, k))
    values = np.where(signs == 1, 1.0, -1.0) / np.sqrt(k)
    return SparseSpec(in_dim, np.ascontiguousarray(rows, dtype=np.int32),
                      np.ascontiguousarray(values, dtype=np.float32))


def sparse_projection(in_dim: int, dim: int, seed: int = 0, density: Optional[float] = None) -> np.ndarray:
    """The sparse projection materialized: float32 ``(in_dim, dim)``, ``k`` entries ``+-1/sqrt(k)`` per column."""
    spec = sparse_spec(in_dim, dim, seed, density)
    p = np.zeros((in_dim, dim), dtype=np.float32)
    cols = np.broadcast_to(np.arange(dim)[:, None], spec.rows.shape)
    p[spec.rows, cols] = spec.values
    return p


# -------------------------------------------------------------------------------------------- srht
@dataclass(frozen=True)
class SrhtSpec:
    """``h = concat_b FWHT(pad_L(x * scaled_signs[b]))[select]``.

    ``scaled_signs``: float32 ``(B, in_dim)``, ``+-1/sqrt(in_dim)``; ``select``: int32 ``(dim,)``,
    distinct indices in ``[0, B * L)``; ``size``: ``L``.
    """

    size: int
    scaled_signs: np.ndarray
    select: np.ndarray


def hadamard_size(in_dim: int) -> int:
    """``L``: the smallest power of two ``>= in_dim``."""
    n = max(int(in_dim), 1)
    return 1 << (n - 1).bit_length()


def srht_spec(in_dim: int, dim: int, seed: int = 0) -> SrhtSpec:
    """The SRHT parameters (see the module docstring for the recipe)."""
    in_dim, dim = check_int(in_dim, "in_dim", 1), check_int(dim, "dim", 1)
    size = hadamard_size(in_dim)
    blocks = -(-dim // size)
    rng = np.random.default_rng(seed)
    signs = np.where(rng.integers(0, 2, size=(blocks, size)) == 1, 1.0, -1.0)
    select = rng.permutation(blocks * size)[:dim]
    scaled = np.ascontiguousarray(signs[:, :in_dim] / np.sqrt(in_dim), dtype=np.float32)
    return SrhtSpec(size, scaled, np.ascontiguousarray(select, dtype=np.int32))


def _parity(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.uint64)
    for s in (32, 16, 8, 4, 2, 1):
        v ^= v >> np.uint64(s)
    return (v & np.uint64(1)).astype(np.int8)


def srht_projection(in_dim: int, dim: int, seed: int = 0) -> np.ndarray:
    """The SRHT materialized: float32 ``(in_dim, dim)``, ``P[i, j] = sign[b, i] * H[i, c] / sqrt(in_dim)``
    (``b, c = divmod(select[j], L)``, ``H[i, c] = (-1) ** popcount(i & c)``, computed entry by entry,
    not with the fast transform)."""
    spec = srht_spec(in_dim, dim, seed)
    block, col = np.divmod(spec.select.astype(np.int64), spec.size)
    i = np.arange(in_dim, dtype=np.int64)[:, None]
    h = 1 - 2 * _parity(i & col[None, :])
    return (h * spec.scaled_signs.T[:, block]).astype(np.float32)
