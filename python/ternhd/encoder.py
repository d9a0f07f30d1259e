"""HDC encoder: random projection followed by ternary quantization and 2-bit packing, fused.

``h = x @ P`` with ``P`` an ``(in_dim, dim)`` matrix of unit-norm columns (see
:mod:`ternhd.projections` for the three generators and their exact recipes), then per element
``+1 if h > thr, -1 if h < -thr, else 0`` (the modes of :func:`ternhd.quantize`), packed 4 trits per
byte.

The CPU path never holds the ``N x dim`` float matrix: ``"gaussian"`` rows are projected in blocks
by a BLAS (:mod:`ternhd.gemm`), and the native epilogue (``_core.encode_epilogue``) thresholds,
quantizes and packs each block. ``"srht"`` (fast Walsh-Hadamard transforms) and ``"sparse"``
(sparse column sums) run their projection natively and feed the same epilogue. CUDA tensors go to
the fused Triton encoder (``ternhd.kernels.encode``) through the device seam.

Threshold modes and passes: ``"std"``, a fixed threshold and ``sparsity=s`` are per row and need one
pass (the exact per-row ``round(s * dim)``-th smallest ``|h|`` is selected inside the block).
``threshold="batch"`` (``tau * std`` of all of ``x @ P``) needs one statistic over the whole input
first: it is computed exactly in float64 from the Gram identity (``sum x``, ``sum x^T x``, and
``G = P P^T``), a cheap first pass over ``x`` (``in_dim^2`` per row, no projection); then the encode
pass runs. With an iterable of batches, each batch is its own "batch" (as a notebook calling the
encoder once per batch would do).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, Iterable, Iterator, Optional, Tuple, Union

import numpy as np

from . import _core, _cpu, gemm
from ._arrays import as_array, check_int, is_torch, to_numpy
from ._device import backend
from .projections import (
    PROJECTIONS,
    check_density,
    gaussian_projection,
    sparse_projection,
    sparse_spec,
    srht_projection,
    srht_spec,
)
from .quantize import check_mode

__all__ = ["HDCEncoder", "gaussian_projection"]

_FORMAT = "ternhd.HDCEncoder"
_FORMAT_VERSION = 1


class HDCEncoder:
    """Projects ``in_dim``-wide embeddings to ``dim`` ternary trits (2-bit packed by default).

    Args:
        in_dim: width of the input embeddings (>= 1).
        dim: number of trits per output vector (>= 1).
        tau: threshold factor for ``threshold="std"`` / ``"batch"``.
        threshold: ``"std"`` (``tau * std`` of each projected row, the default), ``"batch"``
            (``tau * std`` over all projected values of one call) or a fixed non-negative number.
        sparsity: instead of ``tau``: the fraction of zeros per row, in [0, 1] (the threshold is the
            ``round(sparsity * dim)``-th smallest ``|h|`` of the row; ties can add zeros).
        seed: projection seed (>= 0). The same arguments give the same matrix everywhere.
        projection: ``"gaussian"`` (the paper's), ``"sparse"`` or ``"srht"`` (see
            :mod:`ternhd.projections`).
        density: fraction of non-zeros per column of the ``"sparse"`` projection (default
            ``1/sqrt(in_dim)``); only for ``projection="sparse"``.

    Raises:
        ValueError / TypeError: bad arguments (the message starts with the argument's name).
    """

    _onednn: Any = None

    def __init__(self, in_dim: int, dim: int = 4096, tau: float = 0.3, threshold: Union[str, float] = "std",
                 sparsity: Optional[float] = None, seed: int = 0, projection: str = "gaussian",
                 density: Optional[float] = None):
        self.in_dim = check_int(in_dim, "in_dim", 1)
        self.dim = check_int(dim, "dim", 1)
        self.seed = check_int(seed, "seed", 0)
        check_mode(tau, threshold, sparsity)
        if not isinstance(projection, str) or projection not in PROJECTIONS:
            raise ValueError(f"projection: expected one of {PROJECTIONS}, got {projection!r}")
        if density is not None and projection != "sparse":
            raise ValueError("density: only applies to projection='sparse'")
        self.density = check_density(density)
        self.tau = float(tau)
        self.threshold = threshold if isinstance(threshold, str) else float(threshold)
        self.sparsity = None if sparsity is None else float(sparsity)
        self.projection = projection
        self._p: Optional[np.ndarray] = None
        self._spec: Any = None
        self._gram: Optional[Tuple[np.ndarray, np.ndarray]] = None
        self._gpu_proj: Dict[str, Any] = {}

    # ------------------------------------------------------------------------------ parameters
    def __repr__(self) -> str:
        mode = (f"sparsity={self.sparsity}" if self.sparsity is not None
                else f"tau={self.tau}, threshold={self.threshold!r}")
        extra = f", density={self.density}" if self.density is not None else ""
        return (f"HDCEncoder(in_dim={self.in_dim}, dim={self.dim}, {mode}, seed={self.seed}, "
                f"projection={self.projection!r}{extra})")

    def projection_matrix(self) -> np.ndarray:
        """The projection ``P``: float32 ``(in_dim, dim)``, unit-norm columns (materialized for every
        kind; ``encode`` of the structured kinds never builds it). A fresh copy on each call: changing
        it does not change the encoder."""
        return self._matrix().copy()

    def _matrix(self) -> np.ndarray:
        """The cached matrix itself (not to be modified)."""
        if self._p is None:
            if self.projection == "gaussian":
                self._p = gaussian_projection(self.in_dim, self.dim, self.seed)
            elif self.projection == "sparse":
                self._p = sparse_projection(self.in_dim, self.dim, self.seed, self.density)
            else:
                self._p = srht_projection(self.in_dim, self.dim, self.seed)
        return self._p

    def _structured(self):
        if self._spec is None:
            if self.projection == "sparse":
                self._spec = sparse_spec(self.in_dim, self.dim, self.seed, self.density)
            else:
                self._spec = srht_spec(self.in_dim, self.dim, self.seed)
        return self._spec

    def gram_stats(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(G, m)``: float64 ``G = P P^T`` ``(in_dim, in_dim)`` and ``m = P 1 / dim`` ``(in_dim,)``,
        so that for ``h = x P``: ``mean(h) = x . m`` and ``mean(h^2) = x G x^T / dim``."""
        if self._gram is None:
            p = self._matrix().astype(np.float64)
            self._gram = (p @ p.T, p.sum(axis=1) / self.dim)
        return self._gram

    def gram_row_std(self, x: Any) -> np.ndarray:
        """Per-row population std of ``x @ P`` from the Gram identity, without the product:
        ``var = x G x^T / dim - (x . m)^2``. float64 ``(N,)`` for ``x`` of shape ``(N, in_dim)``."""
        arr, _ = to_numpy(x, "x")
        arr = self._check_x(arr).astype(np.float64)
        if not np.isfinite(arr).all():
            raise ValueError("x: contains NaN or Inf")
        g, m = self.gram_stats()
        var = np.einsum("ni,ni->n", arr @ g, arr) / self.dim - (arr @ m) ** 2
        return np.sqrt(np.maximum(var, 0.0))

    # ------------------------------------------------------------------------------ encoding
    def encode(self, x: Any, packed: bool = True, batch_size: Optional[int] = None, progress: bool = False) -> Any:
        """Encode embeddings.

        Args:
            x: float ``(N, in_dim)`` numpy array or CPU torch tensor (one vector: ``x[None]``)
                (float16/float64/integers are converted to float32 block by block); or an iterable
                of such 2-D batches (list/tuple of arrays, generator, data loader), encoded one
                after the other and concatenated.
            packed: return packed uint8 ``(N, ceil(dim/4))`` (default) or int8 trits ``(N, dim)``.
            batch_size: rows per block (a memory/speed knob; results do not depend on it).
            progress: show a tqdm progress bar (rows), if tqdm is installed.

        Returns:
            packed uint8 or int8 trits, numpy for numpy input, torch for torch input.

        Raises:
            ValueError: wrong width, NaN/Inf, bad ``batch_size``. TypeError: non-numeric input.

        A CUDA tensor goes to the Triton encoder (``ternhd.kernels.dispatch.encode``) with this
        encoder's matrix; ``batch_size`` and ``progress`` apply to the CPU path only.
        """
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", 1)
        if _is_batches(x):
            parts, wrap = [], None
            for out, w in self._encode_iter(x, packed, batch_size, progress):
                parts.append(out)
                wrap = wrap or w
            width = (self.dim + 3) // 4 if packed else self.dim
            res = np.concatenate(parts) if parts else np.zeros((0, width), np.uint8 if packed else np.int8)
            return (wrap or _identity)(res)
        x = as_array(x, "x")
        impl = backend(x=x)
        if impl is not _cpu:
            return self._encode_device(impl, x, packed)
        arr, wrap = self._input(x)
        return wrap(self._encode_array(arr, packed, batch_size, _bar(progress, len(arr))))

    def encode_batches(self, batches: Iterable[Any], packed: bool = True, batch_size: Optional[int] = None,
                       progress: bool = False) -> Iterator[Any]:
        """Streaming form of :meth:`encode`: yields the encoding of each batch as it arrives, so
        neither the inputs nor the outputs need to fit in memory together."""
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", 1)
        for out, wrap in self._encode_iter(batches, packed, batch_size, progress):
            yield wrap(out)

    def _encode_iter(self, batches, packed, batch_size, progress):
        if isinstance(batches, (str, bytes)) or not hasattr(batches, "__iter__"):
            raise TypeError(f"batches: expected an iterable of arrays, got {type(batches).__name__}")
        total = len(batches) if hasattr(batches, "__len__") else None
        bar = _bar(progress, total, unit="batch")
        try:
            for b in batches:
                arr, wrap = self._input(b, "batch")
                if arr.ndim != 2:
                    raise ValueError(f"batch: expected shape (N, {self.in_dim}), got {arr.shape}")
                yield self._encode_array(arr, packed, batch_size, None), wrap
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()

    def _encode_device(self, impl: Any, x: Any, packed: bool) -> Any:
        """A device tensor: the fused encoder of the device's implementation with this encoder's
        matrix (prepared once per device and cached)."""
        if x.ndim != 2 or x.shape[-1] != self.in_dim:
            raise ValueError(f"x: expected a 2-D array of shape (N, {self.in_dim}), got shape {tuple(x.shape)}")
        key = str(x.device)
        if key not in self._gpu_proj:
            import torch

            # float32 operands, so GPU codes match the CPU encoder's up to rounding near the threshold
            self._gpu_proj[key] = impl.prepare_projection(self._matrix(), dtype=torch.float32, device=x.device)
        return impl.encode(x, self._gpu_proj[key], tau=self.tau, threshold=self.threshold, sparsity=self.sparsity,
                           packed=packed)

    def _input(self, x: Any, name: str = "x") -> Tuple[np.ndarray, Any]:
        if backend(**{name: x}) is not _cpu:
            raise TypeError(f"{name}: CUDA batches inside an iterable are not supported; pass CUDA tensors directly")
        arr, wrap = to_numpy(x, name)
        return self._check_x(arr, name), wrap

    def _check_x(self, arr: np.ndarray, name: str = "x") -> np.ndarray:
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"{name}: expected real-valued embeddings, got dtype {arr.dtype}")
        if arr.ndim != 2 or arr.shape[-1] != self.in_dim:
            raise ValueError(f"{name}: expected a 2-D array of shape (N, {self.in_dim}), got shape {arr.shape}")
        return arr

    def _mode(self, arr: np.ndarray, batch_size: int) -> Tuple["_core.ThresholdMode", float, int]:
        """(mode, thr, kz) for the native epilogue."""
        if self.sparsity is not None:
            return _core.ThresholdMode.sparsity, 0.0, int(round(self.sparsity * self.dim))
        if self.threshold == "std":
            return _core.ThresholdMode.std, 0.0, 0
        if self.threshold == "batch":
            return _core.ThresholdMode.fixed, self.tau * self._batch_std(arr, batch_size), 0
        return _core.ThresholdMode.fixed, float(self.threshold), 0

    def _batch_std(self, arr: np.ndarray, batch_size: int) -> float:
        """std of all of ``arr @ P`` (float64, Gram identity: one pass over ``arr``, no projection)."""
        n = arr.shape[0]
        if n == 0:
            return 0.0
        g, m = self.gram_stats()
        s1 = np.zeros(self.in_dim)
        m2 = np.zeros((self.in_dim, self.in_dim))
        for r0 in range(0, n, batch_size):
            xb = np.asarray(arr[r0:r0 + batch_size], dtype=np.float64)
            if not np.isfinite(xb).all():
                raise ValueError("x: contains NaN or Inf")
            s1 += xb.sum(axis=0)
            m2 += xb.T @ xb
        total = float(n) * self.dim
        mean = float(s1 @ m) / n
        var = float(np.sum(g * m2)) / total - mean * mean
        return float(np.sqrt(max(var, 0.0)))

    def _encode_array(self, arr: np.ndarray, packed: bool, batch_size: Optional[int], bar) -> np.ndarray:
        n = arr.shape[0]
        if batch_size is None:
            batch_size = gemm.block_rows(gemm.gemm_backend(), self.dim) if self.projection == "gaussian" else 1024
        out = np.empty((n, (self.dim + 3) // 4) if packed else (n, self.dim), np.uint8 if packed else np.int8)
        if n == 0:
            return out
        mode, thr, kz = self._mode(arr, batch_size)
        if self.projection == "gaussian":
            run = self._dense_runner(min(batch_size, n), mode, thr, kz)
        else:
            run = self._structured_runner(mode, thr, kz)
        try:
            for r0 in range(0, n, batch_size):
                xb = np.ascontiguousarray(arr[r0:r0 + batch_size], dtype=np.float32)
                if not np.isfinite(xb).all():
                    raise ValueError("x: contains NaN or Inf")
                run(xb, out[r0:r0 + batch_size])
                if bar is not None:
                    bar.update(len(xb))
        finally:
            if bar is not None:
                bar.close()
        return out

    def _dense_runner(self, rows: int, mode: "_core.ThresholdMode", thr: float, kz: int):
        dim, tau = self.dim, self.tau
        name = gemm.gemm_backend()
        if name == "onednn" and self._onednn is None:
            self._onednn = gemm.onednn_linear(self._matrix())  # built once per encoder
        product = gemm.block_product(self._matrix(), rows, name, self._onednn)

        def run(xb: np.ndarray, ob: np.ndarray) -> None:
            _core.encode_epilogue(product(xb), dim, ob, mode, tau, thr, kz)
        return run

    def _structured_runner(self, mode: "_core.ThresholdMode", thr: float, kz: int):
        spec = self._structured()
        tau = self.tau
        if self.projection == "srht":
            def run(xb: np.ndarray, ob: np.ndarray) -> None:
                _core.srht_encode(xb, spec.scaled_signs, spec.select, spec.size, ob, mode, tau, thr, kz)
        else:
            def run(xb: np.ndarray, ob: np.ndarray) -> None:
                _core.sparse_encode(xb, spec.rows, spec.values, spec.in_dim, ob, mode, tau, thr, kz)
        return run

    # ------------------------------------------------------------------------------ persistence
    def to_dict(self, checksum: bool = True) -> Dict[str, Any]:
        """JSON-ready parameters (the matrix is regenerated from them); with ``checksum``, the
        SHA-256 of the float32 matrix so that :meth:`from_dict` can verify the rebuild."""
        d: Dict[str, Any] = {
            "format": _FORMAT, "version": _FORMAT_VERSION, "in_dim": self.in_dim, "dim": self.dim,
            "tau": self.tau, "threshold": self.threshold, "sparsity": self.sparsity, "seed": self.seed,
            "projection": self.projection, "density": self.density,
        }
        if checksum:
            d["projection_sha256"] = self.projection_sha256()
        return d

    def projection_sha256(self) -> str:
        """Hex SHA-256 of the float32 projection matrix bytes (C order, little-endian)."""
        return hashlib.sha256(np.ascontiguousarray(self._matrix(), dtype="<f4").tobytes()).hexdigest()

    @classmethod
    def from_dict(cls, d: Dict[str, Any], verify: bool = True) -> "HDCEncoder":
        """Rebuild from :meth:`to_dict` output; with ``verify`` (and a stored checksum) a
        regenerated matrix that differs (another generator) raises ``ValueError``."""
        if not isinstance(d, dict):
            raise TypeError(f"d: expected a dict, got {type(d).__name__}")
        if d.get("format") != _FORMAT:
            raise ValueError(f"d: not an {_FORMAT} description (format={d.get('format')!r})")
        if d.get("version") != _FORMAT_VERSION:
            raise ValueError(f"d: unsupported version {d.get('version')!r} (this ternhd reads {_FORMAT_VERSION})")
        try:
            enc = cls(d["in_dim"], d["dim"], tau=d["tau"], threshold=d["threshold"], sparsity=d["sparsity"],
                      seed=d["seed"], projection=d["projection"], density=d.get("density"))
        except KeyError as exc:
            raise ValueError(f"d: missing field {exc}") from None
        if verify and d.get("projection_sha256") is not None and enc.projection_sha256() != d["projection_sha256"]:
            raise ValueError("d: the regenerated projection matrix differs from the saved one "
                             "(different generator); pass verify=False to accept it")
        return enc

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the parameters (and the matrix checksum) as JSON."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=1)

    @classmethod
    def load(cls, path: Union[str, os.PathLike], verify: bool = True) -> "HDCEncoder":
        """Read an encoder written by :meth:`save` (see :meth:`from_dict` for ``verify``)."""
        with open(path, encoding="utf-8") as f:
            try:
                d = json.load(f)
            except json.JSONDecodeError as exc:
                raise ValueError(f"path: not a JSON encoder description ({exc})") from None
        return cls.from_dict(d, verify=verify)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HDCEncoder):
            return NotImplemented
        return self.to_dict(checksum=False) == other.to_dict(checksum=False)

    __hash__ = None  # type: ignore[assignment]


def _identity(r: np.ndarray) -> np.ndarray:
    return r


def _is_batches(x: Any) -> bool:
    """An iterable of batches: a list/tuple of arrays/tensors, or any non-array iterable."""
    if isinstance(x, np.ndarray) or is_torch(x) or hasattr(x, "__array__"):
        return False
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all((isinstance(b, np.ndarray) or is_torch(b)) and b.ndim == 2 for b in x)
    return hasattr(x, "__iter__") and not isinstance(x, (str, bytes, dict))


def _bar(progress: bool, total: Optional[int], unit: str = "row"):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is optional
        import warnings

        warnings.warn("progress: tqdm is not installed; no progress bar", RuntimeWarning, stacklevel=3)
        return None
    return tqdm(total=total, unit=unit, desc="encode")
