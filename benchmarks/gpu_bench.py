"""GPU benchmark of every ternhd Triton kernel against torch baselines of the same work.

    python benchmarks/gpu_bench.py                 # CUDA: full sizes, markdown table on stdout
    OUT=/some/dir python benchmarks/gpu_bench.py   # also writes $OUT/gpu_results.md
    python benchmarks/gpu_bench.py --sweep         # also a row per scan launch candidate
    TRITON_INTERPRET=1 python benchmarks/gpu_bench.py   # no GPU: tiny sizes through the interpreter

Times are medians of ``triton.testing.do_bench`` on CUDA (wall-clock medians under the
interpreter, meaningless as speed: that mode only checks the script runs). Each row gives the
achieved GB/s (memory-bound kernels: bytes that must move, once) or TOPS (products: 2 * M * N * K
operations per second) and its ratio to a baseline measured in the same run:

* bandwidth: a device copy (``torch.Tensor.copy_``; GB/s counts its read and its write);
* similarity: ``torch._int_mm`` on the unpacked int8 vectors and an fp16 ``torch.matmul`` on them;
* encode: a bf16 ``torch.matmul`` of the same shape (ratio = matmul time / encode time).

Large launches choose their tile configuration on first use by timing a candidate list
(``ternhd.kernels._util.tune``); the first call of each kernel here is that tuning, outside the
timed region. The table ends with what was chosen and every candidate's time, and each tuned
result is checked against the default configuration's output on the same inputs.

Targets (H100/H200): one-query scan >= 0.8 x copy bandwidth; batched cosine >= 1.0 x
``_int_mm``; fused encode >= 0.7 x bf16 matmul.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import os
import platform
import statistics
import sys
import time
from typing import Callable, List, Optional

import torch

if not torch.cuda.is_available():  # no GPU: run the kernels through the Triton interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")

import triton  # noqa: E402

from ternhd import kernels as K  # noqa: E402

CUDA = torch.cuda.is_available() and not K.interpreting()
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@contextlib.contextmanager
def autotune(on: bool):
    """Launch-config tuning on or off inside the block (``TERNHD_AUTOTUNE``): on only for the rows of
    the target rows and the scan, so that the run stays within a few minutes of compiling."""
    old = os.environ.get("TERNHD_AUTOTUNE")
    os.environ["TERNHD_AUTOTUNE"] = "1" if on else "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ["TERNHD_AUTOTUNE"]
        else:
            os.environ["TERNHD_AUTOTUNE"] = old


def bench(fn: Callable[[], object], tune: bool = False) -> float:
    """Median milliseconds of ``fn`` (with ``tune``, its launches may be tuned on the first call)."""
    with autotune(tune):
        return _bench(fn)


def _bench(fn: Callable[[], object]) -> float:
    if CUDA:
        return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))
    fn()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


class Table:
    """Rows of the results table; with ``path`` the markdown is rewritten after every row, so a run
    cut short by a timeout still leaves what it measured."""

    def __init__(self, header: str = "", path: Optional[str] = None) -> None:
        self.rows: List[List[str]] = []
        self.header = header
        self.path = path

    def add(self, kernel: str, shape: str, ms: float, rate: str, baseline: str, ratio: Optional[float],
            target: str = "") -> None:
        r = "" if ratio is None else f"{ratio:.3g}x"
        self.rows.append([kernel, shape, f"{ms:.4f}", rate, baseline, r, target])
        print(" | ".join(self.rows[-1]), flush=True)
        self.write()

    def write(self, footer: str = "") -> None:
        if self.path:
            with open(self.path, "w") as fh:
                fh.write(self.header + self.markdown() + "\n" + footer)

    def markdown(self) -> str:
        head = ["kernel", "shape", "median ms", "achieved", "baseline (same run)", "ratio", "target"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines)


CHECKS = [0, []]  # checks run, names of those that failed


def check_same(tuned: Callable[[], torch.Tensor], default: Callable[[], torch.Tensor], name: str,
               max_diff: float = 0.0) -> None:
    """Records whether the tuned launch gives the same result as the default configuration (with
    ``max_diff``: at most that fraction of differing elements, for float products whose summation
    order depends on the tile shape)."""
    CHECKS[0] += 1
    with autotune(True):
        x = tuned()
    y = default()
    frac = float((x != y).float().mean()) if x.shape == y.shape else 1.0
    if frac > max_diff:
        CHECKS[1].append(f"{name} ({frac:.2e} differ)")
        print(f"CHECK FAILED: {name}: {frac:.2e} of the elements differ", file=sys.stderr)


def tuning_markdown() -> str:
    """The launch configurations chosen by the tuner in this run, with every candidate's time."""
    from ternhd.kernels._util import tuning_table

    rows = ["| kernel | key | chosen | candidate medians (ms) |", "|---|---|---|---|"]
    for name, key, chosen, timings in tuning_table():
        short = lambda c: " ".join(f"{k.replace('BLOCK_', '')}={v}" for k, v in c.items())  # noqa: E731
        rows.append(f"| {name} | {key} | {short(chosen)} | "
                    + "; ".join(f"{ms:.4f} ({short(c)})" for ms, c in timings) + " |")
    if len(rows) == 2:
        return "no launch was tuned (interpreter, small sizes or TERNHD_AUTOTUNE=0)\n"
    return "Launch configurations chosen on first use:\n\n" + "\n".join(rows) + "\n"


