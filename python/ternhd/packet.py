"""Packets: a versioned, checksummed binary format for packed ternary vectors and their metadata.

A packet is a fixed 72-byte little-endian header, then the model id (UTF-8), a JSON object of extra
metadata, the payload (the vectors) and two optional per-row sections::

    offset size field
    0      4    magic b"TNHD"
    4      2    format version (1)
    6      2    flags: 1 = checksum is xxh64 (else CRC32), 2 = labels section, 4 = scales section
    8      4    header size = 72 + model id length + meta length (offset of the payload)
    12     4    dim: trits per row, 1 .. 2**31 - 1
    16     8    count: rows, 0 .. 2**40
    24     1    encoding: 0 = 2-bit layout (docs/FORMAT.md), 1 = base-3 (5 trits per byte)
    25     1    kind: 0 = vectors, 1 = knowledge (teacher -> student), 2 = delta (ternhd.distributed)
    26     1    projection: 0 = unspecified, 1 = gaussian, 2 = sparse, 3 = srht
    27     1    threshold mode: 0 = unspecified, 1 = std, 2 = batch, 3 = fixed, 4 = sparsity
    28     4    in_dim: width of the encoder's input (0 = unspecified)
    32     8    float64: tau (std/batch), the threshold (fixed) or the sparsity (sparsity mode)
    40     8    projection seed (uint64)
    48     2    model id length (<= 256 bytes)
    50     2    reserved, 0
    52     4    meta length (<= 1 MiB)
    56     8    payload length: count * ceil(dim / 4) (2-bit) or ceil(count * dim / 5) (base-3)
    64     8    checksum of every byte of the packet except these 8 (CRC32 zero-extended, or xxh64)
    72     ...  model id, meta JSON, payload, labels (int64 * count), scales (float32 * count)

The parser treats every byte as untrusted: each field is range-checked, every length is compared
with the bytes actually present *before* anything is allocated, the checksum is verified, and the
2-bit payload is checked for the invalid code ``0b11`` and non-zero padding trits. Any malformed,
truncated, oversized or tampered input raises :class:`ternhd.PacketError` (a ``ValueError``).

The 2-bit payload is returned as a zero-copy, read-only ``numpy`` view of the input buffer (or of
a memory map for :func:`load` / :func:`iter_stream` on files). The base-3 payload is 20% smaller
and is decoded by the native kernels of ``csrc/base3.cpp``.

A stream is packets written back to back (:class:`StreamWriter`, :func:`iter_stream`).

Knowledge packets (kind 1) carry what a teacher sends a student; :mod:`ternhd.knowledge` writes
and reads them. This module is the format only.
"""
from __future__ import annotations

import io
import json
import math
import mmap as _mmap
import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from ._arrays import check_int, to_numpy

__all__ = [
    "PacketError", "Packet", "dumps", "loads", "save", "load", "StreamWriter", "iter_stream", "load_stream",
    "base3_encode", "base3_decode", "payload_size", "MAGIC", "VERSION", "HEADER_SIZE", "MAX_DIM", "MAX_COUNT",
    "MAX_MODEL_ID",
    "MAX_META", "ENCODINGS", "KINDS", "PROJECTIONS", "THRESHOLD_MODES",
]


class PacketError(ValueError):
    """A packet (or stream) is malformed, truncated, oversized, tampered with or unsupported."""


MAGIC = b"TNHD"
VERSION = 1
_HEADER = struct.Struct("<4sHHIIQBBBBIdQHHIQQ")
HEADER_SIZE = _HEADER.size  # 72
_CHECKSUM_AT = 64
assert HEADER_SIZE == 72

FLAG_XXH64, FLAG_LABELS, FLAG_SCALES = 1, 2, 4
_KNOWN_FLAGS = FLAG_XXH64 | FLAG_LABELS | FLAG_SCALES

MAX_DIM = 2**31 - 1
MAX_COUNT = 2**40
MAX_MODEL_ID = 256
MAX_META = 1 << 20
DEFAULT_MAX_BYTES = 1 << 34  # 16 GiB: the largest packet read from a file object unless told otherwise

