"""HDC encoder: random projection followed by ternary quantization (and 2-bit packing).

``h = x @ P`` with ``P`` an ``(in_dim, dim)`` matrix of unit-norm columns. The gaussian matrix is
generated in exactly one way on every platform and backend: ``numpy.random.default_rng(seed)``
(PCG64), ``standard_normal((in_dim, dim))`` in float64, each column divided by its L2 norm, then cast
to float32.
"""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from ._arrays import check_int, to_numpy
from .quantize import _check_mode, quantize

__all__ = ["HDCEncoder", "gaussian_projection"]


def gaussian_projection(in_dim: int, dim: int, seed: int = 0) -> np.ndarray:
    """The paper's projection: float32 ``(in_dim, dim)``, unit-norm columns, from PCG64(seed)."""
    rng = np.random.default_rng(seed)
    p = rng.standard_normal((in_dim, dim))
    p /= np.linalg.norm(p, axis=0, keepdims=True)
    return p.astype(np.float32)


class HDCEncoder:
    """Projects ``in_dim``-wide embeddings to ``dim`` ternary trits.

    Args:
        in_dim: width of the input embeddings.
        dim: number of trits per output vector.
        tau, threshold, sparsity: the quantization mode (see :func:`ternhd.quantize`).
        seed: projection seed.
        projection: ``"gaussian"`` (the paper's).
    """

    def __init__(self, in_dim: int, dim: int = 4096, tau: float = 0.3, threshold: Union[str, float] = "std",
                 sparsity: Optional[float] = None, seed: int = 0, projection: str = "gaussian"):
        self.in_dim = check_int(in_dim, "in_dim", 1)
        self.dim = check_int(dim, "dim", 1)
        self.seed = check_int(seed, "seed", 0)
        _check_mode(tau, threshold, sparsity)
        if projection != "gaussian":
            raise ValueError(f"projection: expected 'gaussian', got {projection!r}")
        self.tau, self.threshold, self.sparsity, self.projection = tau, threshold, sparsity, projection
        self._p: Optional[np.ndarray] = None

    def projection_matrix(self) -> np.ndarray:
        """float32 ``(in_dim, dim)``."""
        if self._p is None:
            self._p = gaussian_projection(self.in_dim, self.dim, self.seed)
        return self._p

    def encode(self, x: Any, packed: bool = True) -> Any:
        """float ``(N, in_dim)`` -> packed uint8 ``(N, ceil(dim/4))`` or int8 ``(N, dim)``."""
        arr, wrap = to_numpy(x, "x")
        if arr.ndim != 2 or arr.shape[1] != self.in_dim:
            raise ValueError(f"x: expected shape (N, {self.in_dim}), got {arr.shape}")
        h = np.asarray(arr, dtype=np.float32) @ self.projection_matrix()
        return wrap(quantize(h, tau=self.tau, threshold=self.threshold, sparsity=self.sparsity, packed=packed))