def gbs(nbytes: float, ms: float) -> float:
    return nbytes / (ms * 1e-3) / 1e9


def tops(ops: float, ms: float) -> float:
    return ops / (ms * 1e-3) / 1e12


def rand_packed(n: int, dim: int, gen: torch.Generator) -> torch.Tensor:
    """Random packed rows, generated on the device in slices of 65536 rows."""
    out = torch.empty((n, (dim + 3) // 4), dtype=torch.uint8, device=DEVICE)
    for r in range(0, n, 65536):
        t = torch.randint(-1, 2, (min(65536, n - r), dim), generator=gen, dtype=torch.int8, device=DEVICE)
        out[r:r + t.shape[0]] = K.pack_ternary(t)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", action="store_true", help="also a row per one-query scan launch candidate")
    ap.add_argument("--budget", type=float, default=240.0, help="seconds after which optional rows are skipped")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (default under the interpreter)")
    args = ap.parse_args(argv)
    tiny = args.tiny or not CUDA
    t_start = time.time()
    gen = torch.Generator(device=DEVICE).manual_seed(0)
    dev_name = (torch.cuda.get_device_name() if CUDA
                else f"CPU ({platform.processor() or platform.machine()}), Triton interpreter")
    header = (f"## ternhd Triton kernels: {dev_name}\n\n"
              f"date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; torch {torch.__version__}, "
              f"triton {triton.__version__}; command "
              f"`python benchmarks/gpu_bench.py {' '.join(sys.argv[1:] if argv is None else argv)}`; "
              + ("triton.testing.do_bench medians" if CUDA
                 else "interpreter wall-clock medians (not a speed measurement)")
              + "\n\n")
    out_dir = os.environ.get("OUT")
    path = None
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "gpu_results.md")
    T = Table(header, path)

    # sizes
    D = 256 if tiny else 4096
    B = D // 4
    n_scan = 512 if tiny else 1 << 20          # one-query scan database rows (1 GiB packed at D=4096)
    m_mm = 32 if tiny else 16384               # batched similarity: m_mm x m_mm pairs
    n_rows = 64 if tiny else 65536             # pack / quantize / algebra rows
    enc_n, enc_d, enc_D = (64, 64, 256) if tiny else (65536, 768, 4096)

    # ---- bandwidth baseline: device copy
    src = torch.randint(-1, 2, (n_rows, D), generator=gen, dtype=torch.int8, device=DEVICE)
    dst = torch.empty_like(src)
    ms_copy = bench(lambda: dst.copy_(src))
    copy_bw = gbs(2 * src.numel(), ms_copy)
    T.add("device copy (int8)", f"{n_rows}x{D}", ms_copy, f"{copy_bw:.3g} GB/s", "-", None)

    # the three target sections first, so that a run cut short by its time limit still has them

    # ---- one-query scan (popcount kernel)
    db = rand_packed(n_scan, D, gen)
    q1 = rand_packed(1, D, gen)[0]
    db_copy = torch.empty_like(db)
    ms_dbcopy = bench(lambda: db_copy.copy_(db))
    db_copy_bw = gbs(2 * db.numel(), ms_dbcopy)
    del db_copy
    for metric in ("cosine", "dot", "hamming"):
        ms = bench(lambda: K.pairwise(q1, db, metric), tune=True)
        bw = gbs(db.numel(), ms)
        T.add(f"scan 1 query ({metric})", f"1x{n_scan}, D={D}", ms, f"{bw:.3g} GB/s",
              f"copy {db_copy_bw:.3g} GB/s", bw / db_copy_bw, ">= 0.80x" if metric == "cosine" else "")
    for hw in (True, False) if CUDA else (False,):
        ms = bench(lambda: K.pairwise(q1, db, "cosine", hw=hw))
        T.add(f"scan 1 query cosine, popcount {'popc' if hw else 'SWAR'}", f"1x{n_scan}", ms,
              f"{gbs(db.numel(), ms):.3g} GB/s", f"copy {db_copy_bw:.3g} GB/s", gbs(db.numel(), ms) / db_copy_bw)
    S = K.similarity
    check_same(lambda: K.pairwise(q1, db, "cosine"), lambda: K.pairwise(q1, db, "cosine", config=S.SCAN_CONFIG),
               "scan cosine (tuned vs default config)")
    if args.sweep and CUDA:
        for cfg in S.SCAN_CANDIDATES:
            ms = bench(lambda: K.pairwise(q1, db, "cosine", config=cfg))
            T.add(f"sweep scan cosine {cfg['BLOCK_N']}x{cfg['BLOCK_W']}w w{cfg['num_warps']}"
                  f"{' prefetch' if cfg.get('PREFETCH') else ''}", f"1x{n_scan}", ms, f"{gbs(db.numel(), ms):.3g} GB/s",
                  f"copy {db_copy_bw:.3g} GB/s", gbs(db.numel(), ms) / db_copy_bw)
    ms = bench(lambda: K.topk(q1, db, 10))
    T.add("topk k=10, 1 query (cosine)", f"1x{n_scan}", ms, f"{gbs(db.numel(), ms):.3g} GB/s",
          f"copy {db_copy_bw:.3g} GB/s", gbs(db.numel(), ms) / db_copy_bw)
    del db

    # ---- batched similarity (GEMM on unpacked trits) vs _int_mm / fp16 matmul on unpacked vectors
    a = rand_packed(m_mm, D, gen)
    b = rand_packed(m_mm, D, gen)
    ua, ub = K.unpack_ternary(a, D), K.unpack_ternary(b, D)
    ops = 2.0 * m_mm * m_mm * D
    ubt = ub.t()  # (D, N) column-major view: _int_mm's fast layout
    try:
        ms_int = bench(lambda: torch._int_mm(ua, ubt))
        int_tops = tops(ops, ms_int)
        T.add("baseline torch._int_mm (unpacked int8)", f"{m_mm}x{m_mm}x{D}", ms_int, f"{int_tops:.3g} TOPS", "-", None)
    except RuntimeError as exc:  # e.g. not supported on this device / build
        ms_int, int_tops = None, None
        print(f"_int_mm unavailable: {exc}", file=sys.stderr)
    fa, fbt = ua.to(torch.float16), ub.to(torch.float16).t()
    ms_f16 = bench(lambda: torch.matmul(fa, fbt))
    T.add("baseline fp16 matmul (unpacked)", f"{m_mm}x{m_mm}x{D}", ms_f16, f"{tops(ops, ms_f16):.3g} TFLOPS", "-", None)
    del fa, fbt
    for metric in ("cosine", "dot", "hamming"):
        ms = bench(lambda: K.pairwise(a, b, metric), tune=metric == "cosine")
        ref_ms = ms_int if ms_int is not None else ms_f16
        T.add(f"pairwise packed ({metric})", f"{m_mm}x{m_mm}, D={D}", ms, f"{tops(ops, ms):.3g} TOPS",
              "_int_mm" if ms_int is not None else "fp16 matmul", ref_ms / ms, ">= 1.0x" if metric == "cosine" else "")
    ms = bench(lambda: K.pairwise(a, b, "cosine"), tune=True)
    T.add("pairwise packed (cosine) vs fp16", f"{m_mm}x{m_mm}", ms, f"{tops(ops, ms):.3g} TOPS", "fp16 matmul",
          ms_f16 / ms)
    fp8 = S.fp8_supported(a.device)
    for method, hw in (("mma", None), ("mma", False), ("int8", None), ("fp8", None)):
        if (hw is False and not CUDA) or (method == "fp8" and not fp8):
            continue
        if method in ("int8", "fp8"):
            ms_dot = bench(lambda: K.pairwise(a, b, "dot", method=method))  # default config: a reference
            T.add(f"pairwise dot method={method}", f"{m_mm}x{m_mm}", ms_dot, f"{tops(ops, ms_dot):.3g} TOPS",
                  "_int_mm" if ms_int is not None else "fp16 matmul", (ms_int or ms_f16) / ms_dot)
        ms = bench(lambda: K.pairwise(a, b, "cosine", method=method, hw=hw), tune=method in ("int8", "fp8"))
        T.add(f"pairwise cosine method={method}{', portable decode' if hw is False else ''}", f"{m_mm}x{m_mm}", ms,
              f"{tops(ops, ms):.3g} TOPS", "_int_mm" if ms_int is not None else "fp16 matmul", (ms_int or ms_f16) / ms)
    qm = a[: min(64, m_mm)]
    ms_qm = {}
    for method in ("mma", "int8", "scan"):
        ms = ms_qm[method] = bench(lambda: K.pairwise(qm, b, "cosine", method=method))
        T.add(f"pairwise cosine {qm.shape[0]} queries, method={method}", f"{qm.shape[0]}x{m_mm}", ms,
              f"{gbs(b.numel(), ms):.3g} GB/s of db", f"copy {copy_bw:.3g} GB/s", gbs(b.numel(), ms) / copy_bw)
    q = a[: min(256, m_mm)]
    ms = bench(lambda: K.topk(q, b, 10))
    T.add("topk k=10 (cosine)", f"{q.shape[0]}x{m_mm}", ms, f"{q.shape[0] * m_mm / (ms * 1e-3) / 1e6:.3g} M pairs/s",
          "-", None)
    # a database kept on the device (norms counted once, unpacked copy kept) vs the function path
    index = K.Index(b, keep_unpacked=True, copy=False)
    ms_ix = bench(lambda: index.topk(q, 10))
    T.add("Index.topk k=10 (cosine, keep_unpacked)", f"{q.shape[0]}x{m_mm}", ms_ix,
          f"{q.shape[0] * m_mm / (ms_ix * 1e-3) / 1e6:.3g} M pairs/s", "topk function", ms / ms_ix)
    ms = ms_qm[S._method(qm.shape[0], None, b.device)]  # the function path's default method, timed above
    ms_ix = bench(lambda: index.pairwise(qm, "cosine"))
    T.add(f"Index.pairwise cosine {qm.shape[0]} queries", f"{qm.shape[0]}x{m_mm}", ms_ix,
          f"{gbs(b.numel(), ms_ix):.3g} GB/s of db", "pairwise function", ms / ms_ix)
    del index
    for method in ("int8", "fp8") if fp8 else ("int8",):
        check_same(lambda: K.pairwise(a[:2048], b, "cosine", method=method),
                   lambda: K.pairwise(a[:2048], b, "cosine", method=method, config=S.INT8_CONFIG),
                   f"pairwise cosine {method} (tuned vs default config)")
    check_same(lambda: K.pairwise(a[:2048], b, "cosine", method="int8"), lambda: K.pairwise(a[:2048], b, "cosine"),
               "pairwise cosine int8 vs default method")
    del a, b, ua, ub, ubt

    # ---- fused encode vs bf16 matmul
    from ternhd.encoder import gaussian_projection

    P = torch.from_numpy(gaussian_projection(enc_d, enc_D, seed=0)).to(DEVICE)
    xe = torch.randn((enc_n, enc_d), generator=gen, device=DEVICE)
    xb, Pb = xe.to(torch.bfloat16), P.to(torch.bfloat16)
    ms_mm = bench(lambda: torch.matmul(xb, Pb))
    enc_ops = 2.0 * enc_n * enc_d * enc_D
    T.add("baseline bf16 matmul", f"{enc_n}x{enc_d}x{enc_D}", ms_mm, f"{tops(enc_ops, ms_mm):.3g} TFLOPS", "-", None)
    proj = K.prepare_projection(P, dtype=torch.bfloat16)
    xb_in = xe.to(torch.bfloat16)
    for name, xin in (("bf16 input", xb_in), ("fp32 input", xe)):
        ms = bench(lambda: K.encode(xin, proj), tune=name == "bf16 input")
        T.add(f"encode fused, packed ({name})", f"{enc_n}x{enc_d}->{enc_D}", ms, f"{tops(enc_ops, ms):.3g} TFLOPS",
              "bf16 matmul", ms_mm / ms, ">= 0.70x" if name == "bf16 input" else "")
    ms = bench(lambda: K.encode_stats(xb_in, proj))
    T.add("encode stats only (Gram trick)", f"{enc_n}x{enc_d}", ms,
          f"{tops(2.0 * enc_n * enc_d * enc_d, ms):.3g} TFLOPS",
          "bf16 matmul", ms_mm / ms)
    ms = bench(lambda: K.quantize(torch.matmul(xb, Pb), packed=True))
    T.add("unfused: bf16 matmul + quantize", f"{enc_n}x{enc_d}->{enc_D}", ms, f"{tops(enc_ops, ms):.3g} TFLOPS",
          "bf16 matmul", ms_mm / ms)
    E = importlib.import_module("ternhd.kernels.encode")  # the module (K.encode is the function)
    check_same(lambda: K.unpack_ternary(K.encode(xb_in, proj), enc_D),
               lambda: K.unpack_ternary(K.encode(xb_in, proj, config=dict(E.ENCODE_CONFIG),
                                                 stats_config=dict(E.STATS_CONFIG)), enc_D),
               "encode trits (tuned vs default config; float32 sums in another order)", max_diff=1e-4)
    del xe, xb, Pb, P, xb_in

    # ---- pack / unpack
    ms = bench(lambda: K.pack_ternary(src))
    bw = gbs(src.numel() * 1.25, ms)
    T.add("pack_ternary", f"{n_rows}x{D} int8", ms, f"{bw:.3g} GB/s", f"copy {copy_bw:.0f} GB/s", bw / copy_bw)
    p = K.pack_ternary(src)
    ms = bench(lambda: K.unpack_ternary(p, D))
    bw = gbs(src.numel() * 1.25, ms)
    T.add("unpack_ternary", f"{n_rows}x{B} B", ms, f"{bw:.3g} GB/s", f"copy {copy_bw:.0f} GB/s", bw / copy_bw)

    # ---- quantize (fp32 in, packed out; bytes = one read + the packed write)
    x = torch.randn((n_rows, D), generator=gen, device=DEVICE)
    for mode, kw in (("std", {}), ("fixed", dict(threshold=0.3)), ("sparsity", dict(sparsity=0.7))):
        ms = bench(lambda: K.quantize(x, packed=True, **kw))
        bw = gbs(x.numel() * 4 + x.numel() / 4, ms)
        T.add(f"quantize packed ({mode})", f"{n_rows}x{D} f32", ms, f"{bw:.3g} GB/s", f"copy {copy_bw:.0f} GB/s",
              bw / copy_bw)
    del x

    # ---- algebra (bytes: packed reads + packed write)
    pa, pb = rand_packed(n_rows, D, gen), rand_packed(n_rows, D, gen)
    ms = bench(lambda: K.bind(pa, pb))
    bw = gbs(3 * pa.numel(), ms)
    T.add("bind", f"{n_rows}x{B} B", ms, f"{bw:.3g} GB/s", f"copy {copy_bw:.0f} GB/s", bw / copy_bw)
    ms = bench(lambda: K.permute(pa, 3, D))
    bw = gbs(2 * pa.numel(), ms)
    T.add("permute k=3", f"{n_rows}x{B} B", ms, f"{bw:.3g} GB/s", f"copy {copy_bw:.0f} GB/s", bw / copy_bw)
    groups = max(1, n_rows // 64)
    vb = pa[: groups * 64].reshape(groups, 64, B)
    ms = bench(lambda: K.bundle(vb, D))
    bw = gbs(vb.numel() + groups * B, ms)
    T.add("bundle 64 -> 1", f"{groups}x64x{B} B", ms, f"{bw:.3g} GB/s", f"copy {copy_bw:.0f} GB/s", bw / copy_bw)
    ms = bench(lambda: K.bundle(pa, D))  # one prototype from every row: rows split over programs
    bw = gbs(pa.numel() + B, ms)
    T.add(f"bundle {n_rows} -> 1", f"{n_rows}x{B} B", ms, f"{bw:.3g} GB/s", f"copy {copy_bw:.0f} GB/s", bw / copy_bw)

    verdict = ("all agree (exactly; encode trits within 1e-4)" if not CHECKS[1]
               else "MISMATCH in " + ", ".join(CHECKS[1]))
    footer = f"\n{tuning_markdown()}\n{CHECKS[0]} tuned results checked against the default configuration: " \
             f"{verdict}\n\ntotal {time.time() - t_start:.0f} s\n"
    T.write(footer)
    print("\n" + header + T.markdown() + "\n" + footer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
