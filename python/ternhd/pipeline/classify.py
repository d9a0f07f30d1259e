"""Classifiers on HDC vectors (2-bit packed) and on float embeddings.

* :class:`LogRegClassifier` — scikit-learn logistic regression; input packed uint8 ``(N, ceil(D/4))``
  (unpacked to ``{-1, 0, 1}`` floats) or float ``(N, d)`` (standardized). ``C`` is chosen on a
  validation split by :meth:`fit_select`, then the model is refitted on train + validation.
* :class:`CentroidClassifier` — associative memory: one prototype per class = the class's
  vectors bundled (summed) and re-quantized to ternary, kept packed; prediction = the most
  cosine-similar prototype, found with :func:`ternhd.topk` on the packed rows.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ..knowledge import class_prototypes
from ..packing import unpack_ternary
from ..similarity import topk

__all__ = ["LogRegClassifier", "CentroidClassifier", "accuracy", "C_GRID"]

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)


def accuracy(pred: Any, y: Any) -> float:
    """Fraction of equal entries."""
    pred, y = np.asarray(pred), np.asarray(y)
    if pred.shape != y.shape:
        raise ValueError(f"pred: shape {pred.shape} differs from y's {y.shape}")
    return float((pred == y).mean()) if len(y) else float("nan")


def _blas(n: Optional[int]):
    """Limit BLAS / OpenMP threads for a block (None = leave as is). The gradient of logistic regression
    is two thin matrix-vector products per iteration; with the cores shared, one BLAS thread was
    measured ~40x faster than the default two on the 2-core development machine."""
    import contextlib

    if not n:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(n)


def _labels(y: Any, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"y: expected shape ({n},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"y: expected integer labels, got {y.dtype}")
    return y.astype(np.int64)


class LogRegClassifier:
    """Logistic regression on packed HDC rows (``dim`` given) or float rows (``dim=None``)."""

    def __init__(self, dim: Optional[int] = None, C: float = 0.1, max_iter: int = 2000, seed: int = 0,
                 blas_threads: Optional[int] = 1):
        self.dim, self.C, self.max_iter, self.seed, self.blas_threads = dim, C, max_iter, seed, blas_threads
        self.val_scores: dict = {}

    def _features(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"x: expected a 2-D array, got shape {x.shape}")
        if self.dim is not None:
            if x.dtype != np.uint8:
                raise TypeError(f"x: expected packed uint8 rows, got {x.dtype}")
            return unpack_ternary(x, self.dim).astype(np.float32)
        return x.astype(np.float32)

    def _model(self, C: float):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        lr = LogisticRegression(C=C, max_iter=self.max_iter, random_state=self.seed, warm_start=True)
        return lr if self.dim is not None else make_pipeline(StandardScaler(), lr)

    @staticmethod
    def _set_C(model, C: float) -> None:
        (model[-1] if hasattr(model, "steps") else model).C = C

    def fit(self, x: Any, y: Any) -> "LogRegClassifier":
        f = self._features(x)
        with _blas(self.blas_threads):
            self.model_ = self._model(self.C).fit(f, _labels(y, len(f)))
        return self

    def fit_select(self, x: Any, y: Any, x_val: Any, y_val: Any, grid: Sequence[float] = C_GRID) -> "LogRegClassifier":
        """Choose ``C`` from ``grid`` by validation accuracy (ties -> smaller C), refit on train + val.

        The grid is walked from small to large C with warm starts (each fit starts from the previous
        solution), which gives the same optima in a fraction of the iterations.
        """
        f, fv = self._features(x), self._features(x_val)
        y, yv = _labels(y, len(f)), _labels(y_val, len(fv))
        grid = sorted(float(c) for c in grid)
        if not grid or min(grid) <= 0:
            raise ValueError(f"grid: expected positive C values, got {grid}")
        self.val_scores = {}
        with _blas(self.blas_threads):
            m = self._model(grid[0])
            for c in grid:
                self._set_C(m, c)
                m.fit(f, y)
                self.val_scores[c] = accuracy(m.predict(fv), yv)
            self.C = max(grid, key=lambda c: (self.val_scores[c], -c))
            self.model_ = self._model(self.C).fit(np.concatenate([f, fv]), np.concatenate([y, yv]))
        return self

    def predict(self, x: Any) -> np.ndarray:
        return self.model_.predict(self._features(x))

    def score(self, x: Any, y: Any) -> float:
        return accuracy(self.predict(x), y)


class CentroidClassifier:
    """Associative-memory classifier on packed ternary rows of ``dim`` trits.

    Args:
        dim: trits per row. tau: threshold factor when re-quantizing the bundled class sums.
    """

    def __init__(self, dim: int, tau: float = 0.3):
        self.dim, self.tau = dim, tau

    def fit(self, x: Any, y: Any) -> "CentroidClassifier":
        x = np.asarray(x)
        if x.ndim != 2 or x.dtype != np.uint8:
            raise TypeError(f"x: expected packed uint8 rows (N, B), got {x.dtype} {x.shape}")
        y = _labels(y, len(x))
        self.classes_ = np.unique(y)
        ids = np.searchsorted(self.classes_, y)
        self.prototypes_ = class_prototypes(x, ids, self.dim, len(self.classes_), tau=self.tau)
        return self

    def fit_select(self, x: Any, y: Any, x_val: Any, y_val: Any, grid: Sequence[float] = (0.0, 0.3, 0.6)):
        """Choose ``tau`` for the prototypes by validation accuracy, refit on train + val."""
        self.val_scores = {}
        for t in grid:
            self.tau = t
            self.fit(x, y)
            self.val_scores[t] = self.score(x_val, y_val)
        self.tau = max(grid, key=lambda t: (self.val_scores[t], -t))
        return self.fit(np.concatenate([np.asarray(x), np.asarray(x_val)]), np.concatenate([y, y_val]))

    def predict(self, x: Any) -> np.ndarray:
        _, idx = topk(np.ascontiguousarray(x), self.prototypes_, 1, metric="cosine")
        return self.classes_[np.asarray(idx)[:, 0]]

    def score(self, x: Any, y: Any) -> float:
        return accuracy(self.predict(x), y)
