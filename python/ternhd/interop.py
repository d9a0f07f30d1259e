"""Ternary tensors in and out of GGUF (llama.cpp's ``TQ2_0`` and ``TQ1_0`` block types).

Both GGUF types store rows of ternary values in blocks of 256 with one float16 scale ``d`` per
block (value = ``d * t``, ``t`` in {-1, 0, +1}); rows must hold a multiple of 256 values. The
layouts, as written by the ``gguf`` package's numpy reference (``gguf.quants``) and llama.cpp:

* ``TQ2_0`` (66 bytes a block): 64 bytes ``qs`` then ``d``. Value ``j`` of the block has the 2-bit
  code ``t + 1`` in byte ``32 * (j // 128) + j % 32`` at bit offset ``2 * ((j % 128) // 32)``.
  The code 3 is not a ternary value.
* ``TQ1_0`` (54 bytes a block): 48 bytes ``qs``, 4 bytes ``qh``, then ``d``. Values are base-3
  digits ``t + 1``, five per byte, the first digit most significant: values ``0..159`` in
  ``qs[0:32]`` (value ``j`` is digit ``j // 32`` of byte ``j % 32``), ``160..239`` in ``qs[32:48]``
  (digit ``(j - 160) // 16`` of byte ``32 + (j - 160) % 16``), ``240..255`` in ``qh`` (four digits
  a byte, digit ``(j - 240) // 4`` of byte ``(j - 240) % 4``, the fifth digit 0). A byte holding
  the 5-digit number ``q`` is stored as ``ceil(q * 256 / 243)``, so bytes that no ``q`` maps to
  are not canonical.

:func:`to_gguf` and :func:`from_gguf` convert between those blocks and ternhd's packed rows
(docs/FORMAT.md, section 1) plus the per-block scales, losslessly in both directions: the trits
and the float16 scale bits round-trip exactly, and ``to_gguf`` with the default scales equals
``gguf.quants.quantize`` of the trits byte for byte. The packing and unpacking of trits are the
public kernels (:func:`ternhd.pack_ternary`, :func:`ternhd.unpack_ternary`); the block layouts are
numpy reshapes. :func:`read_gguf` reads the ternary tensors of a GGUF file into
:class:`TernaryTensor` objects, whose rows can be searched directly (:meth:`TernaryTensor.index`,
:meth:`TernaryTensor.topk`) after that one conversion.

The ``gguf`` package is needed only for :func:`read_gguf` / :meth:`TernaryTensor.from_reader`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from ._arrays import check_int, to_numpy
from .packing import pack_ternary, unpack_ternary
from .similarity import Index, topk

__all__ = ["QK_K", "BLOCK_BYTES", "GGUF_TYPES", "to_gguf", "from_gguf", "TernaryTensor", "read_gguf"]

QK_K = 256
#: bytes per 256-value block
BLOCK_BYTES = {"TQ1_0": 54, "TQ2_0": 66}
#: GGML type ids (``gguf.GGMLQuantizationType``)
GGUF_TYPES = {"TQ1_0": 34, "TQ2_0": 35}
_ID_TO_NAME = {v: k for k, v in GGUF_TYPES.items()}

_POW5 = np.array([81, 27, 9, 3, 1], np.uint8)
_POW4 = np.array([81, 27, 9, 3], np.uint8)
_MUL5 = np.array([1, 3, 9, 27, 81], np.uint8)
_MUL4 = np.array([1, 3, 9, 27], np.uint8)


def _qtype(qtype: Any) -> str:
    """``"TQ1_0"`` / ``"TQ2_0"`` from a name, a GGML type id or a ``gguf.GGMLQuantizationType``."""
    name = getattr(qtype, "name", qtype)
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
        if int(name) in _ID_TO_NAME:
            return _ID_TO_NAME[int(name)]
        raise ValueError(f"qtype: GGML type {int(name)} is not ternary (expected TQ1_0 = 34 or TQ2_0 = 35)")
    if isinstance(name, str) and name.upper() in BLOCK_BYTES:
        return name.upper()
    raise ValueError(f"qtype: {name!r} is not a ternary GGUF type (expected 'TQ1_0' or 'TQ2_0')")


# ----------------------------------------------------------------------------- trits <-> blocks
def _encode_blocks(trits: np.ndarray, qtype: str) -> np.ndarray:
    """int8 trits ``(nb, 256)`` -> the ``qs`` (+ ``qh``) bytes of each block (without ``d``)."""
    nb = trits.shape[0]
    codes = (trits + 1).astype(np.uint8)
    if qtype == "TQ2_0":
        q = codes.reshape(nb, 2, 4, 32) << np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 4, 1)
        return (q[:, :, 0] | q[:, :, 1] | q[:, :, 2] | q[:, :, 3]).reshape(nb, 64)
    qs0 = (codes[:, :160].reshape(nb, 5, 32) * _POW5.reshape(1, 5, 1)).sum(axis=1, dtype=np.uint16)
    qs1 = (codes[:, 160:240].reshape(nb, 5, 16) * _POW5.reshape(1, 5, 1)).sum(axis=1, dtype=np.uint16)
    qh = (codes[:, 240:].reshape(nb, 4, 4) * _POW4.reshape(1, 4, 1)).sum(axis=1, dtype=np.uint16)
    q = np.concatenate([qs0, qs1, qh], axis=1)  # (nb, 52) numbers 0..242
    return ((q * 256 + 242) // 243).astype(np.uint8)


def _decode_blocks(q: np.ndarray, qtype: str) -> np.ndarray:
    """The ``qs`` (+ ``qh``) bytes ``(nb, 64 | 52)`` -> codes ``t + 1`` ``(nb, 256)`` uint8."""
    nb = q.shape[0]
    if qtype == "TQ2_0":
        c = q.reshape(nb, 2, 1, 32) >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 4, 1)
        return (c & np.uint8(3)).reshape(nb, 256)
    qs0 = (q[:, None, :32] * _MUL5.reshape(1, 5, 1)).reshape(nb, 160)  # uint8 products wrap, as in ggml
    qs1 = (q[:, None, 32:48] * _MUL5.reshape(1, 5, 1)).reshape(nb, 80)
    qh = (q[:, None, 48:52] * _MUL4.reshape(1, 4, 1)).reshape(nb, 16)
    digits = np.concatenate([qs0, qs1, qh], axis=1).astype(np.uint16)
    return ((digits * 3) >> 8).astype(np.uint8)


def to_gguf(packed: Any, dim: int, qtype: Any = "TQ2_0", scales: Any = None) -> np.ndarray:
    """Packed ternary rows -> GGUF ``TQ2_0`` / ``TQ1_0`` blocks.

    Args:
        packed: uint8 ``(rows, ceil(dim / 4))`` (or one row), numpy or a tensor.
        dim: values per row, a multiple of 256.
        qtype: ``"TQ2_0"`` (default) or ``"TQ1_0"`` (or the GGML type / its id).
        scales: the float16 scale ``d`` of each block, ``(rows, dim // 256)`` or a number for all;
            None (default) gives 1.0, and 0.0 for an all-zero block, which is what
            ``gguf.quants.quantize`` writes for the trits as float32.

    Returns:
        uint8 ``(rows, dim // 256 * block_bytes)`` (1-D for a 1-D input), the raw tensor data.

    Raises:
        ValueError: ``dim`` not a multiple of 256, a width that does not match ``dim``, the invalid
        code ``0b11``, scales of the wrong shape.
    """
    qtype = _qtype(qtype)
    dim = check_int(dim, "dim", 1)
    if dim % QK_K:
        raise ValueError(f"dim: GGUF {qtype} rows hold a multiple of {QK_K} values, got {dim}")
    arr, _ = to_numpy(packed, "packed")
    one = arr.ndim == 1
    rows = arr.reshape(1, -1) if one else arr
    if arr.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != dim // 4:
        raise ValueError(f"packed: expected uint8 (rows, {dim // 4}) for dim={dim}, got {arr.dtype} {arr.shape}")
    n, nbr = rows.shape[0], dim // QK_K
    trits = unpack_ternary(np.ascontiguousarray(rows), dim).reshape(n * nbr, QK_K)
    if scales is None:
        d = np.any(trits != 0, axis=1).astype(np.float16)
    else:
        s = np.asarray(scales)
        if s.dtype.kind not in "fiu":
            raise TypeError(f"scales: expected numbers, got dtype {s.dtype}")
        if s.ndim == 0:
            s = np.full((n, nbr), s)
        elif one and s.shape == (nbr,):
            s = s.reshape(1, nbr)
        if s.shape != (n, nbr):
            raise ValueError(f"scales: expected shape ({n}, {nbr}) (one per block), got {np.asarray(scales).shape}")
        d = s.astype(np.float16).reshape(n * nbr)
    q = _encode_blocks(trits, qtype)
    out = np.concatenate([q, d.reshape(-1, 1).view(np.uint8)], axis=1).reshape(n, nbr * BLOCK_BYTES[qtype])
    return out[0] if one else out


def from_gguf(data: Any, qtype: Any = "TQ2_0", n_per_row: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """GGUF ``TQ2_0`` / ``TQ1_0`` blocks -> ``(packed, scales)``.

    Args:
        data: the tensor's raw bytes: uint8 ``(rows, row_bytes)``, or 1-D (bytes, bytearray,
            memoryview or uint8 array) with ``n_per_row`` giving the row length.
        qtype: ``"TQ2_0"`` (default) or ``"TQ1_0"`` (or the GGML type / its id).
        n_per_row: values per row (a multiple of 256); default: all of a 1-D ``data`` is one row, a
            2-D one has ``row_bytes / block_bytes * 256``.

    Returns:
        ``packed`` uint8 ``(rows, n_per_row / 4)`` (docs/FORMAT.md layout) and ``scales`` float16
        ``(rows, n_per_row / 256)``, the blocks' ``d`` bit for bit. Values are ``scales * trits``.

    Raises:
        ValueError (naming ``data``): a length that is not a whole number of blocks or rows (a
        truncated tensor), a ``TQ2_0`` code 3 (not a ternary value), a non-canonical ``TQ1_0``
        byte. ValueError (naming ``n_per_row``): not a multiple of 256.
    """
    qtype = _qtype(qtype)
    bb = BLOCK_BYTES[qtype]
    if isinstance(data, (bytes, bytearray, memoryview)):
        arr = np.frombuffer(data, np.uint8)
    else:
        arr, _ = to_numpy(data, "data")
    if arr.dtype != np.uint8:
        raise TypeError(f"data: expected raw uint8 bytes, got dtype {arr.dtype}")
    if arr.ndim == 2 and n_per_row is None:
        if arr.shape[1] % bb:
            raise ValueError(f"data: rows of {arr.shape[1]} bytes are not a whole number of {qtype} blocks "
                             f"({bb} bytes each): truncated or not {qtype}")
        n_per_row = arr.shape[1] // bb * QK_K
    flat = arr.reshape(-1)
    if n_per_row is None:
        if flat.size % bb:
            raise ValueError(f"data: {flat.size} bytes are not a whole number of {qtype} blocks ({bb} bytes each): "
                             f"truncated or not {qtype}")
        n_per_row = flat.size // bb * QK_K
    n_per_row = check_int(n_per_row, "n_per_row", 1)
    if n_per_row % QK_K:
        raise ValueError(f"n_per_row: GGUF {qtype} rows hold a multiple of {QK_K} values, got {n_per_row}")
    row_bytes = n_per_row // QK_K * bb
    if flat.size % row_bytes:
        raise ValueError(f"data: {flat.size} bytes are not a whole number of rows of {n_per_row} {qtype} values "
                         f"({row_bytes} bytes each): the tensor is truncated")
    n = flat.size // row_bytes
    blocks = flat.reshape(-1, bb)
    q = np.ascontiguousarray(blocks[:, :bb - 2])
    scales = np.ascontiguousarray(blocks[:, bb - 2:]).view(np.float16).reshape(n, n_per_row // QK_K)
    codes = _decode_blocks(q, qtype)
    if qtype == "TQ2_0":
        bad = np.flatnonzero((codes == 3).any(axis=1))
        if bad.size:
            b = int(bad[0])
            j = int(np.flatnonzero(codes[b] == 3)[0])
            raise ValueError(f"data: block {b % (n_per_row // QK_K)} of row {b // (n_per_row // QK_K)} holds the "
                             f"code 3 at value {j}: not a ternary value (TQ2_0 codes are 0, 1, 2 for -1, 0, +1)")
    trits = codes.astype(np.int8) - np.int8(1)
    if qtype == "TQ1_0":
        bad = np.flatnonzero((_encode_blocks(trits, qtype) != q).any(axis=1))
        if bad.size:
            b = int(bad[0])
            k = int(np.flatnonzero(_encode_blocks(trits[b:b + 1], qtype)[0] != q[b])[0])
            raise ValueError(f"data: block {b % (n_per_row // QK_K)} of row {b // (n_per_row // QK_K)} has the "
                             f"non-canonical TQ1_0 byte {int(q[b, k])} at offset {k} (no ternary digits encode to "
                             f"it)")
    packed = pack_ternary(trits.reshape(n, n_per_row))
    return packed, scales


# ----------------------------------------------------------------------------- GGUF tensors
@dataclass
class TernaryTensor:
    """The rows of a ternary GGUF tensor as ternhd packed rows plus their per-block scales.

    Attributes:
        name: tensor name. qtype: ``"TQ1_0"`` or ``"TQ2_0"``.
        packed: uint8 ``(rows, dim / 4)``. scales: float16 ``(rows, dim / 256)``.
        shape: the GGUF shape in numpy order (``(..., dim)``).
    """

    name: str
    qtype: str
    packed: np.ndarray
    scales: np.ndarray
    shape: Tuple[int, ...]

    @property
    def dim(self) -> int:
        """Values per row."""
        return int(self.shape[-1])

    @classmethod
    def from_reader(cls, tensor: Any) -> "TernaryTensor":
        """From a ``gguf.ReaderTensor`` (``gguf.GGUFReader(path).tensors[i]``).

        Raises ValueError naming ``tensor`` for a type other than TQ1_0 / TQ2_0.
        """
        ttype = getattr(tensor, "tensor_type", None)
        try:
            qtype = _qtype(ttype)
        except ValueError:
            tname = getattr(ttype, "name", ttype)
            raise ValueError(f"tensor: {getattr(tensor, 'name', '?')!r} has type {tname}, not a ternary GGUF type "
                             f"(TQ1_0 or TQ2_0)") from None
        ne = [int(v) for v in tensor.shape]  # GGML order: ne[0] is the row length
        shape = tuple(reversed(ne))
        packed, scales = from_gguf(np.asarray(tensor.data).reshape(-1), qtype, n_per_row=ne[0])
        return cls(str(tensor.name), qtype, packed, scales, shape)

    def to_gguf(self) -> np.ndarray:
        """The raw blocks again, ``(rows, row_bytes)``, byte for byte as read."""
        return to_gguf(self.packed, self.dim, self.qtype, self.scales)

    def trits(self) -> np.ndarray:
        """int8 ``(rows, dim)``."""
        return unpack_ternary(self.packed, self.dim)

    def dequantize(self) -> np.ndarray:
        """float32 values ``scales * trits`` ``(rows, dim)``, as ``gguf.quants.dequantize``."""
        t = self.trits().reshape(-1, self.dim // QK_K, QK_K).astype(np.float32)
        return (t * self.scales.astype(np.float32)[..., None]).reshape(self.packed.shape[0], self.dim)

    def index(self) -> Index:
        """A :class:`ternhd.Index` over the rows (similarity of the ternary patterns; the scales
        are not part of it)."""
        return Index(self.packed)

    def topk(self, queries: Any, k: int, metric: str = "cosine") -> Tuple[Any, Any]:
        """:func:`ternhd.topk` of packed queries against the rows."""
        return topk(queries, self.packed, k, metric)


def read_gguf(source: Union[str, os.PathLike, Any], names: Optional[Any] = None) -> Dict[str, TernaryTensor]:
    """The ternary tensors (TQ1_0 / TQ2_0) of a GGUF file, each converted once.

    Args:
        source: a path or an open ``gguf.GGUFReader``.
        names: None (every ternary tensor; others are skipped) or the names to read, each of
            which must be ternary (ValueError naming ``tensor`` otherwise, KeyError if missing).
    """
    import gguf

    reader = source if hasattr(source, "tensors") else gguf.GGUFReader(os.fspath(source))
    tensors = {t.name: t for t in reader.tensors}
    if names is None:
        return {n: TernaryTensor.from_reader(t) for n, t in tensors.items()
                if int(t.tensor_type) in _ID_TO_NAME}
    if isinstance(names, str):
        names = [names]
    out = {}
    for n in names:
        if n not in tensors:
            raise KeyError(f"names: no tensor {n!r} in the GGUF file")
        out[n] = TernaryTensor.from_reader(tensors[n])
    return out
