"""Kernel workloads and their baselines, shared by ``ternhd bench`` and ``benchmarks/``.

Each :class:`Case` is one timed callable doing a fixed amount of work (``units`` pairs or bytes).
Cases in the same ``group`` do the same work, so their throughputs compare directly; the targets
below are ratios of a ternhd case over a baseline case measured in the same run.

``ternhd bench`` (:func:`run`) keeps to a time budget (120 s by default, from the start of the run):
every baseline carries a *probe*, one small call of the same work, timed once and extrapolated to
the full call; a case whose single call would take longer than the per-call limit (or than the
time left) is skipped with the reason printed, instead of stalling the run (``torch._int_mm`` took
124 s for one call on a 2-core AVX2 machine without VNNI). Cases of a group are then timed in
interleaved rounds (A B C, A B C, ...), so that a load change on a shared machine hits every case
of the group alike and the ratios stay meaningful.

Threads: :func:`pin_threads` sets every library's thread count to the same number (the cores this
process may use, unless told) and returns what each one reports; the table prints it.
"""
from __future__ import annotations

import gc
import importlib
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

import ternhd

from . import reference

__all__ = ["Case", "Family", "FAMILIES", "similarity_cases", "topk_cases", "hnsw_cases", "pack_cases", "quantize_cases",
           "all_cases", "TARGETS", "ABSOLUTE_TARGETS", "encode_cases", "algebra_cases", "naive_numpy_encode",
           "time_case", "run", "run_cases", "format_table", "machine", "pin_threads", "thread_counts",
           "default_threads", "random_packed", "numpy_pack", "numpy_unpack", "numpy_bitwise_bind", "numpy_bundle",
           "numpy_roll_permute", "numpy_shift_permute", "numkong_topk", "DEFAULT_BUDGET_S"]

# (group, ternhd case, baseline case) -> the minimum throughput ratio of the ternhd case over the
# baseline on the same work in the same run: similarity and search beat float GEMM and faiss binary;
# exact top-10 over 100,000 x 4,096 trits (issue 14) beats faiss and NumKong on the same 1,024 B rows
TARGETS: Dict[Tuple[str, str, str], float] = {
    ("cosine", "ternhd.cosine", "torch-f32-matmul"): 2.5,
    ("cosine", "ternhd.cosine", "faiss-binary-top10"): 1.8,
    ("top10", "ternhd.Index.topk", "faiss.IndexBinaryFlat"): 2.0,
    ("top10", "ternhd.Index.topk", "numkong.hammings_packed+argpartition"): 1.5,
    # asymmetric search: float32 queries at least half the ternary queries' rate (issue 14)
    ("top10", "ternhd.Index.search(float32)", "ternhd.Index.topk"): 0.5,
}
# (group, case) -> minimum throughput in units/s
ABSOLUTE_TARGETS: Dict[Tuple[str, str], float] = {("pack", "ternhd.pack_ternary"): 5e9}

#: ``ternhd bench``'s default time budget in seconds, counted from the start of :func:`run`
DEFAULT_BUDGET_S = 100.0


@dataclass
class Case:
    group: str
    name: str
    fn: Callable[[], object]
    units: float  # work per call
    unit: str  # "pairs", "B", "trits", "queries"
    role: str = "baseline"  # "ternhd" or "baseline"
    note: str = ""
    #: run once before timing (e.g. building an HNSW graph); may return text appended to the note
    setup: Optional[Callable[[], Optional[str]]] = field(default=None, repr=False)
    #: one small call of the same work (``probe_units`` of it): timed once, extrapolated to ``units``
    probe: Optional[Callable[[], object]] = field(default=None, repr=False)
    probe_units: float = 0.0
    #: seconds ``setup`` would take, estimated from a small build (called before ``setup``)
    setup_estimate: Optional[Callable[[], Tuple[float, str]]] = field(default=None, repr=False)


# ----------------------------------------------------------------------------- threads
_STATE: Dict[str, object] = {"threads": None, "pool": None, "blas": None}


def default_threads() -> int:
    """The cores this process may run on (its affinity mask), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def _optional(name: str):
    """The module ``name`` (``"usearch.index"`` gives the submodule), or None when not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _threads() -> int:
    n = _STATE["threads"]
    return int(n) if n else ternhd.get_num_threads()


def _pool() -> ThreadPoolExecutor:
    """The worker threads that split single-threaded baselines (NumKong) over ``_threads()``."""
    pool, n = _STATE["pool"], _threads()
    if pool is None or _STATE.get("pool_threads") != n:
        if pool is not None:
            pool.shutdown()  # type: ignore[attr-defined]
        pool = _STATE["pool"] = ThreadPoolExecutor(n, thread_name_prefix="ternhd-bench")
        _STATE["pool_threads"] = n
    return pool  # type: ignore[return-value]


