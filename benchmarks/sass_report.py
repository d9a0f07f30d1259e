"""Static sm_90 (H100 / H200) build report of the Triton kernels, without a GPU.

    python benchmarks/sass_report.py            # markdown table on stdout
    python benchmarks/sass_report.py --quick    # default configurations only

Every kernel is compiled ahead of time for sm_90 with the ptxas shipped in the triton wheel
(as ``tests/test_triton_compile.py`` does), for its default launch configuration and every
tuning candidate; ``cuobjdump`` then gives, per build:

* registers per thread and the local-memory stack (``STACK`` > 0 means register spills);
* shared memory (static + dynamic) the launch needs;
* the tensor-core instruction used (``HGMMA`` bf16/fp16, ``IGMMA`` int8, ``QGMMA`` fp8: Hopper
  warpgroup MMA; ``+TMA`` where operand tiles come through tensor-memory-accelerator loads) and,
  for loops without one, instructions and ``POPC`` per 32-bit word of the
  scan's inner loop.

This is no measurement of speed: it shows which configurations can run without spilling and
what the inner loops cost in instructions, so that the GPU benchmark (``gpu_bench.py``, which
tunes among the same candidates) has fewer surprises. Needs the NVIDIA backend of triton.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import importlib
import inspect
import os
import re
import subprocess
import sys
import tempfile

os.environ.pop("TRITON_INTERPRET", None)  # compiled kernels, not interpreter objects
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
DIV16 = {"K", "B", "W", "stride_om", "stride_x", "Bp", "d"}
_INSTR = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)")


def build(fn, sig: dict, consts: dict, cfg: dict):
    """Compiles ``fn`` for sm_90; returns (registers, stack bytes, shared bytes, SASS text)."""
    cfg = {k: v for k, v in cfg.items() if k != "TMA"}
    opts = {k: cfg.pop(k) for k in ("num_warps", "num_stages") if k in cfg}
    consts = {**consts, **cfg}
    defaults = inspect.signature(fn.fn).parameters
    consts = {**{n: defaults[n].default for n in fn.arg_names if n not in sig and n not in consts}, **consts}
    sig = {**sig, **{k: "constexpr" for k in consts}}
    attrs = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(fn.arg_names)
             if sig[n].startswith("*") or n in DIV16}
    src = ASTSource(fn=fn, signature={n: sig[n] for n in fn.arg_names}, constexprs=consts, attrs=attrs)
    k = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=opts)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "k.cubin")
        with open(path, "wb") as f:
            f.write(k.asm["cubin"])
        usage = subprocess.run([os.path.join(BIN, "cuobjdump"), "--dump-resource-usage", path],
                               capture_output=True, text=True, check=True).stdout
        sass = subprocess.run([os.path.join(BIN, "cuobjdump"), "-sass", path],
                              capture_output=True, text=True, check=True).stdout
    m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+)", usage)
    return int(m.group(1)), int(m.group(2)), int(m.group(3)) + int(k.metadata.shared), sass


def loop_stats(sass: str):
    """Instruction counts of the innermost backward-branch loop of ``sass``."""
    lines = [(int(m.group(1), 16), m.group(2), ln) for ln in sass.splitlines() if (m := _INSTR.search(ln))]
    loop = None
    for addr, op, ln in lines:
        b = re.search(r"BRA\b.*?0x([0-9a-f]+)", ln)
        if op == "BRA" and b and int(b.group(1), 16) < addr:
            start = int(b.group(1), 16)
            if loop is None or addr - start < loop[1] - loop[0]:
                loop = (start, addr)
    if loop is None:
        return collections.Counter()
    return collections.Counter(op for addr, op, _ in lines if loop[0] <= addr <= loop[1])


def mma_kind(sass: str) -> str:
    ops = {m.group(2) for m in _INSTR.finditer(sass)}
    kinds = sorted(o for o in ops if o.endswith("GMMA") or o.startswith("HMMA") or o.startswith("IMMA"))
    return ("/".join(kinds) or "-") + ("+TMA" if "UTMALDG" in ops else "")


def short(cfg: dict) -> str:
    names = {"BLOCK_M": "M", "BLOCK_N": "N", "BLOCK_K": "K", "BLOCK_B": "B", "BLOCK_W": "W", "num_warps": "w",
             "num_stages": "s", "GROUP_M": None}
    parts = []
    for k, v in cfg.items():
        n = names.get(k, k)
        if n is None:
            continue
        if k == "SPLIT":
            parts.append(f"split{2 if v is True else v}" if v else "")
        else:
            parts.append(f"{n}{v}" if k not in ("PREFETCH", "TMA") else (k.lower() if v else ""))
    return " ".join(p for p in parts if p)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="default configurations only")
    args = ap.parse_args(argv)
    S, E = (importlib.import_module("ternhd.kernels." + m) for m in ("similarity", "encode"))
    rows = []

    def add(kernel, variant, cfg, fn, sig, consts, words_per_iter=None):
        try:
            reg, stack, shared, sass = build(fn, sig, consts, cfg)
        except Exception as exc:  # a configuration the compiler rejects
            rows.append(f"| {kernel} | {variant} | {short(cfg)} | failed: {type(exc).__name__} | | | |")
            return
        extra = mma_kind(sass)
        if words_per_iter:
            ops = loop_stats(sass)
            n = sum(ops.values())
            extra = f"{n / words_per_iter:.1f} instr, {ops.get('POPC', 0) / words_per_iter:.2f} POPC per word"
        rows.append(f"| {kernel} | {variant} | {short(cfg)} | {reg} | {stack}{' (spills)' if stack else ''} | "
                    f"{shared // 1024} KiB | {extra} |")
        print(rows[-1], file=sys.stderr, flush=True)

    sim = dict(a_ptr="*u8", b_ptr="*u8", na_ptr="*i32", nb_ptr="*i32", out_ptr="*fp32", M="i32", N="i32", B="i32",
               n_off="i32", stride_om="i32")
    gemm = {n: {**sim, "K": "i32"}[n] for n in S._gemm_kernel.arg_names if n in {**sim, "K": "i32"}}
    gemm.update(a_ptr="*i8", b_ptr="*i8")
    for metric, name in ((1, "cosine"), (0, "dot")):
        out = "*fp32" if metric == 1 else "*i32"
        for cfg in [S.INT8_CONFIG] if args.quick else S.GEMM_CANDIDATES:
            add("gemm int8", name, cfg, S._gemm_kernel, {**gemm, "out_ptr": out},
                dict(METRIC=metric, KEY=False, FP8=False))
            add("gemm fp8", name, cfg, S._gemm_kernel,
                {**gemm, "out_ptr": out, "a_ptr": "*fp8e4nv", "b_ptr": "*fp8e4nv"},
                dict(METRIC=metric, KEY=False, FP8=True))
    for cfg in [] if args.quick else S.GEMM_TMA_CANDIDATES:
        c = {k: v for k, v in cfg.items() if k != "TMA"}
        for dt, fp8 in (("i8", False), ("fp8e4nv", True)):
            sig = dict(a_desc=f"tensordesc<{dt}[{c['BLOCK_M']}, {c['BLOCK_K']}]>",
                       b_desc=f"tensordesc<{dt}[{c['BLOCK_N']}, {c['BLOCK_K']}]>", na_ptr="*i32", nb_ptr="*i32",
                       out_ptr="*fp32", M="i32", N="i32", K="i32", n_off="i32", stride_om="i32")
            add(f"gemm {'fp8' if fp8 else 'int8'} tma", "cosine", cfg, S._gemm_tma_kernel, sig,
                dict(METRIC=1, KEY=False, FP8=fp8))
    for cfg in [S.MMA_CONFIG] if args.quick else S.MMA_CANDIDATES:
        add("mma (decode in registers)", "cosine", cfg, S._mma_kernel, sim, dict(METRIC=1, KEY=False, HW=True))
    scan = dict(a_ptr="*i32", b_ptr="*i32", out_ptr="*fp32", flag_ptr="*i32", code="i32", M="i32", N="i32", W="i32",
                n_off="i32", stride_om="i32")
    for metric, name in ((1, "cosine"), (2, "hamming")):
        for cfg in [S.SCAN_CONFIG] if args.quick else S.SCAN_CANDIDATES:
            words = cfg["BLOCK_N"] * cfg["BLOCK_W"] / (32 * cfg["num_warps"])
            add("scan", name, cfg, S._scan_kernel, {**scan, "out_ptr": "*fp32" if metric == 1 else "*i32"},
                dict(METRIC=metric, KEY=False, HW=True), words_per_iter=words)
    enc = dict(x_ptr="*bf16", w_ptr="*bf16", thr_ptr="*fp32", out_ptr="*u8", N="i32", d="i32", B="i32", Bp="i32",
               stride_x="i32")
    for cfg in [E.ENCODE_CONFIG] if args.quick else E.ENCODE_CANDIDATES:
        add("encode", "bf16", cfg, E._encode_kernel, enc, dict(DT=tl.bfloat16, UPCAST=False, GROUP=64))
    enc32 = {**enc, "x_ptr": "*fp32", "w_ptr": "*fp32"}
    for cfg in [E.ENCODE_CONFIG_F32] if args.quick else E.ENCODE_CANDIDATES_F32:
        add("encode", "fp32", cfg, E._encode_kernel, enc32, dict(DT=tl.float32, UPCAST=False, GROUP=64))
    stats = dict(x_ptr="*bf16", g_ptr="*bf16", m_ptr="*fp32", mean_ptr="*fp32", var_ptr="*fp32", thr_ptr="*fp32",
                 flag_ptr="*i32", tau="fp32", N="i32", d="i32", D="i32", stride_x="i32")
    for cfg in [E.STATS_CONFIG] if args.quick else E.STATS_CANDIDATES:
        add("encode stats", "bf16", cfg, E._stats_kernel, stats, dict(DT=tl.bfloat16, UPCAST=False, THR=True))

    print(f"Static sm_90 build report, {datetime.date.today()}, triton {triton.__version__} "
          f"(`python benchmarks/sass_report.py{' --quick' if args.quick else ''}`; no GPU involved)\n")
    print("| kernel | variant | launch config | registers | stack bytes | shared memory | tensor cores / scan loop |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
