"""Fitted float -> ternary quantizers for search: a rotation (none, random, PCA, ITQ-style learned,
or an :class:`~ternhd.HDCEncoder` projection), then per-row or per-dimension thresholds, with
``tau`` optionally chosen on a validation split of the fitted rows.

>>> q = ternhd.Quantizer(rotation="itq", dim=192, threshold="dim", tau="auto").fit(database)
>>> index = ternhd.Index(dim=q.dim, quantizer=q)
>>> index.add(database)                      # float32 (n, d) -> packed ternary rows (n, 48)
>>> scores, ids = index.search(queries, 10)  # float32 queries, rotated, scored exactly against the codes

Why these levers (issue 14's quality-per-byte study, ``benchmarks/retrieval_quality.py``): a random
expansion spends trits on directions the data does not use; PCA keeps the directions with variance
but leaves the variance concentrated in the first components, which a per-row threshold then
zeroes out in the last ones (per-dimension thresholds fix that); an ITQ-style rotation (Gong &
Lazebnik 2011, with ternary codes) spreads the variance and aligns the axes with the codes.
"""
from __future__ import annotations

import base64
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np

from ._arrays import as_array, check_int, dtype_kind
from .packing import pack_ternary

__all__ = ["Quantizer", "ROTATIONS", "THRESHOLDS"]

ROTATIONS = ("none", "random", "pca", "itq")
THRESHOLDS = ("row", "dim")
#: the ``tau`` values ``tau="auto"`` tries
TAU_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)


def _floats(x: Any, name: str, width: Optional[int] = None) -> np.ndarray:
    a = as_array(x, name)
    if hasattr(a, "detach"):  # torch: the fit is numpy
        a = a.detach().cpu().numpy()
    if dtype_kind(a) not in ("f", "i", "u") or a.dtype == np.bool_:
        raise TypeError(f"{name}: expected real-valued vectors, got dtype {a.dtype}")
    a = np.asarray(a, np.float32)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (rows, values), got shape {a.shape}")
    if width is not None and a.shape[1] != width:
        raise ValueError(f"{name}: {a.shape[1]} values per row, the quantizer was fitted on {width}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or Inf")
    return a