def pin_threads(n: Optional[int] = None) -> Dict[str, str]:
    """Sets ternhd, torch, faiss, numpy's BLAS and the bench's own worker pool to ``n`` threads.

    ``n`` defaults to :func:`default_threads`. NumKong calls are single-threaded, so the bench
    splits their query rows over ``n`` Python threads (NumKong releases the GIL); usearch gets
    ``threads=n`` in every call. Returns :func:`thread_counts`."""
    n = default_threads() if n is None else int(n)
    if n < 1:
        raise ValueError(f"n: threads must be at least 1, got {n}")
    _STATE["threads"] = n
    # BLAS first: an OpenMP build of OpenBLAS (faiss's) sets its count through omp_set_num_threads,
    # which can resolve to torch's libgomp; torch and faiss are set after it, so their counts hold.
    threadpoolctl = _optional("threadpoolctl")
    if threadpoolctl is not None:
        if _STATE["blas"] is not None:
            _STATE["blas"].restore_original_limits()  # type: ignore[attr-defined]
        _STATE["blas"] = threadpoolctl.threadpool_limits(limits=n, user_api="blas")
    ternhd.set_num_threads(n)
    torch = _optional("torch")
    if torch is not None:
        torch.set_num_threads(n)
    faiss = _optional("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(n)
    return thread_counts()


def thread_counts() -> Dict[str, str]:
    """What each library reports (or what the bench passes it) as its thread count, as text."""
    out = {"ternhd": str(ternhd.get_num_threads())}
    torch = _optional("torch")
    out["torch"] = f"{torch.get_num_threads()} (intra-op)" if torch is not None else "not installed"
    faiss = _optional("faiss")
    out["faiss"] = f"{faiss.omp_get_max_threads()} (OpenMP)" if faiss is not None else "not installed"
    n = _threads()
    out["numkong"] = (f"{n} (query rows split over {n} Python threads; one call is single-threaded)"
                      if _optional("numkong") is not None else "not installed")
    out["usearch"] = f"{n} (threads={n} in every call)" if _optional("usearch") is not None else "not installed"
    threadpoolctl = _optional("threadpoolctl")
    if threadpoolctl is not None:
        blas = [f"{i['internal_api']} {i['num_threads']}" for i in threadpoolctl.threadpool_info()
                if i.get("user_api") == "blas"]
        out["numpy BLAS"] = ", ".join(dict.fromkeys(blas)) or "none found"
    else:
        out["numpy BLAS"] = "not pinned (threadpoolctl not installed)"
    return out


def format_threads(counts: Dict[str, str]) -> str:
    return "threads: " + "; ".join(f"{k} {v}" for k, v in counts.items())


# ----------------------------------------------------------------------------- data
# The 81 bytes whose four 2-bit codes are all valid (00, 01, 10), so that a uniform byte in 0..80
# is four uniform independent trits: 100,000 rows of 4,096 trits come from 102 MB of random bytes
# instead of 410 MB of int8 trits and a pack.
_VALID_BYTES = np.array([(a << 6) | (b << 4) | (c << 2) | d for a in range(3) for b in range(3)
                         for c in range(3) for d in range(3)], np.uint8)


def random_packed(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    """uint8 ``(rows, dim // 4)``: packed rows of uniform random trits (``dim`` a multiple of 4)."""
    if dim % 4:
        raise ValueError(f"dim: must be a multiple of 4, got {dim}")
    return _VALID_BYTES[rng.integers(0, 81, size=(rows, dim // 4), dtype=np.uint8)]


def _trits(rng, shape):
    return rng.integers(-1, 2, size=shape, dtype=np.int8)


# ----------------------------------------------------------------------------- numpy baselines
# What a competent numpy user writes for the 2-bit layout of docs/FORMAT.md (trit i at bits
# 6 - 2 (i % 4) of byte i // 4; codes 0 -> 00, +1 -> 01, -1 -> 10): whole-array vectorized ops,
# no per-element Python. ternhd.reference is the clarity-first oracle; these are the speed bar.
_SHIFTS = np.array([6, 4, 2, 0], np.uint8)


def numpy_pack(t: np.ndarray) -> np.ndarray:
    """int8 ``(..., D)`` in {-1, 0, 1}, D a multiple of 4 -> uint8 ``(..., D / 4)`` (no validation).

    The int8 bytes themselves give the codes: ``t & 3`` is 0, 1 or 3, and ``c ^ (c >> 1)`` turns
    3 (-1) into 2; then four strided byte columns shift into one byte. (Reading four codes as one
    uint32 and shifting that measured 2.6x slower; np.packbits on interleaved bit planes ~7% slower.)"""
    t = np.ascontiguousarray(t, dtype=np.int8)
    if t.shape[-1] % 4:
        raise ValueError(f"t: the last axis must be a multiple of 4, got {t.shape[-1]}")
    c = t.view(np.uint8) & np.uint8(3)
    c ^= c >> np.uint8(1)
    c = c.reshape(t.shape[:-1] + (t.shape[-1] // 4, 4))
    out = c[..., 0] << np.uint8(6)
    out |= c[..., 1] << np.uint8(4)
    out |= c[..., 2] << np.uint8(2)
    out |= c[..., 3]
    return out


# byte -> its 4 trits as int8, read as one little-endian uint32 (a single gather per byte)
_UNPACK_LUT = np.array([[(0, 1, -1, 0)[(b >> s) & 3] for s in (6, 4, 2, 0)] for b in range(256)],
                       np.int8).view("<u4").reshape(256)


def numpy_unpack(p: np.ndarray, dim: int) -> np.ndarray:
    """uint8 ``(..., B)`` -> int8 ``(..., dim)`` by a 256-entry table (code 11 reads as 0, unchecked)."""
    p = np.asarray(p, dtype=np.uint8)
    out = _UNPACK_LUT[p].view(np.int8).reshape(p.shape[:-1] + (4 * p.shape[-1],))
    return out if dim == out.shape[-1] else out[..., :dim]


def numpy_bitwise_bind(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """bind with numpy on the packed words: the same formula as the native kernel."""
    m = np.uint64(0x5555555555555555)
    one = np.uint64(1)
    wa, wb = a.view(np.uint64), b.view(np.uint64)
    sb = ((wb >> one) & m) | ((wb & m) << one)
    x, y = wa & wb, wa & sb
    return ((((x | (x >> one)) & m) | (((y | (y >> one)) & m) << one))).view(np.uint8)


def numpy_bundle(groups: np.ndarray) -> np.ndarray:
    """Packed ``(G, n, B)`` -> ``(G, B)``: majority by table unpack, int16 column sums, sign, pack."""
    s = numpy_unpack(groups, 4 * groups.shape[-1]).sum(axis=-2, dtype=np.int16)
    return numpy_pack(np.sign(s).astype(np.int8))


def numpy_roll_permute(a: np.ndarray, k: int, dim: int) -> np.ndarray:
    """``numpy.roll`` of the trits by ``k``: table unpack, roll, vectorized pack (dim % 4 == 0)."""
    return numpy_pack(np.roll(numpy_unpack(a, dim), k, axis=-1))


def numpy_shift_permute(a: np.ndarray, k: int, dim: int) -> np.ndarray:
    """The same roll as a bit rotation of the packed rows, read as big-endian uint64 words, so the
    trit stream runs from the most significant bit: roll whole words, then shift the 2k % 64 bits
    across neighbours. Needs ``dim % 32 == 0`` (rows of whole words, no padding trits)."""
    if dim % 32:
        raise ValueError(f"dim: the word rotation needs a multiple of 32, got {dim}")
    s = 2 * (k % dim)
    q, r = divmod(s, 64)
    w = np.ascontiguousarray(a, dtype=np.uint8).view(">u8").astype(np.uint64)
    w = np.roll(w, q, axis=-1)
    if r:
        w = (w >> np.uint64(r)) | (np.roll(w, 1, axis=-1) << np.uint64(64 - r))
    return w.astype(">u8").view(np.uint8)


# ----------------------------------------------------------------------------- similarity
def similarity_cases(m: int = 256, n: int = 20000, dim: int = 4096, seed: int = 0) -> List[Case]:
    """All-pairs cosine of m x n packed rows, and its baselines on the same vectors."""
    rng = np.random.default_rng(seed)
    q, db = random_packed(rng, m, dim), random_packed(rng, n, dim)
    tq, td = ternhd.unpack_ternary(q, dim), ternhd.unpack_ternary(db, dim)
    index = ternhd.Index(db)
    pairs = float(m * n)
    cases = [
        Case("cosine", "ternhd.cosine", lambda: ternhd.cosine(q, db), pairs, "pairs", "ternhd",
             "packed in, float32 (M, N) out, bit-plane conversion included"),
        Case("cosine", "ternhd.Index.pairwise", lambda: index.pairwise(q, "cosine"), pairs, "pairs", "ternhd",
             "database kept in bit planes"),
    ]
    pm, pn = min(m, 32), min(n, 512)  # probe: a corner of the same product
    torch = _optional("torch")
    if torch is not None:
        fq, fd = torch.from_numpy(tq.astype(np.float32)), torch.from_numpy(td.astype(np.float32))
        cases.append(Case("cosine", "torch-f32-matmul", lambda: fq @ fd.T, pairs, "pairs",
                          note="float32 matmul on the unpacked vectors (dot only)",
                          probe=lambda: fq[:pm] @ fd[:pn].T, probe_units=float(pm * pn)))
        iq, idt = torch.from_numpy(tq), torch.from_numpy(td).T.contiguous()
        if hasattr(torch, "_int_mm") and m > 16 and pn % 8 == 0:
            pq = iq[:max(pm, 17)]
            cases.append(Case("cosine", "torch-int8-_int_mm", lambda: torch._int_mm(iq, idt), pairs, "pairs",
                              note="int8 x int8 -> int32 on the unpacked vectors",
                              probe=lambda: torch._int_mm(pq, idt[:, :pn].contiguous()),
                              probe_units=float(len(pq) * pn)))
    faiss = _optional("faiss")
    if faiss is not None:
        fi = faiss.IndexBinaryFlat(db.shape[1] * 8)
        fi.add(db)
        cases.append(Case("cosine", "faiss-binary-top10", lambda: fi.search(q, 10), pairs, "pairs",
                          note="IndexBinaryFlat Hamming top-10 on the same packed bytes",
                          probe=lambda: fi.search(q[:8], 10), probe_units=8.0 * n))
    # numpy reference on a slice (it is ~100x slower); throughput is per pair, so it compares.
    qs, ds = q[:16], db[:2000]
    cases.append(Case("cosine", "numpy-bitwise_count", lambda: _numpy_popcount_cosine(qs, ds),
                      16.0 * len(ds), "pairs", note=f"numpy bitwise_count on the 2-bit layout (16 x {len(ds)} slice)",
                      probe=lambda: _numpy_popcount_cosine(qs[:2], ds), probe_units=2.0 * len(ds)))
    return cases


def _numpy_popcount_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 2-bit formula of docs/FORMAT.md with numpy: dot = pc(A & B) - pc(A & swap(B))."""
    b64 = b.view(np.uint64)
    a64 = a.view(np.uint64)
    ev = np.uint64(0x5555555555555555)
    swap = ((b64 >> np.uint64(1)) & ev) | ((b64 & ev) << np.uint64(1))
    out = np.empty((a.shape[0], b.shape[0]), np.float32)
    nb = np.bitwise_count(b64).sum(1).astype(np.float64)
    for i in range(a.shape[0]):
        d = np.bitwise_count(a64[i] & b64).sum(1).astype(np.int64) - np.bitwise_count(a64[i] & swap).sum(1)
        na = float(np.bitwise_count(a64[i]).sum())
        den = np.sqrt(na * nb)
        out[i] = np.where(den > 0, d / np.where(den > 0, den, 1), 0)
    return out


# ----------------------------------------------------------------------------- top-k
def _split_rows(fn: Callable[[int, int], None], m: int) -> None:
    """Calls ``fn(r0, r1)`` on ``_threads()`` contiguous ranges of ``m`` rows, in the worker pool."""
    n = max(1, min(_threads(), m))
    bounds = np.linspace(0, m, n + 1).astype(int)
    if n == 1:
        fn(0, m)
        return
    for f in [_pool().submit(fn, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]:
        f.result()


def numkong_topk(packed_db, queries: np.ndarray, k: int, chunk: int = 32) -> Tuple[np.ndarray, np.ndarray]:
    """Exact Hamming top-k with NumKong: ``hammings_packed`` of query chunks against a database
    packed once by ``numkong.hammings_pack(db, dtype="uint1")`` (uint32 distances), then numpy's
    ``argpartition`` and a sort of the k best per row. Query rows are split over the bench's
    worker threads (a NumKong call is single-threaded and releases the GIL).

    Returns (distances uint32 ``(M, k)``, indices int64 ``(M, k)``), nearest first."""
    import numkong as nk

    m = len(queries)
    dist = np.empty((m, k), np.uint32)
    idx = np.empty((m, k), np.int64)

    def part(r0: int, r1: int) -> None:
        for c0 in range(r0, r1, chunk):
            c1 = min(r1, c0 + chunk)
            d = np.asarray(nk.hammings_packed(queries[c0:c1], packed_db))
            top = np.argpartition(d, k - 1, axis=1)[:, :k]
            td = np.take_along_axis(d, top, 1)
            order = np.argsort(td, axis=1, kind="stable")
            idx[c0:c1] = np.take_along_axis(top, order, 1)
            dist[c0:c1] = np.take_along_axis(td, order, 1)

    _split_rows(part, m)
    return dist, idx


def topk_cases(m: int = 256, n: int = 100_000, dim: int = 4096, k: int = 10, seed: int = 1) -> List[Case]:
    """Exact top-k of m queries in n packed rows (ternary cosine), and binary Hamming top-k on the
    same bytes (``dim / 4`` bytes = ``2 dim`` bits a row) with faiss, NumKong and usearch."""
    rng = np.random.default_rng(seed)
    q, db = random_packed(rng, m, dim), random_packed(rng, n, dim)
    index = ternhd.Index(db)
    pairs = float(m * n)
    pq = min(m, 8)  # probe: the first queries against the whole database
    probe_units = float(pq * n)
    cases = [
        Case("top10", "ternhd.topk", lambda: ternhd.topk(q, db, k), pairs, "pairs", "ternhd",
             "cosine, database converted to bit planes on the fly each call"),
        Case("top10", "ternhd.Index.topk", lambda: index.topk(q, k), pairs, "pairs", "ternhd",
             "cosine, database kept in bit planes, row positions out"),
        Case("top10", "ternhd.Index.search", lambda: index.search(q, k), pairs, "pairs", "ternhd",
             "the same through the id-mapping search API"),
    ]
    fq32 = rng.standard_normal((m, dim)).astype(np.float32)  # drawn after q and db: those stay as they were
    cases.append(Case("top10", "ternhd.Index.search(float32)", lambda: index.search(fq32, k), pairs, "pairs",
                      "ternhd", "float32 queries against the same rows (asymmetric, exact q . t), cosine"))
    bits = db.shape[1] * 8
    faiss = _optional("faiss")
    if faiss is not None:
        fi = faiss.IndexBinaryFlat(bits)
        fi.add(db)
        cases.append(Case("top10", "faiss.IndexBinaryFlat", lambda: fi.search(q, k), pairs, "pairs",
                          note=f"Hamming top-{k} over {bits} bits, database added beforehand",
                          probe=lambda: fi.search(q[:pq], k), probe_units=probe_units))
    nk = _optional("numkong")
    if nk is not None:
        packed = nk.hammings_pack(db, dtype="uint1")
        cases.append(Case("top10", "numkong.hammings_packed+argpartition", lambda: numkong_topk(packed, q, k),
                          pairs, "pairs", note=f"uint1 Hamming over {bits} bits (packed once), numpy top-{k}",
                          probe=lambda: numkong_topk(packed, q[:pq], k), probe_units=probe_units))
    usearch = _optional("usearch.index")
    if usearch is not None:
        from usearch.index import MetricKind
        from usearch.index import search as usearch_search

        cases.append(Case("top10", "usearch.search(exact, b1x8)",
                          lambda: usearch_search(db, q, k, MetricKind.Hamming, exact=True, threads=_threads(),
                                                 dtype="b1"),
                          pairs, "pairs", note=f"brute-force Hamming top-{k} over {bits} bits",
                          probe=lambda: usearch_search(db, q[:pq], k, MetricKind.Hamming, exact=True,
                                                       threads=_threads(), dtype="b1"),
                          probe_units=probe_units))
    torch = _optional("torch")
    if torch is not None:
        ns = min(n, 20000)  # the unpacked float32 database of all n rows would take n * dim * 4 bytes
        fq = torch.from_numpy(ternhd.unpack_ternary(q, dim).astype(np.float32))
        fd = torch.from_numpy(ternhd.unpack_ternary(db[:ns], dim).astype(np.float32))
        cases.append(Case("top10", "torch-f32-matmul+topk", lambda: torch.topk(fq @ fd.T, k, dim=1), float(m * ns),
                          "pairs", note=f"float32 matmul + torch.topk (first {ns} rows)",
                          probe=lambda: torch.topk(fq[:pq] @ fd.T, k, dim=1), probe_units=float(pq * ns)))
    return cases


def _hamming_recall(found_dist: np.ndarray, exact_dist: np.ndarray) -> float:
    """Fraction of returned neighbours within the exact k-th distance (robust to ties)."""
    return float((found_dist <= exact_dist[:, -1:]).mean())


def _build_estimate(build: Callable[[np.ndarray], object], db: np.ndarray, sample: int = 1000) -> Tuple[float, str]:
    """Seconds to build a graph over ``db``, from a build over ``sample`` rows scaled by n log n."""
    s = min(sample, len(db))
    t0 = time.perf_counter()
    build(db[:s])
    t = time.perf_counter() - t0
    n = len(db)
    est = t * (n / s) * (np.log(n) / np.log(max(s, 2)))
    return est, f"a {s}-row build took {t:.2f} s"


def hnsw_cases(m: int = 256, n: int = 20000, dim: int = 4096, k: int = 10, seed: int = 5) -> List[Case]:
    """Approximate search for reference: faiss ``IndexBinaryHNSW`` and usearch's HNSW on the same
    bytes as binary vectors, against the exact searches of ternhd and faiss on the same n rows.
    Throughput in queries per second; the HNSW notes carry the build time and recall@k against
    exact Hamming (random rows are the hardest case for a graph index)."""
    rng = np.random.default_rng(seed)
    q, db = random_packed(rng, m, dim), random_packed(rng, n, dim)
    bits = db.shape[1] * 8
    index = ternhd.Index(db)
    cases = [Case("hnsw", "ternhd.Index.topk (exact)", lambda: index.topk(q, k), float(m), "queries", "ternhd",
                  f"exact ternary cosine over the same {n} rows")]
    faiss = _optional("faiss")
    exact: Dict[str, np.ndarray] = {}

    def exact_dist() -> np.ndarray:
        if "d" not in exact:  # ground truth: exact Hamming top-k (faiss flat, else numpy)
            if faiss is not None:
                exact["d"] = flat.search(q, k)[0]
            else:
                d = np.stack([np.unpackbits(qi[None] ^ db, axis=1).sum(1) for qi in q])
                exact["d"] = np.sort(d, axis=1)[:, :k]
        return exact["d"]

    if faiss is not None:
        flat = faiss.IndexBinaryFlat(bits)
        flat.add(db)
        cases.append(Case("hnsw", "faiss.IndexBinaryFlat (exact)", lambda: flat.search(q, k), float(m), "queries",
                          note=f"exact Hamming over {bits} bits", probe=lambda: flat.search(q[:8], k),
                          probe_units=8.0))
        fh: Dict[str, object] = {}

        def faiss_build(rows: np.ndarray):
            g = faiss.IndexBinaryHNSW(bits, 32)
            g.add(rows)
            return g

        def faiss_setup() -> str:
            t0 = time.perf_counter()
            fh["g"] = faiss_build(db)
            t = time.perf_counter() - t0
            r = _hamming_recall(fh["g"].search(q, k)[0], exact_dist())
            return f"built in {t:.1f} s, recall@{k} {r:.2f} vs exact Hamming"

        cases.append(Case("hnsw", "faiss.IndexBinaryHNSW", lambda: fh["g"].search(q, k), float(m), "queries",
                          note="M = 32, efSearch 16 (defaults)", setup=faiss_setup,
                          setup_estimate=lambda: _build_estimate(faiss_build, db),
                          probe=lambda: fh["g"].search(q[:8], k), probe_units=8.0))
    us = _optional("usearch.index")
    if us is not None:
        uh: Dict[str, object] = {}

        def usearch_build(rows: np.ndarray):
            g = us.Index(ndim=bits, metric="hamming", dtype="b1")
            g.add(np.arange(len(rows)), rows, threads=_threads())
            return g

        def usearch_setup() -> str:
            t0 = time.perf_counter()
            uh["g"] = usearch_build(db)
            t = time.perf_counter() - t0
            r = _hamming_recall(uh["g"].search(q, k, threads=_threads()).distances, exact_dist())
            return f"built in {t:.1f} s, recall@{k} {r:.2f} vs exact Hamming"

        cases.append(Case("hnsw", "usearch.Index(b1) HNSW", lambda: uh["g"].search(q, k, threads=_threads()),
                          float(m), "queries", note="connectivity 16, expansion_search 64 (defaults)",
                          setup=usearch_setup, setup_estimate=lambda: _build_estimate(usearch_build, db),
                          probe=lambda: uh["g"].search(q[:8], k, threads=_threads()), probe_units=8.0))
    return cases


# ----------------------------------------------------------------------------- pack, quantize
def pack_cases(nbytes: int = 64 << 20, seed: int = 2) -> List[Case]:
    """Packing nbytes of int8 trits (and unpacking them back)."""
    rng = np.random.default_rng(seed)
    p = random_packed(rng, max(1, nbytes // 4096), 4096)
    t = ternhd.unpack_ternary(p, 4096)
    small = t[: max(1, t.shape[0] // 16)]
    ps = p[: small.shape[0]]
    tiny, ptiny = t[: max(1, t.shape[0] // 256)], p[: max(1, t.shape[0] // 256)]
    return [
        Case("pack", "ternhd.pack_ternary", lambda: ternhd.pack_ternary(t), float(t.nbytes), "B", "ternhd",
             "int8 in, 2-bit out, values checked"),
        Case("pack", "numpy-vectorized", lambda: numpy_pack(t), float(t.nbytes), "B",
             note="uint8 & 3, xor, 4 strided code columns shifted into a byte (unchecked)",
             probe=lambda: numpy_pack(small), probe_units=float(small.nbytes)),
        Case("pack", "numpy-reference", lambda: reference.pack_ternary(small), float(small.nbytes), "B",
             note="ternhd.reference.pack_ternary (1/16 slice)",
             probe=lambda: reference.pack_ternary(tiny), probe_units=float(tiny.nbytes)),
        Case("unpack", "ternhd.unpack_ternary", lambda: ternhd.unpack_ternary(p, 4096), float(t.nbytes), "B",
             "ternhd", "bytes of int8 output, codes checked"),
        Case("unpack", "numpy-lookup-table", lambda: numpy_unpack(p, 4096), float(t.nbytes), "B",
             note="256-entry table of 4 trits, one gather per byte (unchecked)",
             probe=lambda: numpy_unpack(ps, 4096), probe_units=float(small.nbytes)),
        Case("unpack", "numpy-reference", lambda: reference.unpack_ternary(ps, 4096), float(small.nbytes), "B",
             note="ternhd.reference.unpack_ternary (1/16 slice)",
             probe=lambda: reference.unpack_ternary(ptiny, 4096), probe_units=float(tiny.nbytes)),
    ]


def quantize_cases(rows: int = 8192, dim: int = 4096, seed: int = 3) -> List[Case]:
    """Per-row std ternary quantization of float32 rows (plain and fused with packing)."""
    x = np.random.default_rng(seed).standard_normal((rows, dim), dtype=np.float32)
    xs = x[: max(1, rows // 64)]
    return [
        Case("quantize", "ternhd.quantize", lambda: ternhd.quantize(x), float(x.nbytes), "B", "ternhd"),
        Case("quantize", "ternhd.quantize(packed=True)", lambda: ternhd.quantize(x, packed=True), float(x.nbytes),
             "B", "ternhd", "threshold + pack fused"),
        Case("quantize", "numpy-reference", lambda: reference.quantize(x[: rows // 8]), float(x.nbytes // 8), "B",
             note="ternhd.reference.quantize (1/8 slice)", probe=lambda: reference.quantize(xs),
             probe_units=float(xs.nbytes)),
    ]


# ----------------------------------------------------------------------------- fused encoder
# Fused encode at the paper's shape: in_dim = 768, dim = 4096, float32, N = 8192. Throughput is in
# output trits per second. The gaussian encode runs its block products on torch's oneDNN by
# default (ternhd.encoder); the numpy-GEMM case shows the same encode on numpy's BLAS.
GAUSSIAN, SRHT, SPARSE = "ternhd.encode(gaussian)", "ternhd.encode(srht)", "ternhd.encode(sparse)"
MATMUL, NAIVE = "torch.matmul(x, P)", "numpy-naive-pipeline"
TARGETS.update({
    ("encode", GAUSSIAN, MATMUL): 0.85,
    ("encode", GAUSSIAN, NAIVE): 2.0,
    ("encode", SRHT, GAUSSIAN): 8.0,
})


def naive_numpy_encode(x: np.ndarray, p: np.ndarray, tau: float = 0.3) -> np.ndarray:
    """The plain numpy pipeline: project, per-row std threshold, compare, pack 4 trits per byte."""
    h = x @ p
    thr = tau * h.std(axis=1, keepdims=True)
    codes = ((h > thr).astype(np.uint8) | ((h < -thr).astype(np.uint8) << 1)).reshape(len(x), -1, 4)
    return (codes[..., 0] << 6) | (codes[..., 1] << 4) | (codes[..., 2] << 2) | codes[..., 3]


def _with_gemm(name: str, fn, *args):
    old = os.environ.get("TERNHD_GEMM")
    os.environ["TERNHD_GEMM"] = name
    try:
        return fn(*args)
    finally:
        if old is None:
            del os.environ["TERNHD_GEMM"]
        else:
            os.environ["TERNHD_GEMM"] = old


def encode_cases(n: int = 8192, in_dim: int = 768, dim: int = 4096, seed: int = 0) -> List[Case]:
    x = np.random.default_rng(seed).standard_normal((n, in_dim), dtype=np.float32)
    from .encoder import HDCEncoder

    gauss = HDCEncoder(in_dim, dim)
    srht = HDCEncoder(in_dim, dim, projection="srht")
    sparse = HDCEncoder(in_dim, dim, projection="sparse")
    p = gauss.projection_matrix()
    xs = x[: max(1, n // 16)]
    trits = float(n * dim)
    cases = [
        Case("encode", GAUSSIAN, lambda: gauss.encode(x), trits, "trits", "ternhd",
             "BLAS matmul per block + native threshold/pack epilogue"),
        Case("encode", SRHT, lambda: srht.encode(x), trits, "trits", "ternhd",
             "native stacked fast Walsh-Hadamard transforms + epilogue"),
        Case("encode", SPARSE, lambda: sparse.encode(x), trits, "trits", "ternhd",
             f"native sparse column sums ({int(round(np.sqrt(in_dim)))} per trit) + epilogue"),
        Case("encode", NAIVE, lambda: naive_numpy_encode(x, p), trits, "trits",
             note="numpy: x @ P, tau * std per row, compare, pack",
             probe=lambda: naive_numpy_encode(xs, p), probe_units=float(len(xs) * dim)),
        Case("encode", "ternhd.encode(gaussian, numpy GEMM)", lambda: _with_gemm("numpy", gauss.encode, x),
             trits, "trits", "ternhd", "TERNHD_GEMM=numpy: numpy.matmul per block + the same epilogue"),
        Case("encode", "numpy.matmul(x, P)", lambda: np.matmul(x, p), trits, "trits",
             note="the float projection alone with numpy's BLAS (no target)",
             probe=lambda: np.matmul(xs, p), probe_units=float(len(xs) * dim)),
    ]
    try:
        import torch
    except ImportError:  # pragma: no cover
        return cases
    xt, pt = torch.from_numpy(x), torch.from_numpy(p.copy())
    cases.append(Case("encode", MATMUL, lambda: torch.matmul(xt, pt), trits, "trits",
                      note="the float projection alone, full (N, dim) float32 output",
                      probe=lambda: torch.matmul(xt[:len(xs)], pt), probe_units=float(len(xs) * dim)))
    return cases



# ----------------------------------------------------------------------------- HDC algebra
ALGEBRA_DIM = 4096


def _packed_rows(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return random_packed(rng, int(np.prod(shape)), ALGEBRA_DIM).reshape(shape + (ALGEBRA_DIM // 4,))


def algebra_cases(rows: int = 8192, seed: int = 4) -> List[Case]:
    rng = np.random.default_rng(seed)
    a, b = _packed_rows(rng, (rows,)), _packed_rows(rng, (rows,))
    groups = _packed_rows(rng, (max(1, rows // 64), 64))  # 128 bundles of 64 vectors
    s = max(1, rows // 16)
    s2 = max(1, rows // 256)
    gs, gs2 = groups[: max(1, len(groups) // 16)], groups[: max(1, len(groups) // 64)]
    nbytes = float(a.nbytes)
    k = 1234567
    return [
        Case("bind", "ternhd.bind", lambda: ternhd.bind(a, b), 2 * nbytes, "B", "ternhd"),
        Case("bind", "numpy-bitwise", lambda: numpy_bitwise_bind(a, b), 2 * nbytes, "B",
             note="the same bit formula on uint64 words", probe=lambda: numpy_bitwise_bind(a[:s], b[:s]),
             probe_units=2 * nbytes / rows * s),
        Case("bind", "numpy-reference", lambda: reference.bind(a[:s], b[:s]), 2 * nbytes / rows * s, "B",
             note="ternhd.reference.bind (unpack, multiply, pack; 1/16 slice)",
             probe=lambda: reference.bind(a[:s2], b[:s2]), probe_units=2 * nbytes / rows * s2),
        Case("bundle", "ternhd.bundle", lambda: ternhd.bundle(groups), float(groups.nbytes), "B", "ternhd",
             f"{len(groups)} groups x 64 vectors, majority"),
        Case("bundle", "numpy-vectorized", lambda: numpy_bundle(groups), float(groups.nbytes), "B",
             note="table unpack, int16 column sums, sign, vectorized pack",
             probe=lambda: numpy_bundle(gs), probe_units=float(gs.nbytes)),
        Case("bundle", "numpy-reference", lambda: reference.bundle(gs), float(gs.nbytes), "B",
             note="ternhd.reference.bundle (1/16 slice)", probe=lambda: reference.bundle(gs2),
             probe_units=float(gs2.nbytes)),
        Case("permute", "ternhd.permute", lambda: ternhd.permute(a, k, ALGEBRA_DIM), nbytes, "B", "ternhd",
             f"k = {k} (not a multiple of 4)"),
        Case("permute", "numpy-bitshift", lambda: numpy_shift_permute(a, k, ALGEBRA_DIM), nbytes, "B",
             note="rotation of the packed rows as big-endian uint64 words",
             probe=lambda: numpy_shift_permute(a[:s], k, ALGEBRA_DIM), probe_units=nbytes / rows * s),
        Case("permute", "numpy-roll", lambda: numpy_roll_permute(a, k, ALGEBRA_DIM), nbytes, "B",
             note="table unpack, np.roll, vectorized pack",
             probe=lambda: numpy_roll_permute(a[:s], k, ALGEBRA_DIM), probe_units=nbytes / rows * s),
        Case("permute", "numpy-reference", lambda: reference.permute(a[:s], k, ALGEBRA_DIM), nbytes / rows * s, "B",
             note="ternhd.reference.permute (unpack, roll, pack; 1/16 slice)",
             probe=lambda: reference.permute(a[:s2], k, ALGEBRA_DIM), probe_units=nbytes / rows * s2),
    ]


# ----------------------------------------------------------------------------- families
@dataclass
class Family:
    """Cases built together (they share data); built one family at a time and dropped after."""

    name: str
    groups: Tuple[str, ...]
    full: Callable[[], List[Case]]
    quick: Callable[[], List[Case]]
    default: bool = True  # part of ``ternhd bench`` without --group


# In run order: the top-k target first, the costliest family (encode) last. ``ternhd bench`` sizes
# are those of benchmarks/ except fewer queries / rows where noted, to fit its time budget.
FAMILIES: List[Family] = [
    # 64 queries (benchmarks/: 256) over the full 100,000 x 4,096 database of the issue-14 target
    Family("top-k", ("top10",), lambda: topk_cases(64), lambda: topk_cases(64, 2000, 1024)),
    Family("similarity", ("cosine",), similarity_cases, lambda: similarity_cases(64, 2000, 1024)),
    Family("pack", ("pack", "unpack"), pack_cases, lambda: pack_cases(4 << 20)),
    Family("algebra", ("bind", "bundle", "permute"), algebra_cases, lambda: algebra_cases(256)),
    Family("quantize", ("quantize",), quantize_cases, lambda: quantize_cases(512, 1024)),
    # N = 4,096 rows (benchmarks/: 8,192)
    Family("encode", ("encode",), lambda: encode_cases(4096), lambda: encode_cases(512, 768, 1024)),
    Family("hnsw", ("hnsw",), lambda: hnsw_cases(64, 20000), lambda: hnsw_cases(16, 2000, 1024), default=False),
]
GROUPS = [g for f in FAMILIES for g in f.groups]


def _families(groups: Optional[Sequence[str]]) -> List[Family]:
    if not groups:
        return [f for f in FAMILIES if f.default]
    return [f for f in FAMILIES if set(f.groups) & set(groups)]


def all_cases(quick: bool = False, groups: Optional[List[str]] = None) -> List[Case]:
    """Every default case (or those of ``groups``), all built at once."""
    cases: List[Case] = []
    for fam in _families(groups):
        cases += [c for c in (fam.quick() if quick else fam.full()) if not groups or c.group in groups]
    return cases


# ----------------------------------------------------------------------------- timing
def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_case(case: Case, repeat: int = 5) -> float:
    """Median seconds per call after one warm-up call (no budget; see :func:`run_cases`)."""
    case.fn()
    return statistics.median(_timed(case.fn) for _ in range(repeat))


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class _Budget:
    deadline: float
    max_call_s: float
    max_setup_s: float

    def left(self) -> float:
        return self.deadline - time.perf_counter()


def _row(case: Case, seconds: Optional[float], calls: int = 0, skipped: str = "", remark: str = "") -> dict:
    """``remark``: what this run learned about the case (a graph's build time and recall, a single
    call), printed under the table; ``note`` (in the JSON) is the case's whole description."""
    rate = None if seconds is None else (case.units / seconds if seconds > 0 else float("inf"))
    return dict(group=case.group, name=case.name, role=case.role, seconds=seconds, rate=rate, unit=case.unit,
                note=case.note, calls=calls, skipped=skipped, remark=remark)


def _setup_reason(case: Case, budget: _Budget) -> str:
    """Why ``case`` must be skipped before its setup (budget spent, setup estimated too long), or ""."""
    if budget.left() <= 0:
        return "the time budget is spent"
    if case.setup_estimate is not None:
        est, how = case.setup_estimate()
        limit = min(budget.max_setup_s, budget.left() / 2)
        if est > limit:
            return f"its setup would take ~{est:.0f} s ({how}); limit {limit:.0f} s"
    return ""


def _probe_reason(case: Case, budget: _Budget) -> Tuple[str, Optional[float]]:
    """Runs the probe (after setup): ("", estimated seconds a call or None) or (reason to skip, None)."""
    if case.probe is None:
        return "", None
    t = _timed(case.probe)
    est = t * case.units / case.probe_units
    limit = min(budget.max_call_s, budget.left() / 2)
    if est > limit:
        return (f"one call would take ~{est:.1f} s (a probe of {case.probe_units / case.units:.2%} of the work "
                f"took {t:.3f} s); limit {limit:.1f} s a call"), None
    return "", est


def run_cases(cases: Sequence[Case], repeat: int = 5, budget: Optional[_Budget] = None,
              log: Callable[[str], None] = _stderr, later: int = 0) -> List[dict]:
    """Times ``cases`` within ``budget``: setup estimate, setup, probe, one warm-up, then up to
    ``repeat`` interleaved rounds. ``later`` is about how many cases still follow this call (they
    get their share of the budget). Returns one row per case; a skipped case has ``skipped`` set
    and no time."""
    if budget is None:
        budget = _Budget(time.perf_counter() + 1e9, 1e9, 1e9)
    rows: Dict[int, dict] = {}
    live: List[Tuple[int, Case, float]] = []
    remarks: Dict[int, List[str]] = {i: [] for i in range(len(cases))}

    def remark(i: int, text: str) -> None:
        cases[i].note = f"{cases[i].note}; {text}" if cases[i].note else text
        remarks[i].append(text)

    for i, case in enumerate(cases):
        reason, est = _setup_reason(case, budget), None
        if not reason and case.setup is not None:
            t0 = time.perf_counter()
            extra = case.setup()
            if extra:
                remark(i, extra)
            log(f"  {case.group:8} {case.name}: setup {time.perf_counter() - t0:.1f} s")
        if not reason:
            reason, est = _probe_reason(case, budget)
        if not reason and est is not None and est > budget.left():
            reason = f"one call would take ~{est:.1f} s, {max(budget.left(), 0):.1f} s of the budget left"
        if reason:
            rows[i] = _row(case, None, skipped=reason)
            log(f"  {case.group:8} {case.name}: SKIPPED: {reason}")
            continue
        t = _timed(case.fn)  # warm-up, and the cost of one round of this case
        guess = "" if est is None else f" (probe estimate {est:.3f} s)"
        log(f"  {case.group:8} {case.name}: warm-up {t:.3f} s{guess}")
        if t > budget.max_call_s:  # the probe was too optimistic, or there was none: this call is the row
            remark(i, "1 call only (over the per-call limit)")
            rows[i] = _row(case, t, calls=1, remark="; ".join(remarks[i]))
            continue
        live.append((i, case, t))
    if live and sum(t for _, _, t in live) > budget.left():  # not even one more round fits
        for i, case, t in live:
            remark(i, "warm-up call only (time budget)")
            rows[i] = _row(case, t, calls=1, remark="; ".join(remarks[i]))
        log("  (no timed round fits in the budget left: the rows are the warm-up calls)")
        live = []
    if live:
        per_round = sum(t for _, _, t in live)
        # 0.8: rounds on a loaded machine run slower than the warm-ups said. A group gets its share
        # of the budget by case count, but at least 3 rounds (a median of 1 is one sample) when
        # they fit in 30% of what is left; later groups then get fewer rounds or are skipped.
        left = max(budget.left(), 0.0)
        share = 0.8 * left * len(cases) / max(1, len(cases) + later)
        floor = min(3, int(0.3 * left / max(per_round, 1e-9)))
        rounds = max(1, min(repeat, max(int(share / max(per_round, 1e-9)), floor)))
        times: Dict[int, List[float]] = {i: [] for i, _, _ in live}
        for _ in range(rounds):
            for i, case, _ in live:
                times[i].append(_timed(case.fn))
        for i, case, _ in live:
            rows[i] = _row(case, statistics.median(times[i]), calls=rounds, remark="; ".join(remarks[i]))
        if rounds < repeat:
            why = "the rest of the budget is shared with later cases" if later else "what the budget left allows"
            log(f"  ({rounds} timed rounds instead of {repeat}: {why})")
    return [rows[i] for i in range(len(cases))]


def machine() -> str:
    info = ternhd.backend_info()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, ternhd {info['threads']} threads, SIMD {info['simd']}"


def throughput_table(results: List[Tuple[Case, float]]) -> List[dict]:
    """Rows with throughput from (case, median seconds) pairs."""
    return [_row(case, sec) for case, sec in results]


def check_targets(rows: List[dict]) -> List[dict]:
    """Each target whose cases are in ``rows``: ratio, need, ok (None when a side was skipped)."""
    by = {(r["group"], r["name"]): r for r in rows}
    out = []
    for (g, mine, base), need in TARGETS.items():
        if (g, mine) in by and (g, base) in by:
            a, b = by[(g, mine)], by[(g, base)]
            if a.get("rate") is None or b.get("rate") is None:
                why = a.get("skipped") or b.get("skipped")
                out.append(dict(what=f"{g}: {mine} / {base}", value=None, need=need, ok=None, unit="x",
                                note=f"not measured: {why}"))
                continue
            ratio = a["rate"] / b["rate"]
            out.append(dict(what=f"{g}: {mine} / {base}", value=ratio, need=need, ok=ratio >= need, unit="x"))
    for (g, mine), need in ABSOLUTE_TARGETS.items():
        if (g, mine) in by and by[(g, mine)].get("rate") is not None:
            v = by[(g, mine)]["rate"]
            out.append(dict(what=f"{g}: {mine}", value=v / 1e9, need=need / 1e9, ok=v >= need, unit="GB/s"))
    return out


def _fmt_rate(rate: float, unit: str) -> str:
    if unit == "B":
        return f"{rate / 1e9:8.2f} GB/s"
    if unit == "queries":
        return f"{rate:8.1f} q/s"
    return f"{rate / 1e6:8.1f} M{unit}/s"


def format_table(rows: List[dict], targets: List[dict], threads: Optional[Dict[str, str]] = None,
                 header: str = "", quick: bool = False) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"ternhd {ternhd.__version__} kernel benchmark — {machine()} — {when}"]
    lines.append(format_threads(threads if threads is not None else thread_counts()))
    if header:
        lines.append(header)
    lines.append("")
    w = max([28] + [len(r["name"]) for r in rows])
    lines.append(f"| {'group':8} | {'case':{w}} | {'median':>9} | {'throughput':>16} | {'vs ternhd':>9} |")
    lines.append(f"|{'-' * 10}|{'-' * (w + 2)}|{'-' * 11}|{'-' * 18}|{'-' * 11}|")
    for g in dict.fromkeys(r["group"] for r in rows):
        grp = [r for r in rows if r["group"] == g]
        best = max((r["rate"] for r in grp if r["role"] == "ternhd" and r.get("rate")), default=None)
        for r in grp:
            if r.get("rate") is None:
                lines.append(f"| {g:8} | {r['name']:{w}} | skipped: {r.get('skipped', '')} |")
                continue
            rel = f"{best / r['rate']:8.2f}x" if best and r["role"] != "ternhd" else ""
            rate = _fmt_rate(r["rate"], r["unit"])
            lines.append(f"| {g:8} | {r['name']:{w}} | {r['seconds'] * 1e3:7.2f}ms | {rate:>16} | {rel:>9} |")
    remarks = [f"  {r['group']} / {r['name']}: {r['remark']}" for r in rows if r.get("remark")]
    if remarks:
        lines += ["", "Notes from this run:"] + remarks
    if targets:
        lines += ["", "Targets (ratios measured in this run):" if not quick else
                  "Targets (ratios measured in this run; --quick sizes are far below the targets' sizes, where "
                  "thread start-up and call overheads dominate: for information only):"]
        for t in targets:
            if t["ok"] is None:
                lines.append(f"  [skip] {t['what']}: {t['note']} (target >= {t['need']:.2f})")
            else:
                lines.append(f"  [{'ok' if t['ok'] else 'MISS'}] {t['what']}: {t['value']:.2f} {t['unit']} "
                             f"(target >= {t['need']:.2f})")
    return "\n".join(lines)


def run(quick: bool = False, repeat: int = 5, groups: Optional[List[str]] = None, threads: Optional[int] = None,
        budget_s: float = DEFAULT_BUDGET_S, max_call_s: Optional[float] = None,
        log: Callable[[str], None] = _stderr) -> Tuple[List[dict], List[dict]]:
    """Times every case within ``budget_s`` seconds; returns (rows, target checks).

    One family of cases is built at a time (its data generation counts against the budget). A
    single call may take at most ``max_call_s`` (default ``budget_s / 12``): a baseline whose probe
    says otherwise is skipped with the reason in its row and on ``log``."""
    start = time.perf_counter()
    budget = _Budget(start + budget_s, max_call_s if max_call_s is not None else budget_s / 12, budget_s / 6)
    counts = pin_threads(threads)
    log(format_threads(counts))
    fams = _families(groups)
    rows: List[dict] = []
    for fi, fam in enumerate(fams):
        if budget.left() < 2.0:
            log(f"[{fi + 1}/{len(fams)}] {fam.name}: SKIPPED: the time budget is spent")
            rows += [dict(group=g, name=f"({fam.name} cases)", role="baseline", seconds=None, rate=None, unit="",
                          note="", calls=0, skipped="the time budget is spent") for g in fam.groups
                     if not groups or g in groups]
            continue
        t0 = time.perf_counter()
        cases = [c for c in (fam.quick() if quick else fam.full()) if not groups or c.group in groups]
        log(f"[{fi + 1}/{len(fams)}] {fam.name}: {len(cases)} cases, data built in {time.perf_counter() - t0:.1f} s "
            f"({budget.left():.0f} s of the budget left)")
        rows += run_cases(cases, repeat, budget, log, later=6 * (len(fams) - fi - 1))
        del cases
        gc.collect()
    log(f"done in {time.perf_counter() - start:.1f} s")
    return rows, check_targets(rows)


def add_arguments(parser) -> None:
    """Arguments of ``ternhd bench``."""
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds instead of a minute)")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds per case at most (median reported)")
    parser.add_argument("--group", action="append", choices=GROUPS,
                        help="only these groups (repeatable); 'hnsw' (graph indexes, for reference) runs only when "
                             "named")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every library (default: the cores this process may use)")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S,
                        help=f"seconds for the whole run (default {DEFAULT_BUDGET_S:.0f}); baselines that would "
                             "not fit are skipped with the reason printed")
    parser.add_argument("--json", metavar="PATH", help="also write the rows and target checks as JSON")


def command(args) -> int:
    """``ternhd bench``: prints the kernel table against its baselines on this machine."""
    import json

    if args.repeat < 1:
        raise SystemExit("ternhd bench: --repeat must be at least 1")
    if args.budget <= 0:
        raise SystemExit("ternhd bench: --budget must be positive")
    rows, targets = run(quick=args.quick, repeat=args.repeat, groups=args.group, threads=args.threads,
                        budget_s=args.budget)
    counts = thread_counts()
    header = f"budget {args.budget:.0f} s{', --quick' if args.quick else ''}; medians of interleaved rounds"
    print(format_table(rows, targets, counts, header, quick=args.quick))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=machine(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           threads=counts, budget_s=args.budget, quick=args.quick, rows=rows, targets=targets),
                      f, indent=2)
    return 0
