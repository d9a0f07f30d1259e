"""The bad-input matrix: every public function x {wrong dtype, wrong ndim, empty, non-contiguous,
negative strides, NaN/Inf, out-of-range values, mismatched widths, huge sizes}.

Each entry names the outcome it documents: an exception type and the argument its message starts
with, or "ok" and what is returned. ``tests/test_bad_input.py`` checks every entry, and

    python tests/bad_input_matrix.py > docs/BAD_INPUT.md

regenerates the table in the docs (a test fails when the docs are out of date).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np

import ternhd

R = np.random.default_rng(0)
T = R.integers(-1, 2, size=(6, 37), dtype=np.int8)  # trits, D = 37
P = ternhd.pack_ternary(T)  # packed (6, 10)
X = R.standard_normal((6, 37)).astype(np.float32)
HUGE = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape=(2, 1 << 29), strides=(0, 0))


@dataclass
class Entry:
    function: str
    case: str  # the category of bad input
    call: Callable[[], object]
    raises: Optional[type]  # None: documented result
    match: str  # message prefix (argument name), or the documented result
    check: Optional[Callable[[object], bool]] = None


def _nan(x):
    y = x.copy()
    y[1, 3] = np.nan
    return y


def _inf(x):
    y = x.copy()
    y[0, 0] = np.inf
    return y


def _code11(p):
    q = p.copy()
    q[2, 4] = 0b11000000
    return q


def _shape(shape, dtype=None):
    return lambda r: r.shape == shape and (dtype is None or r.dtype == dtype)


def entries() -> List[Entry]:
    E = Entry
    out = [
        # pack_ternary
        E("pack_ternary", "wrong dtype", lambda: ternhd.pack_ternary(np.array(["a", "b"])), TypeError, "t:"),
        E("pack_ternary", "wrong dtype", lambda: ternhd.pack_ternary(T.astype(np.complex64)), TypeError, "t:"),
        E("pack_ternary", "wrong ndim", lambda: ternhd.pack_ternary(np.int8(1)), ValueError, "t:"),
        E("pack_ternary", "wrong ndim", lambda: ternhd.pack_ternary(T.reshape(2, 3, 37)), None,
          "packs the last axis: (2, 3, 10)", _shape((2, 3, 10), np.uint8)),
        E("pack_ternary", "empty", lambda: ternhd.pack_ternary(np.zeros((0, 37), np.int8)), None,
          "(0, 10) uint8", _shape((0, 10), np.uint8)),
        E("pack_ternary", "empty", lambda: ternhd.pack_ternary(np.zeros((3, 0), np.int8)), None,
          "(3, 0) uint8", _shape((3, 0), np.uint8)),
        E("pack_ternary", "non-contiguous", lambda: ternhd.pack_ternary(T[:, ::2]), None,
          "same as the contiguous copy", lambda r: np.array_equal(r, ternhd.pack_ternary(T[:, ::2].copy()))),
        E("pack_ternary", "negative strides", lambda: ternhd.pack_ternary(T[::-1, ::-1]), None,
          "same as the contiguous copy", lambda r: np.array_equal(r, ternhd.pack_ternary(T[::-1, ::-1].copy()))),
        E("pack_ternary", "NaN/Inf", lambda: ternhd.pack_ternary(_nan(T.astype(np.float32))), ValueError, "t:"),
        E("pack_ternary", "out-of-range values", lambda: ternhd.pack_ternary(T * 2), ValueError, "t:"),
        E("pack_ternary", "out-of-range values", lambda: ternhd.pack_ternary(T, layout="planes"), ValueError,
          "layout:"),
        # unpack_ternary
        E("unpack_ternary", "wrong dtype", lambda: ternhd.unpack_ternary(P.astype(np.int16), 37), TypeError,
          "packed:"),
        E("unpack_ternary", "wrong dtype", lambda: ternhd.unpack_ternary(P, 37.0), TypeError, "dim:"),
        E("unpack_ternary", "wrong ndim", lambda: ternhd.unpack_ternary(np.uint8(3), 4), ValueError, "packed:"),
        E("unpack_ternary", "empty", lambda: ternhd.unpack_ternary(P[:0], 37), None, "(0, 37) int8",
          _shape((0, 37), np.int8)),
        E("unpack_ternary", "non-contiguous", lambda: ternhd.unpack_ternary(P[::2], 37), None,
          "rows 0, 2, 4", lambda r: np.array_equal(r, T[::2])),
        E("unpack_ternary", "negative strides", lambda: ternhd.unpack_ternary(P[::-1], 37), None,
          "rows reversed", lambda r: np.array_equal(r, T[::-1])),
        E("unpack_ternary", "out-of-range values", lambda: ternhd.unpack_ternary(_code11(P), 37), ValueError,
          "packed:"),
        E("unpack_ternary", "out-of-range values", lambda: ternhd.unpack_ternary(P, -1), ValueError, "dim:"),
        E("unpack_ternary", "mismatched widths", lambda: ternhd.unpack_ternary(P, 41), ValueError, "packed:"),
        E("unpack_ternary", "huge sizes", lambda: ternhd.unpack_ternary(P, 1 << 62), ValueError, "packed:"),
        # quantize
        E("quantize", "wrong dtype", lambda: ternhd.quantize(X.astype(np.complex64)), TypeError, "x:"),
        E("quantize", "wrong dtype", lambda: ternhd.quantize(X, threshold=[0.1]), TypeError, "threshold:"),
        E("quantize", "wrong ndim", lambda: ternhd.quantize(np.float32(1)), ValueError, "x:"),
        E("quantize", "empty", lambda: ternhd.quantize(X[:0]), None, "(0, 37) int8", _shape((0, 37), np.int8)),
        E("quantize", "non-contiguous", lambda: ternhd.quantize(X[:, ::3]), None, "same as the contiguous copy",
          lambda r: np.array_equal(r, ternhd.quantize(X[:, ::3].copy()))),
        E("quantize", "negative strides", lambda: ternhd.quantize(X[::-1]), None, "rows reversed",
          lambda r: np.array_equal(r, ternhd.quantize(X)[::-1])),
        E("quantize", "NaN/Inf", lambda: ternhd.quantize(_nan(X)), ValueError, "x:"),
        E("quantize", "NaN/Inf", lambda: ternhd.quantize(_inf(X), threshold="batch"), ValueError, "x:"),
        E("quantize", "NaN/Inf", lambda: ternhd.quantize(X, threshold=float("nan")), ValueError, "threshold:"),
        E("quantize", "out-of-range values", lambda: ternhd.quantize(X, tau=-1.0), ValueError, "tau:"),
        E("quantize", "out-of-range values", lambda: ternhd.quantize(X, sparsity=1.5), ValueError, "sparsity:"),
        # dot / cosine / hamming (pairwise)
        E("cosine", "wrong dtype", lambda: ternhd.cosine(P.astype(np.int8), P), TypeError, "a:"),
        E("cosine", "wrong ndim", lambda: ternhd.cosine(P[None], P), ValueError, "a:"),
        E("cosine", "empty", lambda: ternhd.cosine(P[:0], P), None, "(0, 6) float32", _shape((0, 6), np.float32)),
        E("cosine", "non-contiguous", lambda: ternhd.cosine(P[::2], P[:, :]), None, "rows 0, 2, 4 of the full result",
          lambda r: np.array_equal(r, ternhd.cosine(P, P)[::2])),
        E("cosine", "negative strides", lambda: ternhd.cosine(P, P[::-1]), None, "columns reversed",
          lambda r: np.array_equal(r, ternhd.cosine(P, P)[:, ::-1])),
        E("cosine", "out-of-range values", lambda: ternhd.cosine(_code11(P), P), ValueError, "a:"),
        E("cosine", "out-of-range values", lambda: ternhd.cosine(np.zeros((1, 10), np.uint8), P), None,
          "0.0 for the zero vector", lambda r: (r == 0).all()),
        E("cosine", "mismatched widths", lambda: ternhd.cosine(P, P[:, :9]), ValueError, "b:"),
        E("cosine", "huge sizes", lambda: ternhd.cosine(HUGE, HUGE), ValueError, "a:"),
        E("dot", "wrong dtype", lambda: ternhd.dot(P, P.astype(np.float32)), TypeError, "b:"),
        E("dot", "mismatched widths", lambda: ternhd.dot(P[:, :3], P), ValueError, "b:"),
        E("hamming", "wrong ndim", lambda: ternhd.hamming(P, P[None]), ValueError, "b:"),
        E("pairwise", "out-of-range values", lambda: ternhd.pairwise(P, P, "l2"), ValueError, "metric:"),
        # topk
        E("topk", "wrong dtype", lambda: ternhd.topk(P, P, 2.0), TypeError, "k:"),
        E("topk", "wrong dtype", lambda: ternhd.topk(P.view(np.int8), P, 2), TypeError, "queries:"),
        E("topk", "wrong ndim", lambda: ternhd.topk(P, P[0], 1), ValueError, "database:"),
        E("topk", "empty", lambda: ternhd.topk(P[:0], P, 2), None, "(0, 2) scores and indices",
          lambda r: r[0].shape == (0, 2) and r[1].shape == (0, 2)),
        E("topk", "empty", lambda: ternhd.topk(P, P[:0], 1), ValueError, "k:"),
        E("topk", "non-contiguous", lambda: ternhd.topk(P[::2], P, 3)[1], None, "rows 0, 2, 4 of the full result",
          lambda r: np.array_equal(r, ternhd.topk(P, P, 3)[1][::2])),
        E("topk", "negative strides", lambda: ternhd.topk(P, P[::-1], 6, "dot")[0], None,
          "same scores as unreversed", lambda r: np.array_equal(r, ternhd.topk(P, P, 6, "dot")[0])),
        E("topk", "out-of-range values", lambda: ternhd.topk(P, P, 0), ValueError, "k:"),
        E("topk", "out-of-range values", lambda: ternhd.topk(P, P, 7), ValueError, "k:"),
        E("topk", "out-of-range values", lambda: ternhd.topk(P, _code11(P), 1), ValueError, "database:"),
        E("topk", "mismatched widths", lambda: ternhd.topk(P[:, :5], P, 1), ValueError, "queries:"),
        E("topk", "huge sizes", lambda: ternhd.topk(P, P, 1 << 62), ValueError, "k:"),
        # Index
        E("Index", "wrong dtype", lambda: ternhd.Index(P.astype(np.int32)), TypeError, "database:"),
        E("Index", "wrong ndim", lambda: ternhd.Index(P[0]), ValueError, "database:"),
        E("Index", "out-of-range values", lambda: ternhd.Index(_code11(P)), ValueError, "database:"),
        E("Index", "huge sizes", lambda: ternhd.Index(HUGE), ValueError, "database:"),
        E("Index.topk", "mismatched widths", lambda: ternhd.Index(P).topk(P[:, :4], 1), ValueError, "queries:"),
        E("Index.topk", "out-of-range values", lambda: ternhd.Index(P).topk(P, 99), ValueError, "k:"),
        E("Index", "option for a CUDA database only", lambda: ternhd.Index(P, keep_unpacked=True), ValueError,
          "keep_unpacked:"),
        # HDCEncoder
        E("HDCEncoder", "wrong dtype", lambda: ternhd.HDCEncoder(37.5), TypeError, "in_dim:"),
        E("HDCEncoder", "out-of-range values", lambda: ternhd.HDCEncoder(37, dim=0), ValueError, "dim:"),
        E("HDCEncoder.encode", "wrong ndim", lambda: ternhd.HDCEncoder(37, dim=64).encode(X[0]), ValueError, "x:"),
        E("HDCEncoder.encode", "mismatched widths", lambda: ternhd.HDCEncoder(36, dim=64).encode(X), ValueError,
          "x:"),
        E("HDCEncoder.encode", "NaN/Inf", lambda: ternhd.HDCEncoder(37, dim=64).encode(_nan(X)), ValueError, "x:"),
        E("HDCEncoder.encode", "empty", lambda: ternhd.HDCEncoder(37, dim=64).encode(X[:0]), None,
          "(0, 16) uint8", _shape((0, 16), np.uint8)),
        E("HDCEncoder.encode", "negative strides", lambda: ternhd.HDCEncoder(37, dim=64).encode(X[::-1]), None,
          "rows reversed", lambda r: np.array_equal(r, ternhd.HDCEncoder(37, dim=64).encode(X)[::-1])),
        # HDC algebra
        E("bind", "wrong dtype", lambda: ternhd.bind(P.astype(np.int8), P), TypeError, "a:"),
        E("bind", "wrong ndim", lambda: ternhd.bind(np.uint8(3), P), ValueError, "a:"),
        E("bind", "empty", lambda: ternhd.bind(P[:0], P[:0]), None, "(0, 10) uint8", _shape((0, 10), np.uint8)),
        E("bind", "non-contiguous", lambda: ternhd.bind(P[::2], P[1::2]), None, "same as the contiguous copies",
          lambda r: np.array_equal(r, ternhd.bind(P[::2].copy(), P[1::2].copy()))),
        E("bind", "negative strides", lambda: ternhd.bind(P[::-1], P), None, "same as the contiguous copy",
          lambda r: np.array_equal(r, ternhd.bind(P[::-1].copy(), P))),
        E("bind", "out-of-range values", lambda: ternhd.bind(_code11(P), P), ValueError, "a, b:"),
        E("bind", "mismatched widths", lambda: ternhd.bind(P, P[:, :9]), ValueError, "b:"),
        E("bundle", "wrong dtype", lambda: ternhd.bundle(P.astype(np.int16)), TypeError, "vectors:"),
        E("bundle", "wrong ndim", lambda: ternhd.bundle(P[0]), ValueError, "vectors:"),
        E("bundle", "empty", lambda: ternhd.bundle(P[:0]), ValueError, "vectors:"),
        E("bundle", "NaN/Inf", lambda: ternhd.bundle(P, threshold=float("nan")), ValueError, "threshold:"),
        E("bundle", "out-of-range values", lambda: ternhd.bundle(_code11(P)), ValueError, "vectors:"),
        E("bundle", "out-of-range values", lambda: ternhd.bundle(P, threshold=-1), ValueError, "threshold:"),
        E("bundle", "mismatched widths", lambda: ternhd.bundle([P[0], P[1, :9]]), ValueError, "vectors:"),
        E("bundle", "negative strides", lambda: ternhd.bundle(P[::-1]), None, "same as unreversed (a sum)",
          lambda r: np.array_equal(r, ternhd.bundle(P))),
        E("permute", "wrong dtype", lambda: ternhd.permute(P.astype(np.float32), 1, 37), TypeError, "a:"),
        E("permute", "wrong dtype", lambda: ternhd.permute(P, 1.5, 37), TypeError, "k:"),
        E("permute", "empty", lambda: ternhd.permute(P[:0], 3, 37), None, "(0, 10) uint8",
          _shape((0, 10), np.uint8)),
        E("permute", "negative strides", lambda: ternhd.permute(P[::-1], 3, 37), None, "rows reversed",
          lambda r: np.array_equal(r, ternhd.permute(P, 3, 37)[::-1])),
        E("permute", "out-of-range values", lambda: ternhd.permute(_code11(P), 1, 37), ValueError, "a:"),
        E("permute", "mismatched widths", lambda: ternhd.permute(P, 1, 41), ValueError, "a:"),
        E("permute", "huge sizes", lambda: ternhd.permute(P, 2**62 + 5, 37), None, "k is taken modulo dim",
          lambda r: np.array_equal(r, ternhd.permute(P, (2**62 + 5) % 37, 37))),
        # ternhd.vsa (torchhd-style toolkit) and ternhd.interop (GGUF ternary blocks)
        E("vsa.level", "out-of-range values", lambda: ternhd.vsa.level(1, 64), ValueError, "num_vectors:"),
        E("vsa.random", "out-of-range values", lambda: ternhd.vsa.random(3, 64, sparsity=1.0), ValueError,
          "sparsity:"),
        E("vsa.random", "NaN/Inf", lambda: ternhd.vsa.random(3, 64, sparsity=float("nan")), ValueError, "sparsity:"),
        E("vsa.random", "wrong dtype", lambda: ternhd.vsa.random(3, 64.5), TypeError, "dimensions:"),
        E("vsa.ItemMemory.lookup", "out-of-range values", lambda: ternhd.vsa.ItemMemory(64, seed=0).lookup(["zz"]),
          ValueError, "symbols:"),
        E("interop.to_gguf", "mismatched widths", lambda: ternhd.interop.to_gguf(P, 37), ValueError, "dim:"),
        E("interop.to_gguf", "wrong dtype", lambda: ternhd.interop.to_gguf(_G256, 256, qtype="Q4_0"), ValueError,
          "qtype:"),
        E("interop.from_gguf", "mismatched widths",
          lambda: ternhd.interop.from_gguf(ternhd.interop.to_gguf(_G256, 256).reshape(-1)[:-5], "TQ2_0", 256),
          ValueError, "data:"),
        E("interop.from_gguf", "out-of-range values",
          lambda: ternhd.interop.from_gguf(_set0(ternhd.interop.to_gguf(_G256, 256).reshape(-1)), "TQ2_0", 256),
          ValueError, "data:"),
        # packets (untrusted bytes raise ternhd.PacketError, a ValueError)
        E("packet.loads", "wrong dtype", lambda: ternhd.packet.loads("text"), TypeError, "data:"),
        E("packet.loads", "empty", lambda: ternhd.packet.loads(b""), ternhd.PacketError, "truncated:"),
        E("packet.loads", "mismatched widths", lambda: ternhd.packet.loads(_PKT[:-3]), ternhd.PacketError,
          "truncated:"),
        E("packet.loads", "out-of-range values", lambda: ternhd.packet.loads(_flip(_PKT, 80)), ternhd.PacketError,
          "checksum:"),
        E("packet.loads", "huge sizes", lambda: ternhd.packet.loads(_PKT[:20] + b"\xff" * 8 + _PKT[28:]),
          ternhd.PacketError, "count:"),
        E("packet.dumps", "wrong dtype", lambda: ternhd.packet.dumps(P.astype(np.int8), 37), TypeError, "vectors:"),
        E("packet.dumps", "mismatched widths", lambda: ternhd.packet.dumps(P, 41), ValueError, "vectors:"),
        E("packet.dumps", "out-of-range values", lambda: ternhd.packet.dumps(_code11(P), 37), ValueError,
          "vectors:"),
        E("packet.dumps", "huge sizes", lambda: ternhd.packet.dumps(P, 37, model_id="x" * 100000), ValueError,
          "model_id:"),
        E("packet.dumps", "negative strides", lambda: ternhd.packet.loads(ternhd.packet.dumps(P[::-1], 37)).vectors,
          None, "rows reversed", lambda r: np.array_equal(r, P[::-1])),
        E("packet.dumps", "empty", lambda: ternhd.packet.loads(ternhd.packet.dumps(P[:0], 37)).vectors, None,
          "(0, 10) uint8", _shape((0, 10), np.uint8)),
    ]
    return out


_PKT = ternhd.packet.dumps(P, 37)
_G256 = ternhd.pack_ternary(R.integers(-1, 2, size=(2, 256), dtype=np.int8))  # GGUF rows: 256 values each


def _set0(blob: np.ndarray) -> np.ndarray:
    """A TQ2_0 block whose first value holds the code 3 (not a ternary value)."""
    out = blob.copy()
    out[0] = 0xFF
    return out


def _flip(blob: bytes, i: int) -> bytes:
    b = bytearray(blob)
    b[i] ^= 1
    return bytes(b)


def outcome(e: Entry) -> str:
    if e.raises is None:
        return f"returns {e.match}"
    return f"`{e.raises.__name__}` (`{e.match} ...`)"


def markdown() -> str:
    lines = [
        "# Bad-input matrix",
        "",
        "Generated by `python tests/bad_input_matrix.py > docs/BAD_INPUT.md` from the entries that",
        "`tests/test_bad_input.py` checks. Every message starts with the name of the offending argument.",
        "",
        "| function | bad input | call | outcome |",
        "|---|---|---|---|",
    ]
    import inspect

    for e in entries():
        src = inspect.getsource(e.call).strip()
        call = src[src.index("lambda: ") + 8:]
        depth, end = 0, len(call)
        for i, ch in enumerate(call):  # cut at the end of the lambda body
            depth += ch in "([{"
            depth -= ch in ")]}"
            if depth < 0 or (depth == 0 and ch == ","):
                end = i
                break
        lines.append(f"| `{e.function}` | {e.case} | `{call[:end].strip()}` | {outcome(e)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