ENCODINGS = ("2bit", "base3")
KINDS = ("vectors", "knowledge", "delta")
PROJECTIONS = (None, "gaussian", "sparse", "srht")
THRESHOLD_MODES = (None, "std", "batch", "fixed", "sparsity")

_META_KEYS = ("model_id", "projection", "seed", "threshold", "tau", "sparsity", "in_dim")
# Keys extra metadata may not use: the header's fields and the other arguments of dumps().
_RESERVED_KEYS = _META_KEYS + ("vectors", "dim", "encoding", "checksum", "kind", "labels", "scales")

Buffer = Union[bytes, bytearray, memoryview, np.ndarray, _mmap.mmap]


# ----------------------------------------------------------------------------- base-3 payload
def payload_size(count: int, dim: int, encoding: str = "2bit") -> int:
    """Payload bytes of ``count`` rows of ``dim`` trits in ``encoding``."""
    count, dim = check_int(count, "count", 0), check_int(dim, "dim", 0)
    if encoding == "2bit":
        return count * ((dim + 3) // 4)
    if encoding == "base3":
        return -(-(count * dim) // 5)
    raise ValueError(f"encoding: expected one of {ENCODINGS}, got {encoding!r}")


def base3_encode(packed: Any, dim: int) -> np.ndarray:
    """Packed uint8 ``(N, ceil(dim/4))`` (or one row) -> base-3 stream uint8 ``(ceil(N*dim/5),)``.

    The rows' trits are concatenated and stored 5 per byte (digit 0/1/2 for 0/+1/-1, first digit
    most significant); see ``csrc/base3.cpp`` and :func:`ternhd.reference.base3_encode`.
    Raises ValueError on the invalid code ``0b11`` or a wrong row width.
    """
    dim = check_int(dim, "dim", 0)
    arr, _ = to_numpy(packed, "packed")
    if arr.dtype != np.uint8:
        raise TypeError(f"packed: expected uint8, got dtype {arr.dtype}")
    p2 = arr.reshape(1, -1) if arr.ndim == 1 else arr
    if p2.ndim != 2 or p2.shape[1] != (dim + 3) // 4:
        raise ValueError(f"packed: expected shape (N, {(dim + 3) // 4}) for dim={dim}, got {arr.shape}")
    return _core.base3_encode(np.ascontiguousarray(p2), p2.shape[0], dim)


def base3_decode(data: Any, rows: int, dim: int) -> np.ndarray:
    """Base-3 stream uint8 ``(ceil(rows*dim/5),)`` -> packed uint8 ``(rows, ceil(dim/4))``.

    Raises ValueError on a wrong length, a byte >= 243 or non-zero padding digits.
    """
    rows, dim = check_int(rows, "rows", 0), check_int(dim, "dim", 0)
    arr, _ = to_numpy(data, "data")
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise TypeError(f"data: expected a 1-D uint8 array, got {arr.dtype} {arr.shape}")
    return _core.base3_decode(np.ascontiguousarray(arr), rows, dim)


# ----------------------------------------------------------------------------- checksums
def _checksum(kind: int, parts: Sequence[memoryview]) -> int:
    if kind == FLAG_XXH64:
        try:
            import xxhash
        except ImportError:  # pragma: no cover - xxhash is in the test extra
            raise PacketError("checksum: packet uses xxh64 but the xxhash package is not installed") from None
        h = xxhash.xxh64()
        for p in parts:
            h.update(p)
        return h.intdigest()
    c = 0
    for p in parts:
        c = zlib.crc32(p, c)
    return c


def _check_checksum_name(checksum: str) -> int:
    if checksum == "crc32":
        return 0
    if checksum == "xxh64":
        try:
            import xxhash  # noqa: F401
        except ImportError:
            raise ValueError("checksum: 'xxh64' needs the xxhash package") from None
        return FLAG_XXH64
    raise ValueError(f"checksum: expected 'crc32' or 'xxh64', got {checksum!r}")


# ----------------------------------------------------------------------------- the packet object
@dataclass
class Packet:
    """A parsed packet.

    Attributes:
        vectors: packed uint8 ``(count, ceil(dim/4))``: a read-only zero-copy view of the input
            buffer for the 2-bit encoding, a fresh array for base-3.
        dim: trits per row.
        meta: ``model_id``, ``projection``, ``seed``, ``threshold``, ``tau``, ``sparsity``,
            ``in_dim`` and any extra keys given to :func:`dumps`.
        kind: ``"vectors"``, ``"knowledge"`` or ``"delta"``.
        encoding: ``"2bit"`` or ``"base3"`` (how it travelled).
        checksum: ``"crc32"`` or ``"xxh64"``.
        labels: int64 ``(count,)`` or None (zero-copy view).
        scales: float32 ``(count,)`` or None (zero-copy view).
        payload: memoryview of the raw payload bytes (zero copy).
        nbytes: size of the whole packet in bytes.
    """

    vectors: np.ndarray
    dim: int
    meta: Dict[str, Any]
    kind: str = "vectors"
    encoding: str = "2bit"
    checksum: str = "crc32"
    labels: Optional[np.ndarray] = None
    scales: Optional[np.ndarray] = None
    payload: Optional[memoryview] = field(default=None, repr=False)
    nbytes: int = 0

    @property
    def count(self) -> int:
        """Number of rows."""
        return int(self.vectors.shape[0])

    def unpack(self) -> np.ndarray:
        """int8 trits ``(count, dim)``."""
        from .packing import unpack_ternary

        return unpack_ternary(np.ascontiguousarray(self.vectors), self.dim)

    def encoder(self):
        """The :class:`ternhd.HDCEncoder` described by the metadata (``in_dim`` and ``projection``
        must be set). Raises PacketError when they are missing or this ternhd cannot build it."""
        return _encoder_from_meta(self.meta, self.dim)

    def dumps(self, **overrides: Any) -> bytes:
        """Re-serializes this packet (``encoding=``, ``checksum=`` and metadata may be overridden)."""
        kw: Dict[str, Any] = dict(self.meta)
        kw.update(kind=self.kind, encoding=self.encoding, checksum=self.checksum, labels=self.labels,
                  scales=self.scales)
        kw.update(overrides)
        return dumps(self.vectors, self.dim, **kw)


# ----------------------------------------------------------------------------- writing
def _enum_code(table: Sequence[Any], value: Any, name: str) -> int:
    for i, v in enumerate(table):
        if v == value and type(v) is type(value):
            return i
    raise ValueError(f"{name}: expected one of {tuple(table)}, got {value!r}")


def _threshold_fields(threshold: Any, tau: Any, sparsity: Any) -> Tuple[int, float]:
    if sparsity is not None:
        if threshold not in (None, "std"):
            raise ValueError("sparsity: cannot be combined with an explicit threshold")
        v = _finite(sparsity, "sparsity")
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"sparsity: must be in [0, 1], got {sparsity}")
        return 4, v
    if threshold is None:
        return 0, 0.0
    if isinstance(threshold, str):
        if threshold not in ("std", "batch"):
            raise ValueError(f"threshold: expected 'std', 'batch', a number or None, got {threshold!r}")
        v = _finite(tau, "tau")
        if v < 0:
            raise ValueError(f"tau: must be non-negative, got {tau}")
        return (1 if threshold == "std" else 2), v
    v = _finite(threshold, "threshold")
    if v < 0:
        raise ValueError(f"threshold: must be non-negative, got {threshold}")
    return 3, v


def _finite(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(v).__name__}")
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"{name}: must be finite, got {v}")
    return f


