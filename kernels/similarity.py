"""Similarity of 2-bit packed ternary rows in Triton: dot, cosine, Hamming distance, top-k.

Three kernel families compute the same quantities (results identical to the C++ path; cosine within one
float32 ulp):

* **scan** (few queries, the one-query search): 32-bit words, two popcounts per word for dot and
  cosine (``dot + |b|`` and ``|b|``), one for Hamming (see the kernel). Memory-bound.
* **mma** (batches): each packed tile is decoded in registers into four int8 trit planes (one per
  2-bit slot of a byte) and multiplied with ``tl.dot`` on int8 with int32 accumulation; the dot product
  does not depend on the order of positions, so the planes never need to be interleaved. Hamming
  adds a second product of the non-zero planes (``both``): ``hamming = |a| + |b| - (3 both + dot) / 2``.
* **gemm** (large batches, methods "int8" and "fp8"): rows unpacked once (``O((M + N) D)``, the
  database in chunks) to int8, or to float8 e4m3 (exact for trits, float32 accumulation exact
  below 2**24), then a pipelined tensor-core GEMM with the same fused epilogue: ``torch._int_mm``'s
  work without its int32 output pass. ``_gemm_tma_kernel`` is the same with the operand tiles
  fetched by TMA descriptors (compute capability 9.0+, a tuning candidate).

Cosine is ``float32(dot / sqrt(|a| |b|))`` computed in float64 (0 when either row is the zero
vector) by the scan, bit-identical to the C++ path; the batched kernels multiply by per-row
``1 / sqrt(|a|)`` and ``1 / sqrt(|b|)`` in float64 instead (no per-pair divide), equal to it but for a
rare last-bit difference.

Top-k streams the database in chunks: the kernels write a 64-bit key per pair (order-preserving
score bits << 32 | inverted index) so that ``torch.topk`` gives best first with ties to the lower
index.

Large launches on a compiled GPU choose their tile configuration by timing a short candidate list
on first use per shape class (``_util.tune``; ``TERNHD_AUTOTUNE=0`` keeps the defaults).

Popcount and plane decoding have two forms chosen by a ``tl.constexpr`` flag ``HW``: PTX
instructions on a compiled GPU, portable Triton arithmetic under the interpreter.

This module holds the contract, the launch configurations and the launcher; the kernels are in
:mod:`.similarity_scan` (norms, scan) and :mod:`.similarity_gemm` (mma, GEMMs), their shared
device functions in :mod:`.similarity_jit`.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import triton

from ._util import (
    autotune_enabled,
    check_int,
    check_tensor,
    hw_popcount,
    interpreting,
    launch,
    new_flag,
    raise_if,
    size_class,
    tune,
)
from .similarity_gemm import _gemm_kernel, _gemm_tma_kernel, _mma_kernel
from .similarity_scan import _norms_kernel, _scan_kernel

__all__ = ["pairwise", "dot", "cosine", "hamming", "topk", "row_norms", "fp8_supported", "tma_supported", "METRICS",
           "METHODS", "SCAN_MAX_QUERIES"]

METRICS = ("cosine", "dot", "hamming")
_METRIC_ID = {"dot": 0, "cosine": 1, "hamming": 2}
#: Query batches up to this size use the popcount scan kernel, larger ones the int8 ``tl.dot`` kernel.
SCAN_MAX_QUERIES = 8
_BAD_MSG = "{}: contains the invalid 2-bit code 0b11"


# ----------------------------------------------------------------------------- launch helpers
def _cfg(bm, bn, bk, w, st, gm=8, **extra):
    return dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=gm, num_warps=w, num_stages=st, **extra)


#: Default launch configurations on a compiled GPU, used for small problems and with
#: ``TERNHD_AUTOTUNE=0``; every public function also takes ``config=`` to override them.
MMA_CONFIG = _cfg(128, 128, 64, 8, 3, SPLIT=2)
MMA_CONFIG_SMALL_M = _cfg(64, 64, 64, 4, 3)
INT8_CONFIG = _cfg(128, 128, 128, 8, 3, SPLIT=2)
SCAN_CONFIG = dict(BLOCK_N=32, BLOCK_W=32, num_warps=4, num_stages=1)
#: Candidates timed on first use (per shape class, see ``_util.tune``) for problems of at least
#: ``TUNE_MIN_WORK[kind]`` (GEMM, mma: M * N * packed bytes; scan: M * N * words). Each list holds the
#: configurations that measured best on an H200 (docs/GPU.md) and their neighbours;
#: ``SPLIT`` (epilogue on 2 column halves or 4 quarters) keeps the cosine epilogue of the fp8 GEMM
#: free of register spills on the wide tiles in an sm_90 build; which split does depends on the
#: triton version (2 with triton 3.9, 4 with 3.6: ``python benchmarks/sass_report.py``), so both
#: are candidates. The int8 GEMM spills on the wide tiles either way.
GEMM_CANDIDATES = (INT8_CONFIG, _cfg(128, 256, 128, 8, 3, SPLIT=2), _cfg(128, 256, 128, 8, 3, SPLIT=4),
                   _cfg(256, 128, 128, 8, 3, SPLIT=2), _cfg(256, 128, 128, 8, 3, SPLIT=4),
                   _cfg(128, 256, 64, 8, 4, SPLIT=4), _cfg(64, 128, 128, 4, 4))
#: Further candidates where the GPU has a tensor memory accelerator (compute capability 9.0+):
#: operand tiles fetched by TMA descriptors (``_gemm_tma_kernel``).
GEMM_TMA_CANDIDATES = (_cfg(128, 128, 128, 8, 3, SPLIT=2, TMA=True), _cfg(128, 256, 128, 8, 3, SPLIT=2, TMA=True),
                       _cfg(128, 256, 128, 8, 3, SPLIT=4, TMA=True))
MMA_CANDIDATES = (MMA_CONFIG, MMA_CONFIG_SMALL_M, _cfg(128, 128, 128, 8, 2, SPLIT=2), _cfg(64, 128, 64, 4, 3),
                  _cfg(128, 64, 64, 4, 3))
SCAN_CANDIDATES = tuple(dict(BLOCK_N=n, BLOCK_W=w, num_warps=nw, num_stages=1, PREFETCH=pf) for n, w, nw, pf in (
    (32, 32, 4, False), (32, 32, 4, True), (64, 32, 4, False), (64, 32, 8, True), (16, 64, 4, False),
    (16, 64, 4, True), (32, 64, 8, True), (128, 16, 8, False)))
TUNE_MIN_WORK = {"scan": 1 << 26, "mma": 1 << 31, "gemm": 1 << 31}
#: Query batches of at least this size use the "fp8" method on GPUs of compute capability 8.9+, else
#: "int8" (unpack once, tensor-core GEMM); smaller ones above SCAN_MAX_QUERIES the "mma" method
#: (decode in registers, no unpacked copy).
INT8_MIN_QUERIES = 256
#: Database rows unpacked at a time by the "int8" / "fp8" methods (bounds their extra memory).
INT8_CHUNK = 65536
_INTERPRETER_CONFIG = {"scan": dict(BLOCK_N=16, BLOCK_W=16, num_warps=4),
                       "mma": dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=16, GROUP_M=4, num_warps=4, SPLIT=2),
                       "gemm": dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=32, GROUP_M=4, num_warps=4, SPLIT=2)}


def _config(kind: str, device: torch.device, config: Optional[dict], key: tuple, work: int, run) -> dict:
    """Launch configuration of a ``kind`` kernel: ``config`` if given; the small interpreter tiles on
    CPU; on a compiled GPU the tuned choice among the candidates for large problems (``work`` at
    least ``TUNE_MIN_WORK[kind]`` and tuning enabled), else the default."""
    if config is not None:
        return dict(config)
    if device.type != "cuda" or interpreting():
        return dict(_INTERPRETER_CONFIG[kind])
    if kind == "scan":
        default, candidates = SCAN_CONFIG, SCAN_CANDIDATES
    elif kind == "gemm":
        default, candidates = INT8_CONFIG, GEMM_CANDIDATES + (GEMM_TMA_CANDIDATES if tma_supported(device) else ())
    else:
        default, candidates = (MMA_CONFIG if key[-2] > 64 else MMA_CONFIG_SMALL_M), MMA_CANDIDATES
    if work < TUNE_MIN_WORK[kind] or not autotune_enabled():
        return dict(default)
    return tune(f"similarity.{kind}", key, candidates, run)


def fp8_supported(device: torch.device) -> bool:
    """Whether the "fp8" method can run on ``device``: float8 e4m3 tensor-core products need
    compute capability 8.9 (Ada) or later; the interpreter runs them on CPU."""
    if device.type != "cuda":
        return interpreting()
    return interpreting() or torch.cuda.get_device_capability(device) >= (8, 9)


def tma_supported(device: torch.device) -> bool:
    """Whether GEMM launch configs with ``TMA=True`` (tensor-memory-accelerator descriptors) can run
    on ``device``: compute capability 9.0+ and a triton with ``triton.tools.tensor_descriptor``;
    the interpreter emulates them."""
    try:
        from triton.tools.tensor_descriptor import TensorDescriptor  # noqa: F401
    except ImportError:
        return False
    if device.type != "cuda" or interpreting():
        return interpreting()
    return torch.cuda.get_device_capability(device) >= (9, 0)


def _unpacked(p: torch.Tensor, fp8: bool = False) -> torch.Tensor:
    """Packed rows (R, B) unpacked to trits (R, K), K = 16 * ceil(B / 4) (zero padding), so that
    rows stay 16-byte aligned for the tensor-core loads: int8, or float8 e4m3 with ``fp8``."""
    from .pack import unpack_rows

    B = p.shape[1]
    if B % 4:
        p = torch.nn.functional.pad(p, (0, 4 - B % 4))
    return unpack_rows(p.contiguous(), 4 * p.shape[1], check=False, fp8=fp8)  # validated by row_norms


def row_norms(p: torch.Tensor, name: str = "p", flag: Optional[torch.Tensor] = None, code: int = 1) -> torch.Tensor:
    """Non-zeros per row of packed uint8 ``(R, B)`` -> int32 ``(R,)``; ValueError on code ``11``
    (or, when a ``flag`` is passed, ``flag`` raised to ``code`` for the caller to check)."""
    R, B = p.shape
    norms = torch.empty(R, dtype=torch.int32, device=p.device)
    if R == 0:
        return norms
    if B == 0:
        return norms.zero_()
    own = flag is None
    if own:
        flag = new_flag(p.device)
    block_r = 16
    block_b = min(256 if p.device.type == "cuda" and not interpreting() else 64, triton.next_power_of_2(B))
    _norms_kernel[(triton.cdiv(R, block_r),)](p, norms, flag, code, R, B, BLOCK_R=block_r, BLOCK_B=block_b)
    if own:
        raise_if(flag, _BAD_MSG.format(name))
    return norms


def _check_flag(flag: torch.Tensor, names: Tuple[str, str]) -> None:
    """One device-to-host sync for both operands: 2 = the first is invalid, 1 = the second."""
    v = int(flag.item())
    if v:
        raise ValueError(_BAD_MSG.format(names[0] if v >= 2 else names[1]))


def _words(p: torch.Tensor) -> torch.Tensor:
    """Packed rows (R, B) as int32 words (R, ceil(B/4)), zero-padded (zero trits change nothing)."""
    R, B = p.shape
    if B % 4:
        p = torch.nn.functional.pad(p, (0, 4 - B % 4))
    return p.contiguous().view(torch.int32)


def _as_packed(x, name: str, allow_1d: bool = True) -> torch.Tensor:
    x = check_tensor(x, name)
    if x.dtype != torch.uint8:
        raise TypeError(f"{name}: packed vectors must be uint8, got {x.dtype}")
    if x.dim() == 1 and allow_1d:
        x = x.reshape(1, -1)
    elif x.dim() != 2:
        raise ValueError(f"{name}: expected a 2-D packed array (rows, bytes){' or one 1-D row' if allow_1d else ''}, "
                         f"got shape {tuple(x.shape)}")
    return x.contiguous()


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {METRICS}, got {metric!r}")


def _scores(a: torch.Tensor, b: torch.Tensor, metric: str, key: bool, n_off: int, out: torch.Tensor,
            na: Optional[torch.Tensor], nb: Optional[torch.Tensor], method: str, hw: Optional[bool],
            flag: torch.Tensor, config: Optional[dict] = None, ub: Optional[torch.Tensor] = None) -> None:
    """Fills ``out`` (M, N) with scores (or top-k keys) of packed a (M, B) against b (N, B); the scan
    raises ``flag`` to 1 on an invalid code in b (a is validated by :func:`row_norms`). ``ub``: b
    already unpacked by :func:`_unpacked` for the "int8" / "fp8" method (an index's cached copy)."""
    M, B = a.shape
    N = b.shape[0]
    if M == 0 or N == 0:
        return
    hw = hw_popcount(a.device) if hw is None else bool(hw)
    mid = _METRIC_ID[metric]
    if method == "scan":
        aw, bw = _words(a), _words(b)
        W = aw.shape[1]

        def run(cfg):
            grid = (M * triton.cdiv(N, cfg["BLOCK_N"]),)
            _scan_kernel[grid](aw, bw, out, flag, 1, M, N, W, n_off, out.stride(0), METRIC=mid, KEY=key, HW=hw, **cfg)

        run(_config("scan", a.device, config, (mid, key, hw, W, size_class(M), size_class(N)), M * N * W, run))
    elif method in ("int8", "fp8"):
        fp8 = method == "fp8"
        ua = _unpacked(a, fp8)
        K = ua.shape[1]
        cfg = None
        for c0 in range(0, N, INT8_CHUNK):
            uc = _unpacked(b[c0:c0 + INT8_CHUNK], fp8) if ub is None else ub[c0:c0 + INT8_CHUNK]
            nc = uc.shape[0]
            args = (ua, uc, na, nb[c0:c0 + nc], out[:, c0:c0 + nc], M, nc, K, n_off + c0, out.stride(0))

            def run(c, args=args, nc=nc):
                grid = (triton.cdiv(M, c["BLOCK_M"]) * triton.cdiv(nc, c["BLOCK_N"]),)
                c = dict(c)
                if c.pop("TMA", False):  # no smaller-tile fallback: the descriptors fix the block shape
                    from triton.tools.tensor_descriptor import TensorDescriptor

                    descs = (TensorDescriptor.from_tensor(args[0], [c["BLOCK_M"], c["BLOCK_K"]]),
                             TensorDescriptor.from_tensor(args[1], [c["BLOCK_N"], c["BLOCK_K"]]))
                    _gemm_tma_kernel[grid](*descs, *args[2:], METRIC=mid, KEY=key, FP8=fp8, **c)
                    return {**c, "TMA": True}
                return launch(_gemm_kernel, grid, args, c, METRIC=mid, KEY=key, FP8=fp8)

            if cfg is None:
                cfg = _config("gemm", a.device, config, (method, mid, key, K, size_class(M), size_class(nc)),
                              M * nc * B, run)
            cfg = run(cfg)
    else:
        def run(c):
            grid = (triton.cdiv(M, c["BLOCK_M"]) * triton.cdiv(N, c["BLOCK_N"]),)
            return launch(_mma_kernel, grid, (a, b, na, nb, out, M, N, B, n_off, out.stride(0)), c, METRIC=mid,
                          KEY=key, HW=hw)

        run(_config("mma", a.device, config, (mid, key, hw, B, size_class(M), size_class(N)), M * N * B, run))


METHODS = ("scan", "mma", "int8", "fp8")


def _method(M: int, method: Optional[str], device: torch.device) -> str:
    if method is None:
        if M <= SCAN_MAX_QUERIES:
            return "scan"
        if M < INT8_MIN_QUERIES:
            return "mma"
        # fp8 on compiled GPUs that have it: its cosine epilogue stays in registers on the wide
        # (128 x 256) tiles where the int8 one spills (benchmarks/sass_report.py); same results
        return "fp8" if device.type == "cuda" and not interpreting() and fp8_supported(device) else "int8"
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS} or None, got {method!r}")
    if method == "fp8" and not fp8_supported(device):
        raise ValueError("method: 'fp8' needs a GPU of compute capability 8.9 or later")
    return method


