"""Kernel workloads and their baselines, shared by ``ternhd bench`` and ``benchmarks/``.

Each :class:`Case` is one timed callable doing a fixed amount of work (``units`` pairs or bytes).
Cases in the same ``group`` do the same work, so their throughputs compare directly; the targets
below are ratios of a ternhd case over a baseline case measured in the same run.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

import ternhd

from . import reference

__all__ = ["Case", "similarity_cases", "topk_cases", "pack_cases", "quantize_cases", "all_cases", "TARGETS",
           "ABSOLUTE_TARGETS", "encode_cases", "algebra_cases", "naive_numpy_encode", "time_case", "run",
           "format_table", "machine"]

# (group, ternhd case, baseline case) -> the minimum throughput ratio of the ternhd case over the
# baseline on the same work in the same run: similarity and search beat float GEMM and faiss binary
TARGETS: Dict[Tuple[str, str, str], float] = {
    ("cosine", "ternhd.cosine", "torch-f32-matmul"): 2.5,
    ("cosine", "ternhd.cosine", "faiss-binary-top10"): 1.8,
    ("top10", "ternhd.Index.topk", "faiss-binary-top10"): 1.5,
}
# (group, case) -> minimum throughput in units/s
ABSOLUTE_TARGETS: Dict[Tuple[str, str], float] = {("pack", "ternhd.pack_ternary"): 5e9}


@dataclass
class Case:
    group: str
    name: str
    fn: Callable[[], object]
    units: float  # work per call
    unit: str  # "pairs" or "B"
    role: str = "baseline"  # "ternhd" or "baseline"
    note: str = ""
    setup: Optional[Callable[[], None]] = field(default=None, repr=False)


def _trits(rng, shape):
    return rng.integers(-1, 2, size=shape, dtype=np.int8)


def _optional(name: str):
    try:
        return __import__(name)
    except ImportError:
        return None


def similarity_cases(m: int = 256, n: int = 20000, dim: int = 4096, seed: int = 0) -> List[Case]:
    """All-pairs cosine of m x n packed rows, and its baselines on the same vectors."""
    rng = np.random.default_rng(seed)
    tq, td = _trits(rng, (m, dim)), _trits(rng, (n, dim))
    q, db = ternhd.pack_ternary(tq), ternhd.pack_ternary(td)
    index = ternhd.Index(db)
    pairs = float(m * n)
    cases = [
        Case("cosine", "ternhd.cosine", lambda: ternhd.cosine(q, db), pairs, "pairs", "ternhd",
             "packed in, float32 (M, N) out, bit-plane conversion included"),
        Case("cosine", "ternhd.Index.pairwise", lambda: index.pairwise(q, "cosine"), pairs, "pairs", "ternhd",
             "database kept in bit planes"),
    ]
    torch = _optional("torch")
    if torch is not None:
        fq, fd = torch.from_numpy(tq.astype(np.float32)), torch.from_numpy(td.astype(np.float32))
        cases.append(Case("cosine", "torch-f32-matmul", lambda: fq @ fd.T, pairs, "pairs",
                          note="float32 matmul on the unpacked vectors (dot only)"))
        iq, idt = torch.from_numpy(tq), torch.from_numpy(td).T.contiguous()
        if hasattr(torch, "_int_mm"):
            cases.append(Case("cosine", "torch-int8-_int_mm", lambda: torch._int_mm(iq, idt), pairs, "pairs",
                              note="int8 x int8 -> int32 on the unpacked vectors"))
    faiss = _optional("faiss")
    if faiss is not None:
        fi = faiss.IndexBinaryFlat(db.shape[1] * 8)
        fi.add(db)
        cases.append(Case("cosine", "faiss-binary-top10", lambda: fi.search(q, 10), pairs, "pairs",
                          note="IndexBinaryFlat Hamming top-10 on the same packed bytes"))
    # numpy reference on a slice (it is ~100x slower); throughput is per pair, so it compares.
    qs = q[:16]
    cases.append(Case("cosine", "numpy-bitwise_count", lambda: _numpy_popcount_cosine(qs, db[:2000]),
                      16 * 2000.0, "pairs", note="numpy bitwise_count on the 2-bit layout (16 x 2000 slice)"))
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


def topk_cases(m: int = 256, n: int = 20000, dim: int = 4096, k: int = 10, seed: int = 1) -> List[Case]:
    """Top-k search of m queries in n packed rows, and its baselines."""
    rng = np.random.default_rng(seed)
    tq, td = _trits(rng, (m, dim)), _trits(rng, (n, dim))
    q, db = ternhd.pack_ternary(tq), ternhd.pack_ternary(td)
    index = ternhd.Index(db)
    pairs = float(m * n)
    cases = [
        Case("top10", "ternhd.topk", lambda: ternhd.topk(q, db, k), pairs, "pairs", "ternhd",
             "cosine, streamed heaps, conversion included"),
        Case("top10", "ternhd.Index.topk", lambda: index.topk(q, k), pairs, "pairs", "ternhd",
             "cosine, database kept in bit planes"),
    ]
    faiss = _optional("faiss")
    if faiss is not None:
        fi = faiss.IndexBinaryFlat(db.shape[1] * 8)
        fi.add(db)
        cases.append(Case("top10", "faiss-binary-top10", lambda: fi.search(q, k), pairs, "pairs",
                          note="IndexBinaryFlat Hamming top-10, database added beforehand"))
    torch = _optional("torch")
    if torch is not None:
        fq, fd = torch.from_numpy(tq.astype(np.float32)), torch.from_numpy(td.astype(np.float32))
        cases.append(Case("top10", "torch-f32-matmul+topk", lambda: torch.topk(fq @ fd.T, k, dim=1), pairs,
                          "pairs", note="float32 matmul + torch.topk"))
    return cases


def pack_cases(nbytes: int = 64 << 20, seed: int = 2) -> List[Case]:
    """Packing nbytes of int8 trits (and unpacking them back)."""
    rng = np.random.default_rng(seed)
    t = _trits(rng, (nbytes // 4096, 4096))
    p = ternhd.pack_ternary(t)
    small = t[: max(1, t.shape[0] // 16)]
    return [
        Case("pack", "ternhd.pack_ternary", lambda: ternhd.pack_ternary(t), float(t.nbytes), "B", "ternhd",
             "int8 in, 2-bit out"),
        Case("pack", "numpy-reference", lambda: reference.pack_ternary(small), float(small.nbytes), "B",
             note="ternhd.reference.pack_ternary (1/16 slice)"),
        Case("unpack", "ternhd.unpack_ternary", lambda: ternhd.unpack_ternary(p, 4096), float(t.nbytes), "B",
             "ternhd", "bytes of int8 output"),
        Case("unpack", "numpy-reference", lambda: reference.unpack_ternary(p[: small.shape[0]], 4096),
             float(small.nbytes), "B", note="ternhd.reference.unpack_ternary (1/16 slice)"),
    ]


def quantize_cases(rows: int = 8192, dim: int = 4096, seed: int = 3) -> List[Case]:
    """Per-row std ternary quantization of float32 rows (plain and fused with packing)."""
    x = np.random.default_rng(seed).standard_normal((rows, dim), dtype=np.float32)
    return [
        Case("quantize", "ternhd.quantize", lambda: ternhd.quantize(x), float(x.nbytes), "B", "ternhd"),
        Case("quantize", "ternhd.quantize(packed=True)", lambda: ternhd.quantize(x, packed=True), float(x.nbytes),
             "B", "ternhd", "threshold + pack fused"),
        Case("quantize", "numpy-reference", lambda: reference.quantize(x[: rows // 8]), float(x.nbytes // 8), "B",
             note="ternhd.reference.quantize (1/8 slice)"),
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
    trits = float(n * dim)
    cases = [
        Case("encode", GAUSSIAN, lambda: gauss.encode(x), trits, "trits", "ternhd",
                   "BLAS matmul per block + native threshold/pack epilogue"),
        Case("encode", SRHT, lambda: srht.encode(x), trits, "trits", "ternhd",
                   "native stacked fast Walsh-Hadamard transforms + epilogue"),
        Case("encode", SPARSE, lambda: sparse.encode(x), trits, "trits", "ternhd",
                   f"native sparse column sums ({int(round(np.sqrt(in_dim)))} per trit) + epilogue"),
        Case("encode", NAIVE, lambda: naive_numpy_encode(x, p), trits, "trits",
                   note="numpy: x @ P, tau * std per row, compare, pack"),
        Case("encode", "ternhd.encode(gaussian, numpy GEMM)", lambda: _with_gemm("numpy", gauss.encode, x),
                   trits, "trits", "ternhd", "TERNHD_GEMM=numpy: numpy.matmul per block + the same epilogue"),
        Case("encode", "numpy.matmul(x, P)", lambda: np.matmul(x, p), trits, "trits",
                   note="the float projection alone with numpy's BLAS (no target)"),
    ]
    try:
        import torch
    except ImportError:  # pragma: no cover
        return cases
    xt, pt = torch.from_numpy(x), torch.from_numpy(p.copy())
    cases.append(Case("encode", MATMUL, lambda: torch.matmul(xt, pt), trits, "trits",
                            note="the float projection alone, full (N, dim) float32 output"))
    return cases



# ----------------------------------------------------------------------------- HDC algebra
ALGEBRA_DIM = 4096


def _packed_rows(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return ternhd.pack_ternary(rng.integers(-1, 2, size=shape + (ALGEBRA_DIM,), dtype=np.int8))


def numpy_bitwise_bind(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """bind with numpy on the packed words: the same formula as the native kernel."""
    m = np.uint64(0x5555555555555555)
    one = np.uint64(1)
    wa, wb = a.view(np.uint64), b.view(np.uint64)
    sb = ((wb >> one) & m) | ((wb & m) << one)
    x, y = wa & wb, wa & sb
    return ((((x | (x >> one)) & m) | (((y | (y >> one)) & m) << one))).view(np.uint8)


def algebra_cases(rows: int = 8192, seed: int = 4) -> List[Case]:
    rng = np.random.default_rng(seed)
    a, b = _packed_rows(rng, (rows,)), _packed_rows(rng, (rows,))
    groups = _packed_rows(rng, (rows // 64, 64))  # 128 bundles of 64 vectors
    s = rows // 16
    nbytes = float(a.nbytes)
    return [
        Case("bind", "ternhd.bind", lambda: ternhd.bind(a, b), 2 * nbytes, "B", "ternhd"),
        Case("bind", "numpy-bitwise", lambda: numpy_bitwise_bind(a, b), 2 * nbytes, "B",
                   note="the same bit formula on uint64 words"),
        Case("bind", "numpy-reference", lambda: reference.bind(a[:s], b[:s]), 2 * nbytes / 16, "B",
                   note="ternhd.reference.bind (unpack, multiply, pack; 1/16 slice)"),
        Case("bundle", "ternhd.bundle", lambda: ternhd.bundle(groups), float(groups.nbytes), "B", "ternhd",
                   "128 groups x 64 vectors, majority"),
        Case("bundle", "numpy-reference", lambda: reference.bundle(groups[: len(groups) // 16]),
                   float(groups.nbytes) / 16, "B", note="ternhd.reference.bundle (1/16 slice)"),
        Case("permute", "ternhd.permute", lambda: ternhd.permute(a, 1234567, ALGEBRA_DIM), nbytes, "B", "ternhd",
                   "k = 1234567 (not a multiple of 4)"),
        Case("permute", "numpy-reference", lambda: reference.permute(a[:s], 1234567, ALGEBRA_DIM), nbytes / 16, "B",
                   note="ternhd.reference.permute (unpack, roll, pack; 1/16 slice)"),
    ]


def all_cases(quick: bool = False, groups: Optional[List[str]] = None) -> List[Case]:
    """Every case (or those of ``groups``), built lazily per family."""
    families = [  # (groups it yields, full-size builder, quick builder)
        (("cosine",), similarity_cases, lambda: similarity_cases(64, 2000, 1024)),
        (("top10",), topk_cases, lambda: topk_cases(64, 2000, 1024)),
        (("pack", "unpack"), pack_cases, lambda: pack_cases(4 << 20)),
        (("quantize",), quantize_cases, lambda: quantize_cases(512, 1024)),
        (("encode",), encode_cases, lambda: encode_cases(512, 768, 1024)),
        (("bind", "bundle", "permute"), algebra_cases, lambda: algebra_cases(256)),
    ]
    cases: List[Case] = []
    for names, full, small in families:
        if groups and not set(names) & set(groups):
            continue
        cases += [c for c in (small() if quick else full()) if not groups or c.group in groups]
    return cases


def time_case(case: Case, repeat: int = 5) -> float:
    """Median seconds per call after one warm-up call."""
    case.fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        case.fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


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
    return f"{cpu}, {info['threads']} threads, SIMD {info['simd']}"


def throughput_table(results: List[Tuple[Case, float]]) -> List[dict]:
    """Rows with throughput and the ratio to the best ternhd case of the group."""
    rows = []
    for case, sec in results:
        rows.append(dict(group=case.group, name=case.name, role=case.role, seconds=sec,
                         rate=case.units / sec if sec > 0 else float("inf"), unit=case.unit, note=case.note))
    return rows


def check_targets(rows: List[dict]) -> List[dict]:
    by = {(r["group"], r["name"]): r for r in rows}
    out = []
    for (g, mine, base), need in TARGETS.items():
        if (g, mine) in by and (g, base) in by:
            ratio = by[(g, mine)]["rate"] / by[(g, base)]["rate"]
            out.append(dict(what=f"{g}: {mine} / {base}", value=ratio, need=need, ok=ratio >= need, unit="x"))
    for (g, mine), need in ABSOLUTE_TARGETS.items():
        if (g, mine) in by:
            v = by[(g, mine)]["rate"]
            out.append(dict(what=f"{g}: {mine}", value=v / 1e9, need=need / 1e9, ok=v >= need, unit="GB/s"))
    return out


def _fmt_rate(rate: float, unit: str) -> str:
    if unit == "B":
        return f"{rate / 1e9:8.2f} GB/s"
    return f"{rate / 1e6:8.1f} M{unit}/s"


def format_table(rows: List[dict], targets: List[dict]) -> str:
    lines = [f"ternhd {ternhd.__version__} kernel benchmark — {machine()} — {time.strftime('%Y-%m-%d')}", ""]
    lines.append(f"| {'group':8} | {'case':28} | {'median':>9} | {'throughput':>14} | {'vs ternhd':>9} |")
    lines.append(f"|{'-' * 10}|{'-' * 30}|{'-' * 11}|{'-' * 16}|{'-' * 11}|")
    for g in dict.fromkeys(r["group"] for r in rows):
        grp = [r for r in rows if r["group"] == g]
        best = max((r["rate"] for r in grp if r["role"] == "ternhd"), default=None)
        for r in grp:
            rel = f"{best / r['rate']:8.2f}x" if best and r["role"] != "ternhd" else ""
            lines.append(f"| {g:8} | {r['name']:28} | {r['seconds'] * 1e3:7.2f}ms | {_fmt_rate(r['rate'], r['unit'])} "
                         f"| {rel:>9} |")
    if targets:
        lines += ["", "Targets (ratios measured in this run):"]
        for t in targets:
            lines.append(f"  [{'ok' if t['ok'] else 'MISS'}] {t['what']}: {t['value']:.2f} {t['unit']} "
                         f"(target >= {t['need']:.2f})")
    return "\n".join(lines)


def run(quick: bool = False, repeat: int = 5, groups: Optional[List[str]] = None) -> Tuple[List[dict], List[dict]]:
    """Times every case; returns (rows, target checks)."""
    cases = all_cases(quick, groups)
    results = [(c, time_case(c, repeat)) for c in cases]
    rows = throughput_table(results)
    return rows, check_targets(rows)


def add_arguments(parser) -> None:
    """Arguments of ``ternhd bench``."""
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds instead of a minute)")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per case (median reported)")
    groups = ["cosine", "top10", "pack", "unpack", "quantize", "encode", "bind", "bundle", "permute"]
    parser.add_argument("--group", action="append", choices=groups,
                        help="only these groups (repeatable)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows and target checks as JSON")


def command(args) -> int:
    """``ternhd bench``: prints the kernel table against its baselines on this machine."""
    import json

    rows, targets = run(quick=args.quick, repeat=args.repeat, groups=args.group)
    print(format_table(rows, targets))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=machine(), date=time.strftime("%Y-%m-%d"), rows=rows, targets=targets), f,
                      indent=2)
    return 0