def _row_array(x: Any, count: int, dtype: Any, name: str) -> np.ndarray:
    arr, _ = to_numpy(x, name)
    if arr.ndim != 1 or arr.shape[0] != count:
        raise ValueError(f"{name}: expected shape ({count},), got {arr.shape}")
    if dtype == np.int64:
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name}: expected integers, got dtype {arr.dtype}")
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            raise ValueError(f"{name}: values must fit in int64")
    elif arr.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("<"))
    if dtype == np.float32 and not np.isfinite(out).all():
        raise ValueError(f"{name}: contains NaN or Inf (or values beyond float32)")
    return out


def dumps(vectors: Any, dim: int, *, encoding: str = "2bit", checksum: str = "crc32", kind: str = "vectors",
          labels: Any = None, scales: Any = None, model_id: str = "", projection: Optional[str] = None,
          seed: int = 0, threshold: Any = None, tau: float = 0.3, sparsity: Optional[float] = None,
          in_dim: int = 0, **extra: Any) -> bytes:
    """Serializes packed vectors and their metadata into one packet.

    Args:
        vectors: packed uint8 ``(N, ceil(dim/4))`` (numpy or CPU torch), or one row ``(ceil(dim/4),)``.
        dim: trits per row, 1 .. 2**31 - 1.
        encoding: ``"2bit"`` (default; zero-copy on load) or ``"base3"`` (20% smaller).
        checksum: ``"crc32"`` (zlib) or ``"xxh64"`` (xxhash).
        kind: ``"vectors"``, ``"knowledge"`` or ``"delta"``.
        labels: optional int64 ``(N,)`` per-row labels.
        scales: optional float32 ``(N,)`` per-row scales (ternary compression).
        model_id: up to 256 UTF-8 bytes naming the producing model.
        projection, seed, threshold, tau, sparsity, in_dim: the encoder's parameters
            (``threshold``: None, ``"std"``, ``"batch"`` or a fixed number).
        **extra: further JSON-serializable metadata (at most 1 MiB as JSON).

    Returns:
        The packet as ``bytes``.

    Raises:
        ValueError / TypeError naming the bad argument.
    """
    dim = check_int(dim, "dim", 1)
    if dim > MAX_DIM:
        raise ValueError(f"dim: at most {MAX_DIM}, got {dim}")
    enc = _enum_code(ENCODINGS, encoding, "encoding")
    knd = _enum_code(KINDS, kind, "kind")
    proj = _enum_code(PROJECTIONS, projection, "projection")
    flags = _check_checksum_name(checksum)
    tmode, tval = _threshold_fields(threshold, tau, sparsity)
    seed = check_int(seed, "seed", 0)
    if seed >= 2**64:
        raise ValueError(f"seed: must fit in 64 bits, got {seed}")
    in_dim = check_int(in_dim, "in_dim", 0)
    if in_dim >= 2**32:
        raise ValueError(f"in_dim: must fit in 32 bits, got {in_dim}")
    if not isinstance(model_id, str):
        raise TypeError(f"model_id: expected a string, got {type(model_id).__name__}")
    mid = model_id.encode("utf-8")
    if len(mid) > MAX_MODEL_ID:
        raise ValueError(f"model_id: at most {MAX_MODEL_ID} UTF-8 bytes, got {len(mid)}")
    for k in extra:
        if k in _META_KEYS:
            raise ValueError(f"{k}: given twice")
    try:
        meta = json.dumps(extra, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode("utf-8") \
            if extra else b""
    except (TypeError, ValueError) as exc:
        raise ValueError(f"extra metadata: not JSON-serializable ({exc})") from None
    if len(meta) > MAX_META:
        raise ValueError(f"extra metadata: {len(meta)} bytes of JSON, at most {MAX_META}")

    arr, _ = to_numpy(vectors, "vectors")
    if arr.dtype != np.uint8:
        raise TypeError(f"vectors: expected packed uint8 (use ternhd.pack_ternary), got dtype {arr.dtype}")
    width = (dim + 3) // 4
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"vectors: expected shape (N, {width}) for dim={dim}, got {arr.shape}")
    count = arr.shape[0]
    if count > MAX_COUNT:
        raise ValueError(f"vectors: at most {MAX_COUNT} rows")
    arr = np.ascontiguousarray(arr)
    bad = _invalid_rows(arr, dim)
    if bad >= 0:
        raise ValueError(f"vectors: row {bad} has the invalid code 0b11 or non-zero padding trits")
    payload = base3_encode(arr, dim) if enc == 1 else arr.reshape(-1)

    sections: List[Any] = [mid, meta, payload]
    if labels is not None:
        flags |= FLAG_LABELS
        sections.append(_row_array(labels, count, np.int64, "labels"))
    if scales is not None:
        flags |= FLAG_SCALES
        sections.append(_row_array(scales, count, np.float32, "scales"))
    header_size = HEADER_SIZE + len(mid) + len(meta)
    head = bytearray(_HEADER.pack(MAGIC, VERSION, flags, header_size, dim, count, enc, knd, proj, tmode, in_dim,
                                  tval, seed, len(mid), 0, len(meta), payload.nbytes, 0))
    views = [memoryview(head)[:_CHECKSUM_AT]] + [memoryview(s).cast("B") for s in sections]
    struct.pack_into("<Q", head, _CHECKSUM_AT, _checksum(flags & FLAG_XXH64, views))
    return b"".join([bytes(head)] + [memoryview(s).cast("B") for s in sections])