def pairwise(a: torch.Tensor, b: torch.Tensor, metric: str = "cosine", *, method: Optional[str] = None,
             hw: Optional[bool] = None, config: Optional[dict] = None) -> torch.Tensor:
    """All-pairs similarity of packed rows, as ``ternhd.pairwise``.

    Args:
        a: packed uint8 ``(M, B)`` or one row ``(B,)``; b: packed uint8 ``(N, B)`` or ``(B,)``.
        metric: ``"cosine"`` (float32), ``"dot"`` or ``"hamming"`` (int32).
        method: ``"scan"`` (popcount), ``"mma"`` (trit planes decoded in registers, int8 ``tl.dot``),
            ``"int8"`` (rows unpacked to int8 once, then an int8 GEMM with the fused epilogue),
            ``"fp8"`` (the same on float8 e4m3 operands; compute capability 8.9+) or ``None``: scan up
            to ``SCAN_MAX_QUERIES`` rows of ``a``, mma below ``INT8_MIN_QUERIES``, from there fp8 on
            a GPU that has it, else int8.
        hw: use the hardware popcount / PTX plane decoding (default: on a compiled GPU only).
        config: launch meta-parameters overriding the tuned / default configuration
            (``SCAN_CONFIG``, ``MMA_CONFIG``, ``INT8_CONFIG``).

    Returns:
        ``(M, N)``; a 1-D ``a`` drops the M axis, a 1-D ``b`` the N axis (0-d for two rows).
    """
    _check_metric(metric)
    a2, b2 = _as_packed(a, "a"), _as_packed(b, "b")
    if a2.device != b2.device:
        raise ValueError(f"b: on {b2.device} but a is on {a2.device}")
    if a2.shape[1] != b2.shape[1]:
        raise ValueError(f"b: packed row width {b2.shape[1]} does not match a's {a2.shape[1]}")
    out = _pairwise_rows(a2, b2, metric, _method(a2.shape[0], method, a2.device), ("a", "b"), hw, config)
    if a.dim() == 1 and b.dim() == 1:
        return out.reshape(())
    if a.dim() == 1:
        return out[0]
    if b.dim() == 1:
        return out[:, 0].contiguous()
    return out


