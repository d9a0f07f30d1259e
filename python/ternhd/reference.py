"""Pure numpy reference of every kernel: the oracle the native and Triton kernels are tested
against. Written for clarity, not speed. Shapes and dtypes match the public API (2-D in, 2-D out).
"""
from __future__ import annotations

import numpy as np

__all__ = ["pack_ternary", "unpack_ternary", "quantize", "thresholds", "dot", "cosine", "hamming", "topk", "bind",
           "bundle", "permute"]

_SHIFTS = np.array([6, 4, 2, 0], dtype=np.uint8)


def pack_ternary(t: np.ndarray) -> np.ndarray:
    """int8 (..., D) in {-1, 0, 1} -> uint8 (..., ceil(D/4)); trit i at bits 6-2*(i%4) of byte i//4,
    codes 0 -> 00, +1 -> 01, -1 -> 10; padding trits 0."""
    t = np.asarray(t)
    if not np.isin(t, (-1, 0, 1)).all():
        raise ValueError("t: values must be -1, 0 or 1")
    d = t.shape[-1]
    pad = (-d) % 4
    codes = np.where(t == 1, 1, np.where(t == -1, 2, 0)).astype(np.uint8)
    codes = np.concatenate([codes, np.zeros(t.shape[:-1] + (pad,), np.uint8)], axis=-1)
    codes = codes.reshape(t.shape[:-1] + ((d + pad) // 4, 4))
    return np.bitwise_or.reduce(codes << _SHIFTS, axis=-1).astype(np.uint8)


def unpack_ternary(p: np.ndarray, dim: int) -> np.ndarray:
    """uint8 (..., ceil(dim/4)) -> int8 (..., dim). Code 11 inside the first `dim` trits raises."""
    p = np.asarray(p, dtype=np.uint8)
    codes = (p[..., None] >> _SHIFTS) & 3
    codes = codes.reshape(p.shape[:-1] + (p.shape[-1] * 4,))[..., :dim]
    if (codes == 3).any():
        raise ValueError("packed: contains the invalid 2-bit code 0b11")
    return np.where(codes == 1, 1, np.where(codes == 2, -1, 0)).astype(np.int8)


def thresholds(x: np.ndarray, tau: float = 0.3, threshold="std", sparsity=None) -> np.ndarray:
    """Per-row thresholds (float64, shape x.shape[:-1]) of the quantization modes of docs/FORMAT.md."""
    x = np.asarray(x, dtype=np.float64)
    rows = x.shape[:-1]
    if x.size == 0:
        return np.zeros(rows)
    if sparsity is not None:
        d = x.shape[-1]
        k = int(round(sparsity * d))
        if k == 0:
            return np.zeros(rows)
        return np.partition(np.abs(x), k - 1, axis=-1)[..., k - 1]
    if isinstance(threshold, str) and threshold == "std":
        return tau * x.std(axis=-1)
    if isinstance(threshold, str) and threshold == "batch":
        return np.full(rows, tau * x.std())
    return np.full(rows, float(threshold))


def quantize(x: np.ndarray, tau: float = 0.3, threshold="std", sparsity=None) -> np.ndarray:
    """float (..., D) -> int8 (..., D): +1 if x > thr, -1 if x < -thr, else 0 (thr from `thresholds`)."""
    x = np.asarray(x, dtype=np.float64)
    thr = thresholds(x, tau, threshold, sparsity)[..., None]
    return ((x > thr).astype(np.int8) - (x < -thr).astype(np.int8)).astype(np.int8)


def _unpack_rows(p: np.ndarray) -> np.ndarray:
    p = np.atleast_2d(p)
    return unpack_ternary(p, p.shape[-1] * 4).astype(np.int64)


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Packed (M, B) x (N, B) -> int32 (M, N): sum of trit products."""
    return (_unpack_rows(a) @ _unpack_rows(b).T).astype(np.int32)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Packed (M, B) x (N, B) -> float32 (M, N); 0 where either row is the zero vector."""
    ua, ub = _unpack_rows(a), _unpack_rows(b)
    d = (ua @ ub.T).astype(np.float64)
    na = (ua != 0).sum(axis=1).astype(np.float64)
    nb = (ub != 0).sum(axis=1).astype(np.float64)
    den = np.sqrt(np.outer(na, nb))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(den > 0, d / np.where(den > 0, den, 1.0), 0.0)
    return c.astype(np.float32)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Packed (M, B) x (N, B) -> int32 (M, N): number of positions where the trits differ."""
    ua, ub = _unpack_rows(a), _unpack_rows(b)
    return (ua[:, None, :] != ub[None, :, :]).sum(axis=-1).astype(np.int32)


def topk(queries: np.ndarray, database: np.ndarray, k: int, metric: str = "cosine"):
    """(scores (M, k), indices int64 (M, k)), best first (highest cosine/dot, lowest hamming),
    ties to the lower database index."""
    s = {"cosine": cosine, "dot": dot, "hamming": hamming}[metric](queries, database)
    key = s.astype(np.float64) if metric == "hamming" else -s.astype(np.float64)
    idx = np.argsort(key, axis=1, kind="stable")[:, :k].astype(np.int64)
    return np.take_along_axis(s, idx, axis=1), idx


# ----------------------------------------------------------------------------- base-3 payload
# (ternhd.packet encoding "base3"; native kernels in csrc/base3.cpp)
__all__ += ["base3_encode", "base3_decode"]

_B3_WEIGHTS = np.array([81, 27, 9, 3, 1], dtype=np.int64)


def base3_encode(packed: np.ndarray, dim: int) -> np.ndarray:
    """2-bit packed uint8 (rows, ceil(dim/4)) -> uint8 (ceil(rows*dim/5),): the rows' trits
    concatenated, 5 per byte as base-3 digits (0 -> 0, +1 -> 1, -1 -> 2), first digit most
    significant, the last byte padded with 0 digits."""
    t = unpack_ternary(np.atleast_2d(packed), dim).reshape(-1)
    digits = np.where(t == 1, 1, np.where(t == -1, 2, 0)).astype(np.int64)
    digits = np.concatenate([digits, np.zeros((-digits.size) % 5, np.int64)]).reshape(-1, 5)
    return (digits @ _B3_WEIGHTS).astype(np.uint8)


def base3_decode(data: np.ndarray, rows: int, dim: int) -> np.ndarray:
    """Inverse of :func:`base3_encode`: uint8 (ceil(rows*dim/5),) -> packed uint8 (rows, ceil(dim/4)).
    Raises ValueError on a wrong length, a byte >= 243 or a non-zero padding digit."""
    data = np.asarray(data, dtype=np.uint8).reshape(-1)
    total = rows * dim
    if data.size != -(-total // 5):
        raise ValueError("data: size does not match ceil(rows * dim / 5)")
    if (data >= 243).any():
        raise ValueError("data: byte >= 243 is not a base-3 group")
    digits = ((data.astype(np.int64)[:, None] // _B3_WEIGHTS) % 3).reshape(-1)
    if digits[total:].any():
        raise ValueError("data: non-zero padding digits")
    t = np.where(digits[:total] == 1, 1, np.where(digits[:total] == 2, -1, 0)).astype(np.int8)
    return pack_ternary(t.reshape(rows, dim))


# ------------------------------------------------------------------------------- HDC algebra
def bind(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Packed (..., B) x (..., B) (numpy broadcasting) -> packed: element-wise trit product."""
    a, b = np.asarray(a, np.uint8), np.asarray(b, np.uint8)
    ta = unpack_ternary(a, a.shape[-1] * 4).astype(np.int8)
    tb = unpack_ternary(b, b.shape[-1] * 4).astype(np.int8)
    return pack_ternary((ta * tb).astype(np.int8))


def bundle(vectors: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Packed (..., n, B) -> packed (..., B): +1 if the column sum > threshold, -1 if < -threshold,
    else 0 (ties at threshold 0 give 0)."""
    v = np.asarray(vectors, np.uint8)
    s = unpack_ternary(v, v.shape[-1] * 4).astype(np.int64).sum(axis=-2)
    return pack_ternary(((s > threshold).astype(np.int8) - (s < -threshold).astype(np.int8)).astype(np.int8))


def permute(a: np.ndarray, k: int, dim: int) -> np.ndarray:
    """Packed (..., ceil(dim/4)) -> same: numpy.roll of the first `dim` trits by k."""
    t = unpack_ternary(np.asarray(a, np.uint8), dim)
    return pack_ternary(np.roll(t, k, axis=-1))