def _invalid_rows(p: np.ndarray, dim: int) -> int:
    """Index of the first row with code 0b11 or non-zero padding trits, or -1.

    The code-11 scan reads the matrix as 64-bit words (``w & (w >> 1) & 0x5555...``), in blocks so
    temporaries stay small; the row is located only when something is wrong."""
    if p.size == 0:
        return -1
    rows, width = p.shape
    flat = p.reshape(-1)
    n8 = flat.size // 8
    bad = False
    step = 1 << 17  # words per block (1 MiB)
    words = flat[:8 * n8].view(np.uint64) if n8 else flat[:0].view(np.uint64)
    for w0 in range(0, n8, step):
        w = words[w0:w0 + step]
        if np.bitwise_and(w & (w >> np.uint64(1)), np.uint64(0x5555555555555555)).any():
            bad = True
            break
    tail = flat[8 * n8:]
    if not bad and tail.size and ((tail >> 1) & tail & 0x55).any():
        bad = True
    pad = 4 * width - dim
    if not bad and pad and (p[:, -1] & ((1 << (2 * pad)) - 1)).any():
        bad = True
    if not bad:
        return -1
    padmask = (1 << (2 * pad)) - 1 if pad else 0
    block = max(1, (1 << 20) // max(width, 1))
    for r0 in range(0, rows, block):
        b = p[r0:r0 + block]
        rb = (((b >> 1) & b & 0x55) != 0).any(axis=1)
        if padmask:
            rb |= (b[:, -1] & padmask) != 0
        if rb.any():
            return r0 + int(np.argmax(rb))
    return -1  # pragma: no cover - the fast scan and the row scan agree


# ----------------------------------------------------------------------------- parsing
def _as_view(data: Buffer) -> memoryview:
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 1:
            raise TypeError(f"data: expected bytes or a 1-D uint8 array, got {data.dtype} {data.shape}")
        data = np.ascontiguousarray(data)
    try:
        mv = memoryview(data)
    except TypeError:
        raise TypeError(f"data: expected a bytes-like object, got {type(data).__name__}") from None
    if not mv.contiguous:
        raise TypeError("data: expected a contiguous buffer")
    return mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv


@dataclass
class _Header:
    flags: int
    header_size: int
    dim: int
    count: int
    encoding: int
    kind: int
    projection: int
    tmode: int
    in_dim: int
    tval: float
    seed: int
    mid_len: int
    meta_len: int
    payload_len: int
    checksum: int

    @property
    def total(self) -> int:
        n = self.header_size + self.payload_len
        if self.flags & FLAG_LABELS:
            n += 8 * self.count
        if self.flags & FLAG_SCALES:
            n += 4 * self.count
        return n


def _parse_header(head: memoryview) -> _Header:
    """Validates the fixed header (exactly 72 bytes available). Raises PacketError."""
    (magic, version, flags, header_size, dim, count, enc, knd, proj, tmode, in_dim, tval, seed, mid_len,
     reserved, meta_len, payload_len, checksum) = _HEADER.unpack(head)
    if magic != MAGIC:
        raise PacketError("magic: not a ternhd packet")
    if version != VERSION:
        raise PacketError(f"version: unsupported packet format version {version} (this ternhd reads {VERSION})")
    if flags & ~_KNOWN_FLAGS:
        raise PacketError(f"flags: unknown bits 0x{flags & ~_KNOWN_FLAGS:x}")
    if reserved != 0:
        raise PacketError("reserved: must be 0")
    if not 1 <= dim <= MAX_DIM:
        raise PacketError(f"dim: {dim} out of range [1, {MAX_DIM}]")
    if count > MAX_COUNT:
        raise PacketError(f"count: {count} exceeds {MAX_COUNT}")
    if enc >= len(ENCODINGS):
        raise PacketError(f"encoding: unknown code {enc}")
    if knd >= len(KINDS):
        raise PacketError(f"kind: unknown code {knd}")
    if proj >= len(PROJECTIONS):
        raise PacketError(f"projection: unknown code {proj}")
    if tmode >= len(THRESHOLD_MODES):
        raise PacketError(f"threshold: unknown mode code {tmode}")
    if not math.isfinite(tval) or tval < 0 or (tmode == 0 and tval != 0) or (tmode == 4 and tval > 1):
        raise PacketError(f"tau: invalid value {tval!r} for threshold mode {THRESHOLD_MODES[tmode]!r}")
    if mid_len > MAX_MODEL_ID:
        raise PacketError(f"model_id: length {mid_len} exceeds {MAX_MODEL_ID}")
    if meta_len > MAX_META:
        raise PacketError(f"meta: length {meta_len} exceeds {MAX_META}")
    if header_size != HEADER_SIZE + mid_len + meta_len:
        raise PacketError(f"header size: {header_size} does not match 72 + {mid_len} + {meta_len}")
    expected = count * ((dim + 3) // 4) if enc == 0 else -(-(count * dim) // 5)
    if payload_len != expected:
        raise PacketError(f"payload length: {payload_len} bytes, but {count} rows of {dim} trits "
                          f"({ENCODINGS[enc]}) take {expected}")
    return _Header(flags, header_size, dim, count, enc, knd, proj, tmode, in_dim, tval, seed, mid_len, meta_len,
                   payload_len, checksum)


def _parse(mv: memoryview, offset: int, validate: bool) -> Tuple[Packet, int]:
    """Parses the packet starting at ``offset`` of ``mv``; returns it and the offset after it."""
    avail = len(mv) - offset
    if avail < HEADER_SIZE:
        raise PacketError(f"truncated: {avail} bytes, a packet header needs {HEADER_SIZE}")
    h = _parse_header(mv[offset:offset + HEADER_SIZE])
    total = h.total
    if total > avail:
        raise PacketError(f"truncated: the packet declares {total} bytes, {avail} present")
    pk = mv[offset:offset + total]
    crc = _checksum(h.flags & FLAG_XXH64, (pk[:_CHECKSUM_AT], pk[HEADER_SIZE:]))
    if crc != h.checksum:
        raise PacketError("checksum: mismatch (corrupted or tampered packet)")
    pos = HEADER_SIZE
    try:
        model_id = bytes(pk[pos:pos + h.mid_len]).decode("utf-8")
    except UnicodeDecodeError:
        raise PacketError("model_id: not valid UTF-8") from None
    pos += h.mid_len
    extra = _parse_meta(pk[pos:pos + h.meta_len])
    pos += h.meta_len
    raw = pk[pos:pos + h.payload_len]
    pos += h.payload_len
    width = (h.dim + 3) // 4
    if h.encoding == 0:
        vectors = np.frombuffer(raw, dtype=np.uint8).reshape(h.count, width)
        if validate:
            bad = _invalid_rows(vectors, h.dim)
            if bad >= 0:
                raise PacketError(f"payload: row {bad} has the invalid code 0b11 or non-zero padding trits")
    else:
        try:
            vectors = _core.base3_decode(np.frombuffer(raw, dtype=np.uint8), h.count, h.dim)
        except ValueError as exc:
            raise PacketError(f"payload: {exc}") from None
    labels = scales = None
    if h.flags & FLAG_LABELS:
        labels = np.frombuffer(pk[pos:pos + 8 * h.count], dtype="<i8")
        pos += 8 * h.count
    if h.flags & FLAG_SCALES:
        scales = np.frombuffer(pk[pos:pos + 4 * h.count], dtype="<f4")
        pos += 4 * h.count
        if validate and not np.isfinite(scales).all():
            raise PacketError("scales: contains NaN or Inf")
    threshold: Any
    tmode = THRESHOLD_MODES[h.tmode]
    threshold = {None: None, "std": "std", "batch": "batch", "fixed": h.tval, "sparsity": "std"}[tmode]
    meta: Dict[str, Any] = dict(model_id=model_id, projection=PROJECTIONS[h.projection], seed=h.seed,
                                threshold=threshold, tau=h.tval if tmode in ("std", "batch") else None,
                                sparsity=h.tval if tmode == "sparsity" else None, in_dim=h.in_dim)
    meta.update(extra)
    pkt = Packet(vectors=vectors, dim=h.dim, meta=meta, kind=KINDS[h.kind], encoding=ENCODINGS[h.encoding],
                 checksum="xxh64" if h.flags & FLAG_XXH64 else "crc32", labels=labels, scales=scales,
                 payload=raw, nbytes=total)
    return pkt, offset + total


def _parse_meta(raw: memoryview) -> Dict[str, Any]:
    if len(raw) == 0:
        return {}
    try:
        obj = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PacketError(f"meta: not valid UTF-8 JSON ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise PacketError("meta: expected a JSON object")
    for k in obj:
        if k in _RESERVED_KEYS:
            raise PacketError(f"meta: reserved key {k!r}")
    return obj


def loads(data: Buffer, *, validate: bool = True) -> Packet:
    """Parses exactly one packet from a bytes-like object (bytes, bytearray, memoryview, mmap or a
    1-D uint8 array). The 2-bit payload, labels and scales are zero-copy views of ``data``.

    ``validate=False`` skips the scan of the 2-bit payload for the invalid code ``0b11`` / non-zero
    padding (the checksum is always verified). Raises :class:`PacketError` on any bad input.
    """
    mv = _as_view(data)
    pkt, end = _parse(mv, 0, validate)
    if end != len(mv):
        raise PacketError(f"trailing data: {len(mv) - end} bytes after the packet (use iter_stream for streams)")
    return pkt


# ----------------------------------------------------------------------------- files and streams
PathLike = Union[str, "os.PathLike[str]"]


def save(path: Union[PathLike, BinaryIO], vectors: Any, dim: int, **meta: Any) -> int:
    """Writes one packet (see :func:`dumps`) to a path or a binary file; returns the bytes written."""
    blob = dumps(vectors, dim, **meta)
    if hasattr(path, "write"):
        path.write(blob)  # type: ignore[union-attr]
    else:
        with open(path, "wb") as f:
            f.write(blob)
    return len(blob)


def _map_file(path: PathLike) -> Union[memoryview, bytes]:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return b""
        return memoryview(_mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_READ))


def load(path: PathLike, *, mmap: bool = True, validate: bool = True) -> Packet:
    """Reads one packet from a file. With ``mmap=True`` (default) the 2-bit payload is a zero-copy
    view of a read-only memory map of the file."""
    if mmap:
        return loads(_map_file(path), validate=validate)
    with open(path, "rb") as f:
        return loads(f.read(), validate=validate)


class StreamWriter:
    """Writes many packets back to back into one file::

        with ternhd.packet.StreamWriter("vectors.tnhd") as w:
            w.write(packed_a, dim, model_id="a")
            w.write_packet(blob)            # an already serialized packet
    """

    def __init__(self, target: Union[PathLike, BinaryIO]):
        if hasattr(target, "write"):
            self._f, self._own = target, False
        else:
            self._f, self._own = open(target, "wb"), True
        self.count = 0
        self.nbytes = 0

    def write(self, vectors: Any, dim: int, **meta: Any) -> int:
        """Serializes and appends one packet; returns its size in bytes."""
        return self.write_packet(dumps(vectors, dim, **meta))

    def write_packet(self, blob: Buffer) -> int:
        """Appends a serialized packet after checking it parses."""
        mv = _as_view(blob)
        loads(mv, validate=False)
        self._f.write(mv)
        self.count += 1
        self.nbytes += len(mv)
        return len(mv)

    def close(self) -> None:
        if self._own:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self) -> "StreamWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def iter_stream(source: Union[Buffer, PathLike, BinaryIO], *, validate: bool = True, mmap: bool = True,
                max_packet_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Packet]:
    """Yields the packets of a stream: a bytes-like object, a path (memory mapped unless
    ``mmap=False``) or a binary file object (read packet by packet; a packet declaring more than
    ``max_packet_bytes`` or more than the rest of a seekable file raises before anything is read).
    Raises :class:`PacketError` at the first bad or truncated packet."""
    if isinstance(source, (str, os.PathLike)):
        if mmap:
            source = _map_file(source)
        else:
            with open(source, "rb") as f:
                yield from iter_stream(f, validate=validate, max_packet_bytes=max_packet_bytes)
            return
    if hasattr(source, "read"):
        yield from _iter_file(source, validate, max_packet_bytes)  # type: ignore[arg-type]
        return
    mv = _as_view(source)  # type: ignore[arg-type]
    pos = 0
    while pos < len(mv):
        pkt, pos = _parse(mv, pos, validate)
        yield pkt