def _pairwise_rows(a2: torch.Tensor, b2: torch.Tensor, metric: str, how: str, names: Tuple[str, str],
                   hw: Optional[bool], config: Optional[dict], nb: Optional[torch.Tensor] = None,
                   ub: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(M, N) scores of 2-D packed rows of equal width by method ``how``; ``names`` name a and b in
    errors. ``nb`` / ``ub``: b's norms / unpacked rows where already known (an index's; b is then
    not validated again)."""
    M, N = a2.shape[0], b2.shape[0]
    out = torch.empty((M, N), dtype=torch.float32 if metric == "cosine" else torch.int32, device=a2.device)
    flag = new_flag(a2.device)
    na = row_norms(a2, names[0], flag, 2)
    if nb is None and how != "scan":
        nb = row_norms(b2, names[1], flag, 1)
    if M and N and a2.shape[1] == 0:
        out.zero_()
    else:
        _scores(a2, b2, metric, False, 0, out, na, nb, how, hw, flag, config=config, ub=ub)
    _check_flag(flag, names)
    return out


def dot(a: torch.Tensor, b: torch.Tensor, **kw) -> torch.Tensor:
    """Packed dot products, int32 (see :func:`pairwise`)."""
    return pairwise(a, b, "dot", **kw)


def cosine(a: torch.Tensor, b: torch.Tensor, **kw) -> torch.Tensor:
    """Packed cosine similarity, float32; 0 where either row is the zero vector."""
    return pairwise(a, b, "cosine", **kw)


def hamming(a: torch.Tensor, b: torch.Tensor, **kw) -> torch.Tensor:
    """Number of differing trits, int32."""
    return pairwise(a, b, "hamming", **kw)


def _decode_keys(keys: torch.Tensor, metric: str) -> Tuple[torch.Tensor, torch.Tensor]:
    ordered = (keys >> 32).to(torch.int32)
    idx = (4294967295 - (keys & 4294967295)).to(torch.int64)
    if metric == "dot":
        return ordered, idx
    if metric == "hamming":
        return -ordered, idx
    bits = torch.where(ordered >= 0, ordered, ordered ^ 0x7FFFFFFF)
    return bits.view(torch.float32), idx


def topk(queries: torch.Tensor, database: torch.Tensor, k: int, metric: str = "cosine", *,
         method: Optional[str] = None, hw: Optional[bool] = None,
         chunk: Optional[int] = None, config: Optional[dict] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best database rows per query, as ``ternhd.topk``.

    Args:
        queries: packed uint8 ``(M, B)`` or ``(B,)``; database: packed uint8 ``(N, B)``.
        k: 1 <= k <= N. metric: ``"cosine"``, ``"dot"`` or ``"hamming"``.
        method, hw, config: as in :func:`pairwise`. chunk: database rows scored per step (default: bounded
            so the ``M x chunk`` int64 keys take at most 256 MiB).

    Returns:
        ``(scores, indices)``: float32 (cosine) or int32 scores and int64 indices, ``(M, k)`` (or
        ``(k,)`` for a 1-D query), best first (highest cosine/dot, lowest hamming), ties to the lower
        index.
    """
    _check_metric(metric)
    k = check_int(k, "k", 1)
    q2 = _as_packed(queries, "queries")
    d2 = _as_packed(database, "database", allow_1d=False)
    if q2.device != d2.device:
        raise ValueError(f"database: on {d2.device} but queries are on {q2.device}")
    if q2.shape[1] != d2.shape[1]:
        raise ValueError(f"queries: packed row width {q2.shape[1]} does not match the database's {d2.shape[1]}")
    scores, idx = _topk_rows(q2, d2, k, metric, _method(q2.shape[0], method, q2.device), hw, chunk, config)
    if queries.dim() == 1:
        return scores[0], idx[0]
    return scores, idx