class Quantizer:
    """Float vectors ``(n, d)`` -> ternary codes ``(n, dim)`` (packed ``(n, ceil(dim / 4))`` uint8).

    Args:
        rotation: ``"none"`` (the raw dimensions; ``dim`` must equal ``d``), ``"random"`` (a random
            orthogonal rotation, its first ``dim`` columns; ``dim > d`` gives a Gaussian
            expansion), ``"pca"`` (the ``dim`` leading principal directions, ``dim <= d``),
            ``"itq"`` (PCA to ``dim``, then a rotation learned by alternating ternarization and
            orthogonal Procrustes), or an :class:`~ternhd.HDCEncoder` (its projection; ``dim`` is
            the encoder's).
        dim: trits per code (default ``d``).
        threshold: ``"row"``: ``tau * std`` of each rotated row (the project's default quantizer);
            ``"dim"``: ``tau * std`` of each rotated dimension over the fitted rows.
        tau: threshold factor, or ``"auto"``: chosen among :data:`TAU_GRID` on a validation split
            of the fitted rows (recall@10 of their exact cosine neighbours among the other rows).
        center: subtract the fitted rows' mean first (default: yes for a rotation other than
            ``"none"`` and an encoder, and for ``threshold="dim"``).
        itq_iters: Procrustes iterations of ``"itq"``.
        seed: random rotation / validation split seed.

    After :meth:`fit`: ``mean_`` (d,) or None, ``rotation_`` (d, dim) float32 or None (the
    encoder's projection), ``scale_`` (dim,) per-dimension thresholds or None, ``tau_``,
    ``validation_`` (tau -> recall, when ``tau="auto"``).
    """

    def __init__(self, rotation: Any = "none", dim: Optional[int] = None, *, threshold: str = "row",
                 tau: Union[float, str] = 0.3, center: Optional[bool] = None, itq_iters: int = 50, seed: int = 0):
        from .encoder import HDCEncoder

        self.encoder = rotation if isinstance(rotation, HDCEncoder) else None
        if self.encoder is None and (not isinstance(rotation, str) or rotation not in ROTATIONS):
            raise ValueError(f"rotation: expected one of {ROTATIONS} or an HDCEncoder, got {rotation!r}")
        self.rotation = "encoder" if self.encoder is not None else rotation
        if self.encoder is not None:
            if dim is not None and dim != self.encoder.dim:
                raise ValueError(f"dim: the encoder gives {self.encoder.dim} trits, got dim={dim}")
            dim = self.encoder.dim
        self.dim = None if dim is None else check_int(dim, "dim", 1)
        if threshold not in THRESHOLDS:
            raise ValueError(f"threshold: expected one of {THRESHOLDS}, got {threshold!r}")
        self.threshold = threshold
        if isinstance(tau, str):
            if tau != "auto":
                raise ValueError(f"tau: expected a non-negative number or 'auto', got {tau!r}")
        elif isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating, np.integer)):
            raise TypeError(f"tau: expected a number or 'auto', got {type(tau).__name__}")
        elif not (np.isfinite(tau) and tau >= 0):
            raise ValueError(f"tau: must be finite and non-negative, got {tau}")
        self.tau = tau
        # Per-dimension thresholds need centred dimensions; rotations are fitted on centred rows.
        self.center = ((self.rotation not in ("none", "encoder") or threshold == "dim") if center is None
                       else bool(center))
        self.itq_iters = check_int(itq_iters, "itq_iters", 0)
        self.seed = check_int(seed, "seed", 0)
        self.in_dim: Optional[int] = None
        self.mean_: Optional[np.ndarray] = None
        self.rotation_: Optional[np.ndarray] = None
        self.scale_: Optional[np.ndarray] = None
        self.tau_: Optional[float] = None
        self.validation_: Dict[float, float] = {}

    def __repr__(self) -> str:
        return (f"Quantizer(rotation={self.rotation!r}, dim={self.dim}, threshold={self.threshold!r}, "
                f"tau={self.tau!r}{'' if self.tau_ is None else f' -> {self.tau_}'})")

    @property
    def fitted(self) -> bool:
        return self.tau_ is not None

    @property
    def nbytes(self) -> int:
        """Bytes per packed code (2 bits a trit)."""
        if self.dim is None:
            raise ValueError("dim: unknown before fit")
        return (self.dim + 3) // 4

    # ------------------------------------------------------------------ fitting
    def fit(self, x: Any, *, validation: Union[int, float] = 0.1) -> "Quantizer":
        """Fits on float rows ``x`` (n, d): the mean, the rotation, the per-dimension thresholds and
        (``tau="auto"``) tau, on a validation split of ``validation`` rows (a fraction or a count,
        at most 1,000) held out from ``x``. Returns self."""
        x = _floats(x, "x")
        n, d = x.shape
        if n < 2:
            raise ValueError(f"x: fitting needs at least 2 rows, got {n}")
        dim = d if self.dim is None else self.dim
        if self.rotation == "none" and dim != d:
            raise ValueError(f"dim: rotation='none' keeps the {d} input dimensions, got dim={dim}")
        if self.rotation in ("pca", "itq") and dim > d:
            raise ValueError(f"dim: {self.rotation} keeps at most the {d} input dimensions, got dim={dim}")
        if self.encoder is not None and self.encoder.in_dim != d:
            raise ValueError(f"x: {d} values per row, the encoder takes {self.encoder.in_dim}")
        self.in_dim, self.dim = d, dim
        self.mean_ = x.mean(0, dtype=np.float64).astype(np.float32) if self.center else None
        xc = x - self.mean_ if self.mean_ is not None else x
        rng = np.random.default_rng(self.seed)
        if self.rotation == "none" or self.encoder is not None:
            self.rotation_ = None
        elif self.rotation == "random":
            if dim <= d:
                r, _ = np.linalg.qr(rng.standard_normal((d, d)))
                self.rotation_ = r[:, :dim].astype(np.float32)
            else:
                self.rotation_ = (rng.standard_normal((d, dim)) / np.sqrt(d)).astype(np.float32)
        else:
            _, _, vt = np.linalg.svd(xc.astype(np.float64), full_matrices=False)
            pca = vt[:dim].T  # (d, dim)
            if self.rotation == "itq":
                pca = pca @ self._itq(xc @ pca, rng)
            self.rotation_ = pca.astype(np.float32)
        if self.tau == "auto":
            self.tau_ = self._choose_tau(x, validation, rng)
        else:
            self.tau_ = float(self.tau)
        z = self.transform(x)
        self.scale_ = z.std(0).astype(np.float32) if self.threshold == "dim" else None
        return self

    def _itq(self, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Orthogonal (dim, dim) R that makes ternarize(v R) close to v R (alternating: codes, then
        the Procrustes rotation onto them)."""
        k = v.shape[1]
        r, _ = np.linalg.qr(rng.standard_normal((k, k)))
        tau = 0.3 if self.tau == "auto" else float(self.tau)
        for _ in range(self.itq_iters):
            z = v @ r
            b = self._ternarize(z, tau, z.std(0) if self.threshold == "dim" else None)
            u, _, wt = np.linalg.svd(v.T @ b.astype(np.float64))
            r = u @ wt
        return r

    def _choose_tau(self, x: np.ndarray, validation: Union[int, float], rng: np.random.Generator) -> float:
        n = x.shape[0]
        if isinstance(validation, float):
            if not 0 < validation < 1:
                raise ValueError(f"validation: a fraction must be in (0, 1), got {validation}")
            m = int(round(validation * n))
        else:
            m = check_int(validation, "validation", 1)
        m = min(m, 1000, n - 11)
        if m < 1:
            raise ValueError(f"x: tau='auto' needs more than 11 rows to hold out a validation split, got {n}")
        k = 10
        perm = rng.permutation(n)
        vq, vdb = x[perm[:m]], x[perm[m:]]
        nq = vq / np.maximum(np.linalg.norm(vq, axis=1, keepdims=True), 1e-12)
        ndb = vdb / np.maximum(np.linalg.norm(vdb, axis=1, keepdims=True), 1e-12)
        exact = np.argsort(-(nq @ ndb.T), axis=1, kind="stable")[:, :k]
        zq, zdb = self.transform(vq), self.transform(vdb)
        scale = zdb.std(0) if self.threshold == "dim" else None
        best, best_r = 0.3, -1.0
        for tau in TAU_GRID:
            tq = self._ternarize(zq, tau, scale).astype(np.float32)
            tdb = self._ternarize(zdb, tau, scale).astype(np.float32)
            s = tq @ tdb.T / np.sqrt(np.maximum(np.outer((tq != 0).sum(1), (tdb != 0).sum(1)), 1))
            got = np.argsort(-s, axis=1, kind="stable")[:, :k]
            r = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(got, exact)]))
            self.validation_[tau] = r
            if r > best_r + 1e-12:
                best, best_r = tau, r
        return best

    # ------------------------------------------------------------------ applying
    def _check_fitted(self) -> None:
        if not self.fitted:
            raise ValueError("quantizer: not fitted (call fit(x) first)")

    def transform(self, x: Any, *, name: str = "x") -> np.ndarray:
        """The rotated float rows ``(n, dim)`` float32 of ``x`` (n, d): what codes are thresholded
        from, and what float queries are scored with against the codes. ``name``: the argument
        name errors give."""
        if self.in_dim is None:
            raise ValueError("quantizer: not fitted (call fit(x) first)")
        x = _floats(x, name, self.in_dim)
        if self.mean_ is not None:
            x = x - self.mean_
        if self.encoder is not None:
            return np.ascontiguousarray(x @ np.asarray(self.encoder.projection_matrix(), np.float32), np.float32)
        if self.rotation_ is None:
            return np.ascontiguousarray(x, np.float32)
        return np.ascontiguousarray(x @ self.rotation_, np.float32)

    @staticmethod
    def _ternarize(z: np.ndarray, tau: float, scale: Optional[np.ndarray]) -> np.ndarray:
        thr = tau * (scale[None, :] if scale is not None else z.std(1, keepdims=True))
        return (np.sign(z) * (np.abs(z) > thr)).astype(np.int8)

    def encode(self, x: Any, packed: bool = True, *, name: str = "x") -> np.ndarray:
        """Codes of float rows ``x`` (n, d): packed uint8 ``(n, ceil(dim / 4))``, or int8 trits
        ``(n, dim)`` with ``packed=False``."""
        self._check_fitted()
        t = self._ternarize(self.transform(x, name=name), float(self.tau_), self.scale_)
        return pack_ternary(t) if packed else t

    __call__ = encode

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> Dict[str, Any]:
        """JSON-able state (arrays as base64 little-endian float32); :meth:`from_dict` inverts it.
        An encoder rotation is stored as the encoder's own ``to_dict``."""
        self._check_fitted()

        def arr(a: Optional[np.ndarray]) -> Optional[Dict[str, Any]]:
            if a is None:
                return None
            return {"shape": list(a.shape), "f32le": base64.b64encode(np.ascontiguousarray(a, "<f4")).decode()}

        return {"quantizer": 1, "rotation": self.rotation, "dim": self.dim, "in_dim": self.in_dim,
                "threshold": self.threshold, "tau": self.tau, "tau_": self.tau_, "center": self.center,
                "itq_iters": self.itq_iters, "seed": self.seed, "mean_": arr(self.mean_),
                "rotation_": arr(self.rotation_), "scale_": arr(self.scale_),
                "encoder": None if self.encoder is None else self.encoder.to_dict()}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Quantizer":
        """Rebuilds a fitted quantizer from :meth:`to_dict`. Raises ValueError on a bad record."""
        from .encoder import HDCEncoder

        if not isinstance(d, dict) or d.get("quantizer") != 1:
            raise ValueError("quantizer: not a ternhd quantizer record (version 1)")

        def arr(v: Any, name: str) -> Optional[np.ndarray]:
            if v is None:
                return None
            try:
                a = np.frombuffer(base64.b64decode(v["f32le"], validate=True), "<f4").astype(np.float32)
                return a.reshape(v["shape"])
            except Exception as e:
                raise ValueError(f"quantizer: field {name} is corrupt ({e})") from None

        try:
            rot = HDCEncoder.from_dict(d["encoder"]) if d.get("encoder") is not None else d["rotation"]
            q = cls(rot, d["dim"], threshold=d["threshold"], tau=d["tau"], center=d["center"],
                    itq_iters=d["itq_iters"], seed=d["seed"])
            q.in_dim, q.tau_ = int(d["in_dim"]), float(d["tau_"])
        except (KeyError, TypeError) as e:
            raise ValueError(f"quantizer: record is missing or has a bad field ({e})") from None
        q.mean_, q.rotation_, q.scale_ = arr(d["mean_"], "mean_"), arr(d["rotation_"], "rotation_"), arr(
            d["scale_"], "scale_")
        shapes: Sequence = [(q.mean_, (q.in_dim,)), (q.rotation_, (q.in_dim, q.dim)), (q.scale_, (q.dim,))]
        for a, want in shapes:
            if a is not None and a.shape != want:
                raise ValueError(f"quantizer: an array has shape {a.shape}, expected {want}")
        return q