def _iter_file(f: BinaryIO, validate: bool, max_packet_bytes: int) -> Iterator[Packet]:
    max_packet_bytes = check_int(max_packet_bytes, "max_packet_bytes", HEADER_SIZE)
    remaining: Optional[int] = None
    try:
        if f.seekable():
            here = f.tell()
            remaining = f.seek(0, io.SEEK_END) - here
            f.seek(here)
    except (OSError, AttributeError):
        remaining = None
    while True:
        head = f.read(HEADER_SIZE)
        if not head:
            return
        if len(head) < HEADER_SIZE:
            raise PacketError(f"truncated: {len(head)} bytes, a packet header needs {HEADER_SIZE}")
        h = _parse_header(memoryview(head))
        total = h.total
        if total > max_packet_bytes:
            raise PacketError(f"oversized: the packet declares {total} bytes, the limit is {max_packet_bytes}")
        if remaining is not None and total > remaining:
            raise PacketError(f"truncated: the packet declares {total} bytes, {remaining} left in the file")
        rest = _read_exact(f, total - HEADER_SIZE)
        if len(rest) != total - HEADER_SIZE:
            raise PacketError(f"truncated: the packet declares {total} bytes, {HEADER_SIZE + len(rest)} present")
        if remaining is not None:
            remaining -= total
        pkt, _ = _parse(memoryview(head + rest), 0, validate)
        yield pkt