def _topk_rows(q2: torch.Tensor, d2: torch.Tensor, k: int, metric: str, how: str, hw: Optional[bool],
               chunk: Optional[int], config: Optional[dict], nb: Optional[torch.Tensor] = None,
               ub: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """(M, k) top-k of 2-D packed queries against a database of the same width by method ``how``;
    ``nb`` / ``ub`` as in :func:`_pairwise_rows`."""
    M, N = q2.shape[0], d2.shape[0]
    if k > N:
        raise ValueError(f"k: {k} exceeds the database size {N}")
    if N >= 2 ** 32 - 1:
        raise ValueError(f"database: at most 2**32 - 2 rows are supported, got {N}")
    flag = new_flag(q2.device)
    na = row_norms(q2, "queries", flag, 2)
    if nb is None and how != "scan":
        nb = row_norms(d2, "database", flag, 1)
    if chunk is None:
        chunk = max(k, min(N, (1 << 25) // max(M, 1)))
    chunk = max(int(chunk), k)
    best = None
    for n0 in range(0, N, chunk):
        part = d2[n0:n0 + chunk]
        keys = torch.empty((M, part.shape[0]), dtype=torch.int64, device=q2.device)
        if q2.shape[1] == 0:  # zero-width rows: every score is 0
            idx = torch.arange(n0, n0 + part.shape[0], device=q2.device, dtype=torch.int64)
            keys.copy_((4294967295 - idx).expand(M, -1))
        else:
            _scores(q2, part, metric, True, n0, keys, na, None if nb is None else nb[n0:n0 + chunk], how, hw,
                    flag, config=config, ub=None if ub is None else ub[n0:n0 + chunk])
        if best is not None:
            keys = torch.cat([best, keys], dim=1)
        best = torch.topk(keys, min(k, keys.shape[1]), dim=1, largest=True, sorted=True).values
    _check_flag(flag, ("queries", "database"))
    return _decode_keys(best, metric)
