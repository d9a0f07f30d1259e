"""A packed ternary HDC / VSA toolkit with names and semantics close to torchhd's MAP model.

Every hypervector here is a row of 2-bit packed trits (docs/FORMAT.md, section 1): uint8
``(..., ceil(dim / 4))``, 16x smaller than torchhd's float32 MAP vectors and 4x smaller than int8.
The operations are the public kernels (:func:`ternhd.bind`, :func:`ternhd.bundle`,
:func:`ternhd.permute`, :func:`ternhd.topk`, :class:`ternhd.Index`), so numpy arrays and CPU
tensors run on the C++ core and CUDA tensors on the Triton kernels, with the same results.

* basis sets: :func:`random`, :func:`level`, :func:`circular`;
* algebra (torchhd names): :func:`bind`, :func:`bundle`, :func:`multiset`, :func:`permute`,
  :func:`hard_quantize`, :func:`cosine_similarity`, :func:`dot_similarity`;
* encodings: :func:`ngrams`, :func:`bundle_sequence` (alias :func:`sequence`),
  :func:`bind_sequence`, :func:`hash_table`, :func:`cleanup`;
* :class:`ItemMemory`: named items, look-up, n-gram encoding of symbol sequences, cleanup (nearest
  item through :class:`ternhd.Index`), save / load through the packet format;
* classifiers, scikit-learn style (``fit``, ``predict``, ``score``): :class:`Centroid` and the
  adaptive :class:`AdaptHD` (retraining on misclassified rows).

On the unpacked trits, :func:`bind`, :func:`multiset`, :func:`permute`, :func:`ngrams`,
:func:`hash_table` and :func:`bundle_sequence` equal torchhd's MAP functions exactly (tests compare
them with torchhd itself). The differences from torchhd are listed in docs/VSA.md: packed rows
instead of tensor subclasses, ``dim`` passed where a shift needs it, ternary (not +-1) bundles with
ties to 0, seeded generation, and exact (not sampled) level / circular correlations.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, Hashable, Iterable, List, Optional, Sequence, Union

import numpy as np

from . import packet as _packet
from ._arrays import as_array, check_int, dtype_name, is_torch
from .algebra import bind as _bind
from .algebra import bundle as _bundle
from .algebra import permute as _permute
from .packing import pack_ternary, unpack_ternary
from .quantize import quantize
from .similarity import Index, pairwise, topk

__all__ = [
    "random", "level", "circular", "empty", "bind", "bundle", "multiset", "permute", "hard_quantize",
    "cosine_similarity", "dot_similarity", "hamming_distance", "ngrams", "bundle_sequence", "sequence",
    "bind_sequence", "hash_table", "cleanup", "ItemMemory", "Centroid", "AdaptHD", "memory_per_vector",
]

SeedLike = Union[None, int, Sequence[int], np.random.Generator]


# ----------------------------------------------------------------------------- helpers
def _rng(seed: SeedLike) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not isinstance(seed, (int, np.integer, list, tuple)) or isinstance(seed, bool):
        raise TypeError(f"seed: expected None, an integer, a sequence of integers or a numpy Generator, "
                        f"got {type(seed).__name__}")
    return np.random.default_rng(seed)


def _check_sparsity(sparsity: Any) -> float:
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float, np.integer, np.floating)):
        raise TypeError(f"sparsity: expected a number in [0, 1), got {type(sparsity).__name__}")
    s = float(sparsity)
    if not (0.0 <= s < 1.0):
        raise ValueError(f"sparsity: must be in [0, 1) (the fraction of zero trits), got {sparsity}")
    return s


def _to_device(packed: np.ndarray, device: Any) -> Any:
    """numpy for ``device=None``; a torch tensor on ``device`` otherwise."""
    if device is None:
        return packed
    import torch

    return torch.from_numpy(packed).to(device)


def _dim_of(x: Any, dim: Optional[int], name: str = "input") -> int:
    width = int(x.shape[-1])
    if dim is None:
        return 4 * width
    dim = check_int(dim, "dim", 1)
    if (dim + 3) // 4 != width:
        raise ValueError(f"{name}: rows have {width} bytes but dim={dim} needs {(dim + 3) // 4}")
    return dim


def _packed(x: Any, name: str, min_ndim: int = 1) -> Any:
    x = as_array(x, name)
    if dtype_name(x) != "uint8":
        raise TypeError(f"{name}: packed hypervectors must be uint8 (see ternhd.pack_ternary), got {dtype_name(x)}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimensions (..., bytes), got shape {tuple(x.shape)}")
    return x


def _pad_mask(dim: int) -> int:
    r = dim % 4
    return 0xFF if r == 0 else (0xFF << (8 - 2 * r)) & 0xFF


def _index_rows(x: Any, idx: np.ndarray) -> Any:
    """``x[idx]`` for numpy arrays and torch tensors on any device."""
    if is_torch(x):
        import torch

        return x[torch.as_tensor(np.asarray(idx, np.int64), device=x.device)]
    return x[idx]


def _host(x: Any) -> np.ndarray:
    if is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _signs_to_trits(signs: np.ndarray, zero: Optional[np.ndarray]) -> np.ndarray:
    t = np.where(signs, np.int8(-1), np.int8(1))
    if zero is not None:
        t[zero] = 0
    return t


# ----------------------------------------------------------------------------- basis sets
def random(num_vectors: int, dimensions: int, seed: SeedLike = None, *, sparsity: float = 0.0,
           device: Any = None) -> Any:
    """``num_vectors`` random packed hypervectors of ``dimensions`` trits (torchhd's ``random``).

    With ``sparsity=0`` (default) every trit is +1 or -1 with probability 1/2 each (torchhd's MAP
    vectors, packed); with ``sparsity=s`` exactly ``round(s * dimensions)`` trits per row are 0, at
    random positions, and the others are +-1.

    Args:
        num_vectors: rows (>= 0). dimensions: trits per row (>= 1).
        seed: None (fresh entropy), an integer (or sequence of integers) for
            ``numpy.random.default_rng``, or a ``numpy.random.Generator``. The same seed gives the
            same vectors on every device.
        sparsity: fraction of zero trits, in [0, 1).
        device: None returns a numpy array; ``"cpu"``, ``"cuda"`` or a ``torch.device`` a tensor there.

    Returns:
        packed uint8 ``(num_vectors, ceil(dimensions / 4))``, padding trits 0.
    """
    n = check_int(num_vectors, "num_vectors", 0)
    dim = check_int(dimensions, "dimensions", 1)
    s = _check_sparsity(sparsity)
    rng = _rng(seed)
    width = (dim + 3) // 4
    k = int(round(s * dim))
    if k == 0:
        # One random bit per trit: code 01 (+1) where the bit is set, 10 (-1) where it is clear.
        raw = np.frombuffer(rng.bytes(n * width), np.uint8).reshape(n, width)
        m = raw & np.uint8(0x55)
        out = m | ((m ^ np.uint8(0x55)) << np.uint8(1))
        if dim % 4:
            out[:, -1] &= np.uint8(_pad_mask(dim))
        return _to_device(out, device)
    signs = rng.integers(0, 2, (n, dim), dtype=np.uint8).astype(bool)
    keys = rng.random((n, dim), dtype=np.float32)
    zero_pos = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < dim else np.broadcast_to(np.arange(dim), (n, dim))
    zero = np.zeros((n, dim), bool)
    np.put_along_axis(zero, zero_pos, True, axis=1)
    return _to_device(pack_ternary(_signs_to_trits(signs, zero)), device)


def empty(num_vectors: int, dimensions: int, *, device: Any = None) -> Any:
    """``num_vectors`` zero vectors (torchhd's ``empty`` for MAP: the bundling identity)."""
    n = check_int(num_vectors, "num_vectors", 0)
    dim = check_int(dimensions, "dimensions", 1)
    return _to_device(np.zeros((n, (dim + 3) // 4), np.uint8), device)


def _flip_basis(num_vectors: int, dimensions: int, seed: SeedLike, sparsity: float, device: Any,
                circular: bool) -> Any:
    n = check_int(num_vectors, "num_vectors", 2)
    dim = check_int(dimensions, "dimensions", 1)
    s = _check_sparsity(sparsity)
    rng = _rng(seed)
    base = unpack_ternary(random(1, dim, rng, sparsity=s), dim)[0]
    nz = np.flatnonzero(base)
    order = rng.permutation(nz)  # the non-zero positions in the order they flip
    rank = np.full(dim, np.iinfo(np.int64).max, np.int64)
    rank[order] = np.arange(order.size)
    m = order.size // 2  # flips between a vector and its quasi-orthogonal partner
    i = np.arange(n, dtype=np.float64)
    if not circular:
        done = np.rint(i * m / (n - 1)).astype(np.int64)  # level i has flipped the first done[i]
        flipped = rank[None, :] < done[:, None]
    else:
        # Walk the circle: 2m flip events, the first m flip order[:m], the next m flip them back
        # in the same order, so the flipped set of step i is order[lo:hi].
        events = np.rint(i * 2 * m / n).astype(np.int64)
        lo = np.where(events <= m, 0, events - m)
        hi = np.minimum(events, m)
        flipped = (rank[None, :] >= lo[:, None]) & (rank[None, :] < hi[:, None])
    trits = np.where(flipped, -base[None, :], base[None, :]).astype(np.int8)
    return _to_device(pack_ternary(trits), device)


def level(num_vectors: int, dimensions: int, seed: SeedLike = None, *, sparsity: float = 0.0,
          device: Any = None) -> Any:
    """Level hypervectors for ``num_vectors`` ordered values (torchhd's ``level``).

    Level 0 is a random vector; level ``i`` is level 0 with the first ``round(i * m / (n - 1))``
    positions of a random order of its ``2m`` non-zeros negated, so the cosine between levels ``i``
    and ``j`` is exactly ``1 - |i - j| / (n - 1)`` up to rounding (torchhd samples it: the same in
    expectation), and the first and last levels are orthogonal.

    Raises:
        ValueError: ``num_vectors < 2`` or ``sparsity`` outside [0, 1).
    """
    return _flip_basis(num_vectors, dimensions, seed, sparsity, device, circular=False)


def circular(num_vectors: int, dimensions: int, seed: SeedLike = None, *, sparsity: float = 0.0,
             device: Any = None) -> Any:
    """Circular hypervectors for ``num_vectors`` angles (torchhd's ``circular``): the cosine of two
    of them falls linearly with their distance around the circle, ``1 - 2 d / n`` for ``d`` steps
    apart (``d <= n / 2``), so opposite points are orthogonal and the last is next to the first.

    Raises:
        ValueError: ``num_vectors < 2`` or ``sparsity`` outside [0, 1).
    """
    return _flip_basis(num_vectors, dimensions, seed, sparsity, device, circular=True)


def memory_per_vector(dimensions: int) -> Dict[str, int]:
    """Bytes one hypervector of ``dimensions`` takes: packed ternary vs torchhd's dtypes."""
    dim = check_int(dimensions, "dimensions", 1)
    return {"ternhd_packed": (dim + 3) // 4, "int8": dim, "float32": 4 * dim, "bool_bsc": dim}


# ----------------------------------------------------------------------------- algebra
def bind(input: Any, other: Any) -> Any:
    """Element-wise product (MAP binding), :func:`ternhd.bind`."""
    return _bind(input, other)


def bundle(input: Any, other: Any) -> Any:
    """Two-vector bundle as in torchhd (``input + other`` re-quantized): +1 / -1 where they agree,
    0 where they disagree or are both 0. Use :func:`multiset` for many vectors."""
    a, b = _packed(input, "input"), _packed(other, "other")
    if is_torch(a):
        import torch

        stacked = torch.stack(list(torch.broadcast_tensors(a, b)), dim=-2)
    else:
        stacked = np.stack(np.broadcast_arrays(a, b), axis=-2)
    return _bundle(stacked)


def multiset(input: Any, *, dim: Optional[int] = None, packed: bool = False) -> Any:
    """Sum of the rows along the second-to-last axis (torchhd's ``multiset``).

    Args:
        input: packed ``(..., n, B)``.
        dim: trits per row (default ``4 * B``); the sums are cut to ``dim``.
        packed: False (default, as torchhd) returns the int32 sums ``(..., dim)``; True the
            majority vote (:func:`ternhd.bundle`, ties to 0) packed ``(..., B)``.
    """
    x = _packed(input, "input", 2)
    d = _dim_of(x, dim)
    if packed:
        return _bundle(x)
    sums = _bundle(x, packed=False)
    return sums[..., :d]


def permute(input: Any, shifts: int = 1, *, dim: Optional[int] = None) -> Any:
    """Cyclic shift by ``shifts`` trits (torchhd's ``permute``, i.e. ``torch.roll`` on the last
    axis). ``dim``: trits per row, default ``4 * B`` (give it when it is not a multiple of 4)."""
    x = _packed(input, "input")
    return _permute(x, shifts, _dim_of(x, dim))


def hard_quantize(sums: Any, *, packed: bool = True) -> Any:
    """Integer (or float) sums -> packed ternary: +1 above 0, -1 below, 0 at 0 (torchhd's
    ``hard_quantize`` gives -1 at 0: the difference is the tie)."""
    return quantize(sums, threshold=0.0, packed=packed)


def cosine_similarity(input: Any, others: Any) -> Any:
    """Cosine of packed rows, float32 ``(M, N)`` (:func:`ternhd.cosine`)."""
    return pairwise(input, others, "cosine")


def dot_similarity(input: Any, others: Any) -> Any:
    """Dot products of packed rows, int32 ``(M, N)`` (:func:`ternhd.dot`)."""
    return pairwise(input, others, "dot")


def hamming_distance(input: Any, others: Any) -> Any:
    """Differing trits, int32 ``(M, N)`` (:func:`ternhd.hamming`)."""
    return pairwise(input, others, "hamming")


# ----------------------------------------------------------------------------- encodings
def _finish(rows: Any, d: int, packed: bool) -> Any:
    return _bundle(rows) if packed else _bundle(rows, packed=False)[..., :d]


def ngrams(input: Any, n: int = 3, *, dim: Optional[int] = None, packed: bool = True) -> Any:
    """The n-gram statistics of a sequence of hypervectors (torchhd's ``ngrams``):
    ``sum_i  bind_j permute(V[i + j], n - j - 1)`` over the ``m - n + 1`` windows.

    Args:
        input: packed ``(..., m, B)``, the sequence's hypervectors in order.
        n: 1 <= n <= m.
        packed: True (default) the majority vote of the n-grams, packed ``(..., B)``; False the
            int32 sums ``(..., dim)``, equal to torchhd's result on the unpacked trits.
    """
    x = _packed(input, "input", 2)
    d = _dim_of(x, dim)
    m = int(x.shape[-2])
    n = check_int(n, "n", 1)
    if n > m:
        raise ValueError(f"n: {n} exceeds the sequence length {m}")
    windows = m - n + 1
    gram = _permute(x[..., 0:windows, :], n - 1, d)
    for i in range(1, n):
        gram = _bind(gram, _permute(x[..., i:i + windows, :], n - i - 1, d))
    return _finish(gram, d, packed)


def bundle_sequence(input: Any, *, dim: Optional[int] = None, packed: bool = True) -> Any:
    """Bundling-based sequence (torchhd's ``bundle_sequence``): ``sum_i permute(V[i], m - i - 1)``."""
    x = _packed(input, "input", 2)
    d = _dim_of(x, dim)
    m = int(x.shape[-2])
    rows = [_permute(x[..., i:i + 1, :], m - i - 1, d) for i in range(m)]
    if is_torch(x):
        import torch

        stacked = torch.cat(rows, dim=-2)
    else:
        stacked = np.concatenate(rows, axis=-2)
    return _finish(stacked, d, packed)


sequence = bundle_sequence


def bind_sequence(input: Any, *, dim: Optional[int] = None) -> Any:
    """Binding-based sequence (torchhd's ``bind_sequence``): ``bind_i permute(V[i], m - i - 1)``."""
    x = _packed(input, "input", 2)
    d = _dim_of(x, dim)
    m = int(x.shape[-2])
    out = _permute(x[..., 0, :], m - 1, d)
    for i in range(1, m):
        out = _bind(out, _permute(x[..., i, :], m - i - 1, d))
    return out


def hash_table(keys: Any, values: Any, *, dim: Optional[int] = None, packed: bool = True) -> Any:
    """Key-value record (torchhd's ``hash_table``): ``sum_i bind(K[i], V[i])``; keys and values
    packed ``(..., n, B)`` of one shape. Unbinding with a key recovers its value (noisily)."""
    k, v = _packed(keys, "keys", 2), _packed(values, "values", 2)
    if tuple(k.shape) != tuple(v.shape):
        raise ValueError(f"values: shape {tuple(v.shape)} differs from the keys' {tuple(k.shape)}")
    return _finish(_bind(k, v), _dim_of(k, dim, "keys"), packed)


def cleanup(input: Any, memory: Any, threshold: float = 0.0, *, return_index: bool = False) -> Any:
    """The memory row most similar (cosine) to each query (torchhd's ``cleanup``).

    Args:
        input: packed query ``(B,)`` or ``(M, B)``. memory: packed ``(N, B)``.
        threshold: raises ``KeyError`` when the best cosine of a query is below it (as torchhd).
        return_index: also return the int64 row indices.
    """
    scores, idx = topk(input, memory, 1)
    best = _host(scores)[..., 0]
    if np.any(best < threshold):
        raise KeyError(f"input: the most similar memory row has cosine {float(best.min()):.4f} < "
                       f"threshold {threshold}")
    flat = idx[..., 0]
    rows = memory[flat]
    return (rows, flat) if return_index else rows


# ----------------------------------------------------------------------------- item memory
def _check_name(name: Any) -> Union[str, int]:
    if isinstance(name, bool) or not isinstance(name, (str, int, np.integer)):
        raise TypeError(f"name: item names must be str or int (they are saved as JSON), got {type(name).__name__}")
    return int(name) if isinstance(name, np.integer) else name


class ItemMemory:
    """Named packed hypervectors: symbols in, vectors out, and back (cleanup).

    >>> mem = ItemMemory(10_000, seed=0)
    >>> mem.add_many("abcdefghijklmnopqrstuvwxyz ")          # random vectors for new names
    >>> doc = mem.ngrams("hello world", n=3)                  # packed (2500,)
    >>> mem.cleanup(mem["q"])                                 # 'q'

    Vectors of new items are random rows drawn from ``(seed, position)``, so a memory rebuilt with
    the same names in the same order has the same vectors. ``device="cuda"`` keeps them on a GPU.
    Items can be given explicitly (``add(name, vector)``).
    """

    MODEL_ID = "ternhd.vsa.ItemMemory"

    def __init__(self, dimensions: int, seed: int = 0, *, sparsity: float = 0.0, device: Any = None):
        self.dim = check_int(dimensions, "dimensions", 1)
        self.seed = check_int(seed, "seed", 0)
        self.sparsity = _check_sparsity(sparsity)
        self.device = device
        self.names: List[Union[str, int]] = []
        self._ids: Dict[Hashable, int] = {}
        self._vectors: Any = _to_device(np.zeros((0, self.width), np.uint8), device)
        self._index: Optional[Index] = None
        self._permuted: Dict[int, Any] = {}

    # -- contents
    @property
    def width(self) -> int:
        """Packed bytes per vector."""
        return (self.dim + 3) // 4

    @property
    def vectors(self) -> Any:
        """All item vectors, packed uint8 ``(len(self), width)`` in insertion order."""
        return self._vectors

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: Any) -> bool:
        return name in self._ids

    def __repr__(self) -> str:
        return f"ItemMemory(dim={self.dim}, items={len(self)}, seed={self.seed}, sparsity={self.sparsity})"

    def _new_vectors(self, start: int, count: int) -> np.ndarray:
        if count == 0:
            return np.zeros((0, self.width), np.uint8)
        return np.concatenate([random(1, self.dim, [self.seed, start + i], sparsity=self.sparsity)
                               for i in range(count)])

    def _append(self, names: List[Union[str, int]], vectors: Any) -> None:
        start = len(self.names)
        for i, name in enumerate(names):
            self._ids[name] = start + i
        self.names.extend(names)
        if is_torch(self._vectors):
            import torch

            vectors = vectors if is_torch(vectors) else torch.from_numpy(np.ascontiguousarray(vectors))
            self._vectors = torch.cat([self._vectors, vectors.to(self._vectors.device)])
        else:
            self._vectors = np.concatenate([self._vectors, _host(vectors)])
        self._index = None
        self._permuted.clear()

    def add(self, name: Any, vector: Any = None) -> int:
        """Adds one item (a random vector unless ``vector`` is given) and returns its position; a
        name already present keeps its vector (``vector`` must then be None)."""
        name = _check_name(name)
        if name in self._ids:
            if vector is not None:
                raise ValueError(f"name: {name!r} is already in the item memory")
            return self._ids[name]
        if vector is None:
            vec = _to_device(self._new_vectors(len(self), 1), self.device)
        else:
            vec = _packed(vector, "vector")
            if tuple(vec.shape[-1:]) != (self.width,) or vec.ndim != 1:
                raise ValueError(f"vector: expected one packed row of {self.width} bytes, got shape {tuple(vec.shape)}")
            unpack_ternary(_host(vec), self.dim)  # raises ValueError on the invalid code 0b11
            vec = vec.reshape(1, -1)
        self._append([name], vec)
        return len(self) - 1

    def add_many(self, names: Iterable[Any], vectors: Any = None) -> List[int]:
        """Adds several items at once (random vectors for the new names unless ``vectors`` gives a
        packed row per name); returns their positions."""
        names = [_check_name(n) for n in names]
        if vectors is not None:
            vec = _packed(vectors, "vectors", 2)
            if vec.ndim != 2 or tuple(vec.shape) != (len(names), self.width):
                raise ValueError(f"vectors: expected shape ({len(names)}, {self.width}), got {tuple(vec.shape)}")
            dup = [n for n in names if n in self._ids]
            if dup or len(set(names)) != len(names):
                raise ValueError(f"names: {(dup or names)[0]!r} is given twice or already in the item memory")
            unpack_ternary(_host(vec), self.dim)
            self._append(names, vec)
            return list(range(len(self) - len(names), len(self)))
        new: List[Union[str, int]] = []
        seen = set()
        for n in names:
            if n not in self._ids and n not in seen:
                seen.add(n)
                new.append(n)
        if new:
            self._append(new, _to_device(self._new_vectors(len(self), len(new)), self.device))
        return [self._ids[n] for n in names]

    def index(self, symbols: Iterable[Any]) -> np.ndarray:
        """Positions (int64) of the given names. Raises ValueError naming ``symbols`` for a name not
        in the item memory."""
        if isinstance(symbols, (int, np.integer)):
            symbols = [symbols]
        symbols = list(symbols)  # a string is its characters
        ids = self._ids
        try:
            return np.fromiter((ids[s] for s in symbols), np.int64)
        except (KeyError, TypeError):
            missing = next(s for s in symbols if not isinstance(s, Hashable) or s not in ids)
            raise ValueError(f"symbols: {missing!r} is not in the item memory ({len(self)} items); "
                             f"add it first (add / add_many)") from None

    def lookup(self, symbols: Iterable[Any]) -> Any:
        """Packed vectors ``(len(symbols), width)`` of the named items (a string is its characters)."""
        return _index_rows(self._vectors, self.index(symbols))

    def __getitem__(self, name: Any) -> Any:
        """The packed vector ``(width,)`` of one item."""
        return self.lookup([name])[0]

    # -- encodings over symbol sequences
    def _permuted_table(self, k: int) -> Any:
        table = self._permuted.get(k)
        if table is None:
            table = self._permuted[k] = self._vectors if k == 0 else _permute(self._vectors, k, self.dim)
        return table

    def ngrams(self, symbols: Sequence[Any], n: int = 3, *, packed: bool = True) -> Any:
        """:func:`ngrams` of the named items' vectors, with each shifted table computed once per
        memory (a gather + ``n - 1`` binds per window instead of permuting every window)."""
        n = check_int(n, "n", 1)
        ids = self.index(symbols)
        if n > ids.size:
            raise ValueError(f"n: {n} exceeds the sequence length {ids.size}")
        windows = ids.size - n + 1
        gram = _index_rows(self._permuted_table(n - 1), ids[:windows])
        for i in range(1, n):
            gram = _bind(gram, _index_rows(self._permuted_table(n - i - 1), ids[i:i + windows]))
        return _finish(gram, self.dim, packed)

    def bundle_sequence(self, symbols: Sequence[Any], *, packed: bool = True) -> Any:
        """:func:`bundle_sequence` of the named items."""
        return bundle_sequence(self.lookup(symbols), dim=self.dim, packed=packed)

    def hash_table(self, keys: Sequence[Any], values: Sequence[Any], *, packed: bool = True) -> Any:
        """:func:`hash_table` of named keys and values."""
        return hash_table(self.lookup(keys), self.lookup(values), dim=self.dim, packed=packed)

    # -- cleanup
    def _get_index(self) -> Index:
        if not len(self):
            raise ValueError("the item memory is empty: add items before cleanup")
        if self._index is None:
            self._index = Index(self._vectors)
        return self._index

    def cleanup(self, query: Any, k: int = 1, *, metric: str = "cosine", return_scores: bool = False) -> Any:
        """The name(s) of the item(s) nearest to each packed query (via :class:`ternhd.Index`).

        ``query`` ``(width,)`` gives one name (``k=1``) or a list of ``k``; ``(M, width)`` gives a
        list per query. ``return_scores=True`` also returns the scores (numpy).
        """
        q = _packed(query, "query")
        scores, idx = self._get_index().topk(q, k, metric)
        idx_h, sc_h = _host(idx), _host(scores)
        names = self.names

        def pick(row: np.ndarray) -> Any:
            return names[int(row[0])] if k == 1 else [names[int(i)] for i in row]

        out = pick(idx_h) if idx_h.ndim == 1 else [pick(r) for r in idx_h]
        if return_scores:
            return out, (sc_h[..., 0] if k == 1 else sc_h)
        return out

    # -- persistence
    def dumps(self, **meta: Any) -> bytes:
        """This memory as one packet (the names and settings in the meta JSON)."""
        return _packet.dumps(_host(self._vectors), self.dim, model_id=self.MODEL_ID, items=list(self.names),
                             item_seed=self.seed, item_sparsity=self.sparsity, **meta)

    def save(self, path: Union[str, os.PathLike], **meta: Any) -> int:
        """Writes :meth:`dumps` atomically (a temporary file in the same folder, then
        ``os.replace``); returns the bytes written."""
        blob = self.dumps(**meta)
        path = os.fspath(path)
        fd, tmp = tempfile.mkstemp(prefix=".itemmemory-", suffix=".tmp", dir=os.path.dirname(path) or ".")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return len(blob)

    @classmethod
    def loads(cls, blob: Any, *, device: Any = None) -> "ItemMemory":
        """Rebuilds an item memory from :meth:`dumps` output (ternhd.PacketError on a bad packet)."""
        return cls._from_packet(_packet.loads(blob), device)

    @classmethod
    def load(cls, path: Union[str, os.PathLike], *, device: Any = None) -> "ItemMemory":
        """Reads a file written by :meth:`save`."""
        return cls._from_packet(_packet.load(path, mmap=False), device)

    @classmethod
    def _from_packet(cls, pkt: "_packet.Packet", device: Any) -> "ItemMemory":
        meta = pkt.meta
        items = meta.get("items")
        if meta.get("model_id") != cls.MODEL_ID or not isinstance(items, list) or len(items) != pkt.count:
            raise _packet.PacketError("packet: not an ItemMemory packet (model_id / items metadata missing or "
                                      "inconsistent with the row count)")
        mem = cls(pkt.dim, int(meta.get("item_seed", 0)), sparsity=float(meta.get("item_sparsity", 0.0)),
                  device=device)
        names = [_check_name(n) for n in items]
        if len(set(names)) != len(names):
            raise _packet.PacketError("packet: duplicate item names")
        mem._append(names, _to_device(np.array(pkt.vectors), device))
        return mem

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ItemMemory):
            return NotImplemented
        return (self.dim == other.dim and self.names == other.names
                and np.array_equal(_host(self._vectors), _host(other._vectors)))

    __hash__ = None  # type: ignore[assignment]


# ----------------------------------------------------------------------------- classifiers
class Centroid:
    """Nearest-prototype classifier on packed hypervectors (torchhd's ``Centroid`` model /
    ``Vanilla`` classifier), scikit-learn style.

    ``fit`` sums each class's rows (:func:`ternhd.bundle` with ``packed=False``, int32, kept in
    ``sums_``) and quantizes the sums into packed ternary prototypes (``prototypes_``): the sign
    with ``tau=0`` (default), ``quantize(sums, tau)`` (``tau * std`` per class) otherwise.
    ``predict`` is the most similar prototype (cosine by default) through :func:`ternhd.topk`.

    Args:
        dim: trits per row (default: 4 x the rows' bytes).
        tau: prototype threshold (see above). metric: ``"cosine"``, ``"dot"`` or ``"hamming"``.
    """

    def __init__(self, dim: Optional[int] = None, *, tau: float = 0.0, metric: str = "cosine"):
        self.dim = dim
        self.tau = tau
        self.metric = metric

    # -- scikit-learn plumbing
    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        names = [n for n in self.__init__.__code__.co_varnames[1:self.__init__.__code__.co_argcount
                                                                    + self.__init__.__code__.co_kwonlyargcount]]
        return {n: getattr(self, n) for n in names}

    def set_params(self, **params: Any) -> "Centroid":
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- data handling
    def _check_X(self, X: Any, fitting: bool) -> Any:
        X = _packed(X, "X", 2)
        if X.ndim != 2:
            raise ValueError(f"X: expected packed rows (n_samples, bytes), got shape {tuple(X.shape)}")
        if fitting:
            self.dim_ = _dim_of(X, self.dim, "X")
        elif not hasattr(self, "prototypes_"):
            raise RuntimeError(f"{type(self).__name__}: call fit before predict")
        elif X.shape[-1] != self.prototypes_.shape[-1]:
            raise ValueError(f"X: rows have {X.shape[-1]} bytes but the model was fitted on "
                             f"{self.prototypes_.shape[-1]}")
        return X

    def _labels(self, y: Any, n: int) -> np.ndarray:
        arr = _host(y) if is_torch(y) else np.asarray(y)
        if arr.ndim != 1 or arr.shape[0] != n:
            raise ValueError(f"y: expected {n} labels (1-D), got shape {arr.shape}")
        self.classes_, codes = np.unique(arr, return_inverse=True)
        return codes.astype(np.int64)

    def _class_sums(self, X: Any, codes: np.ndarray) -> Any:
        c = len(self.classes_)
        if is_torch(X):
            import torch

            sums = torch.zeros((c, self.dim_), dtype=torch.int32, device=X.device)
        else:
            sums = np.zeros((c, self.dim_), np.int32)
        for k in range(c):
            sums[k] += self._sum_rows(X, codes == k)
        return sums

    def _sum_rows(self, X: Any, mask: np.ndarray) -> Any:
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            return 0
        return _bundle(_index_rows(X, rows), packed=False)[:self.dim_]

    def _quantize(self) -> None:
        s = self.sums_.float() if is_torch(self.sums_) else self.sums_.astype(np.float32)
        if self.tau == 0:
            self.prototypes_ = quantize(s, threshold=0.0, packed=True)
        else:
            self.prototypes_ = quantize(s, tau=self.tau, packed=True)

    # -- API
    def fit(self, X: Any, y: Any) -> "Centroid":
        """Fits on packed rows ``X`` ``(n_samples, bytes)`` (numpy, CPU or CUDA tensor) and labels
        ``y`` (any sortable values; ``classes_`` holds them in sorted order)."""
        X = self._check_X(X, fitting=True)
        codes = self._labels(y, int(X.shape[0]))
        self.sums_ = self._class_sums(X, codes)
        self._quantize()
        return self

    def decision_function(self, X: Any) -> Any:
        """Similarity of each row to each class prototype ``(n_samples, n_classes)``."""
        X = self._check_X(X, fitting=False)
        return pairwise(X, self.prototypes_, self.metric)

    def _predict_codes(self, X: Any) -> np.ndarray:
        _, idx = topk(X, self.prototypes_, 1, self.metric)
        return _host(idx)[:, 0]

    def predict(self, X: Any) -> np.ndarray:
        """The predicted label of each packed row (a numpy array of ``classes_`` values)."""
        X = self._check_X(X, fitting=False)
        return self.classes_[self._predict_codes(X)]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy of :meth:`predict` on ``(X, y)``."""
        y = _host(y) if is_torch(y) else np.asarray(y)
        return float(np.mean(self.predict(X) == y))


class AdaptHD(Centroid):
    """Adaptive (retraining) centroid classifier: AdaptHD / OnlineHD-style iterative learning.

    Starts from the :class:`Centroid` sums, then for ``epochs`` passes over the data in
    mini-batches: each misclassified row is added to its true class's sums and subtracted from the
    predicted class's (``lr`` times), and the ternary prototypes are re-quantized after each batch
    (torchhd's ``Centroid.add_adapt``, used by its ``AdaptHD`` classifier; Imani et al., "AdaptHD:
    Adaptive Efficient Training for Brain-Inspired Hyperdimensional Computing", 2019). The batch
    updates are the public kernels: one :func:`ternhd.bundle` (``packed=False``) per class.
    Training stops early after an epoch without a mistake.

    Args:
        dim, tau, metric: as :class:`Centroid`.
        epochs: retraining passes (>= 0). lr: integer step (>= 1). batch_size: rows per update.
        seed: shuffling of the rows each epoch (None: keep the order).
    """

    def __init__(self, dim: Optional[int] = None, *, epochs: int = 10, lr: int = 1, batch_size: int = 256,
                 tau: float = 0.0, metric: str = "cosine", seed: Optional[int] = 0):
        super().__init__(dim, tau=tau, metric=metric)
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.seed = seed

    def fit(self, X: Any, y: Any) -> "AdaptHD":
        epochs = check_int(self.epochs, "epochs", 0)
        lr = check_int(self.lr, "lr", 1)
        batch = check_int(self.batch_size, "batch_size", 1)
        super().fit(X, y)
        X = as_array(X, "X")
        codes = self._labels(y, int(X.shape[0]))
        rng = np.random.default_rng(self.seed) if self.seed is not None else None
        self.n_updates_ = []
        for _ in range(epochs):
            order = rng.permutation(codes.size) if rng is not None else np.arange(codes.size)
            wrong_total = 0
            for b0 in range(0, codes.size, batch):
                rows = order[b0:b0 + batch]
                xb = _index_rows(X, rows)
                pred = self._predict_codes(xb)
                wrong = pred != codes[rows]
                if not wrong.any():
                    continue
                wrong_total += int(wrong.sum())
                for k in range(len(self.classes_)):
                    add = self._sum_rows(xb, wrong & (codes[rows] == k))
                    sub = self._sum_rows(xb, wrong & (pred == k))
                    self.sums_[k] += (add - sub) * lr
                self._quantize()
            self.n_updates_.append(wrong_total)
            if wrong_total == 0:
                break
        return self