def _read_exact(f: BinaryIO, n: int, piece: int = 1 << 24) -> bytes:
    """Reads up to ``n`` bytes in pieces, so a lying length never allocates more than the bytes that
    actually arrive (plus one piece)."""
    parts: List[bytes] = []
    got = 0
    while got < n:
        b = f.read(min(piece, n - got))
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def load_stream(source: Union[Buffer, PathLike, BinaryIO], **kw: Any) -> List[Packet]:
    """All packets of a stream (see :func:`iter_stream`)."""
    return list(iter_stream(source, **kw))


# ----------------------------------------------------------------------------- encoder metadata
def _encoder_from_meta(meta: Dict[str, Any], dim: int):
    from .encoder import HDCEncoder

    if not meta.get("in_dim") or meta.get("projection") is None:
        raise PacketError("meta: the packet does not describe an encoder (in_dim and projection are required)")
    kw: Dict[str, Any] = dict(in_dim=meta["in_dim"], dim=dim, seed=meta["seed"], projection=meta["projection"])
    if meta.get("sparsity") is not None:
        kw["sparsity"] = meta["sparsity"]
    elif meta.get("threshold") in ("std", "batch"):
        kw.update(threshold=meta["threshold"], tau=meta["tau"])
    elif meta.get("threshold") is not None:
        kw["threshold"] = meta["threshold"]
    try:
        return HDCEncoder(**kw)
    except (ValueError, TypeError) as exc:
        raise PacketError(f"meta: this ternhd cannot rebuild the encoder ({exc})") from None


def encoder_meta(encoder: Any) -> Dict[str, Any]:
    for a in ("in_dim", "dim", "seed", "projection", "tau", "threshold"):
        if not hasattr(encoder, a):
            raise TypeError(f"encoder: expected a ternhd.HDCEncoder, missing attribute {a!r}")
    sparsity = getattr(encoder, "sparsity", None)
    return dict(in_dim=int(encoder.in_dim), projection=encoder.projection, seed=int(encoder.seed),
                threshold=encoder.threshold if sparsity is None else None, tau=float(encoder.tau),
                sparsity=sparsity)
