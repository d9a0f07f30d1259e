"""Every Triton kernel compiles for a Hopper GPU (sm_90) with its hardware popcount / PTX decoding
forms, without needing a GPU: ahead-of-time compilation with the ptxas shipped in the triton
wheel. Catches code the interpreter accepts but the compiler rejects (inline PTX, layouts, shared
memory). Runs in a subprocess because kernels defined while TRITON_INTERPRET=1 is set are
interpreter objects."""
import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")
triton = pytest.importorskip("triton")


def _have_cuda_backend() -> bool:
    try:
        from triton.backends.compiler import GPUTarget  # noqa: F401
        from triton.compiler import ASTSource  # noqa: F401
    except ImportError:
        return False
    return importlib.util.find_spec("triton.backends.nvidia") is not None


pytestmark = pytest.mark.skipif(not _have_cuda_backend(), reason="triton has no NVIDIA backend / AOT API")

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"

SCRIPT = textwrap.dedent('''
    import importlib, sys
    import triton.language as tl

    sys.path.insert(0, sys.argv[1])
    from sass_report import build as compile_sm90  # the same sm_90 build as the static report

    S, P, Q, A, E = (importlib.import_module("ternhd.kernels." + m)
                     for m in ("similarity", "pack", "quantize", "algebra", "encode"))

    def build(fn, sig, consts, cfg=None):
        registers, stack, shared, sass = compile_sm90(fn, sig, consts, cfg or {})
        assert sass.strip(), fn.__name__
        print(fn.__name__, "ok", registers, stack, shared, flush=True)

    sim = dict(a_ptr="*u8", b_ptr="*u8", na_ptr="*i32", nb_ptr="*i32", out_ptr="*i64", M="i32", N="i32", B="i32",
               n_off="i32", stride_om="i32")
    build(S._mma_kernel, sim, dict(METRIC=1, KEY=True, HW=True), S.MMA_CONFIG)
    build(S._mma_kernel, {**sim, "out_ptr": "*i32"}, dict(METRIC=2, KEY=False, HW=True), S.MMA_CONFIG_SMALL_M)
    gm = {**sim, "a_ptr": "*i8", "b_ptr": "*i8", "K": "i32"}
    del gm["B"]
    gm = {n: gm[n] for n in S._gemm_kernel.arg_names if n in gm}
    f8 = {**gm, "a_ptr": "*fp8e4nv", "b_ptr": "*fp8e4nv"}
    for cfg in S.GEMM_CANDIDATES:  # every tuning candidate, int8 and fp8, cosine
        build(S._gemm_kernel, {**gm, "out_ptr": "*fp32"}, dict(METRIC=1, KEY=False, FP8=False), cfg)
        build(S._gemm_kernel, {**f8, "out_ptr": "*fp32"}, dict(METRIC=1, KEY=False, FP8=True), cfg)
    for cfg in S.GEMM_TMA_CANDIDATES:
        c = {k: v for k, v in cfg.items() if k != "TMA"}
        for dt, fp8 in (("i8", False), ("fp8e4nv", True)):
            tma = dict(a_desc=f"tensordesc<{dt}[{c['BLOCK_M']}, {c['BLOCK_K']}]>",
                       b_desc=f"tensordesc<{dt}[{c['BLOCK_N']}, {c['BLOCK_K']}]>", na_ptr="*i32", nb_ptr="*i32",
                       out_ptr="*i64", M="i32", N="i32", K="i32", n_off="i32", stride_om="i32")
            build(S._gemm_tma_kernel, tma, dict(METRIC=1, KEY=True, FP8=fp8), c)
    build(S._gemm_kernel, gm, dict(METRIC=2, KEY=True, FP8=False), S.INT8_CONFIG)
    build(S._gemm_kernel, f8, dict(METRIC=2, KEY=True, FP8=True), S.INT8_CONFIG)
    scan = dict(a_ptr="*i32", b_ptr="*i32", out_ptr="*i64", flag_ptr="*i32", code="i32", M="i32", N="i32", W="i32",
                n_off="i32", stride_om="i32")
    for cfg in S.SCAN_CANDIDATES:
        build(S._scan_kernel, scan, dict(METRIC=1, KEY=True, HW=True), cfg)
    build(S._scan_kernel, {**scan, "out_ptr": "*i32"}, dict(METRIC=2, KEY=False, HW=True), S.SCAN_CONFIG)
    build(S._norms_kernel, dict(p_ptr="*u8", norms_ptr="*i32", flag_ptr="*i32", code="i32", R="i32", B="i32"),
          dict(BLOCK_R=16, BLOCK_B=256))
    build(P._pack_kernel, dict(t_ptr="*fp32", out_ptr="*u8", flag_ptr="*i32", n_bytes="i32", D="i32", B="i32"),
          dict(OFFSET=True, EVEN=False, INT8=False, BLOCK=1024))
    build(P._pack_words_kernel, dict(t_ptr="*i32", out_ptr="*u8", flag_ptr="*i32", n_bytes="i32"),
          dict(OFFSET=False, BLOCK=1024))
    build(P._unpack_kernel, dict(p_ptr="*u8", out_ptr="*i8", flag_ptr="*i32", n_bytes="i32", D="i32", B="i32"),
          dict(OFFSET=False, BLOCK=1024))
    build(P._unpack_words_kernel, dict(p_ptr="*u8", out_ptr="*i32", flag_ptr="*i32", n_bytes="i32"),
          dict(OFFSET=False, FP8=True, BLOCK=1024))
    for one, block in ((False, 1024), (True, 4096)):
        for packed in (False, True):
            build(Q._quantize_kernel, dict(x_ptr="*fp32", thr_ptr="*fp64", out_ptr="*u8" if packed else "*i8",
                                           flag_ptr="*i32", D="i32", B="i32", tau_ptr="*fp64"),
                  dict(STD=True, PACKED=packed, BLOCK=block, BLOCK_BYTES=256, ONE_BLOCK=one), dict(num_warps=8))
    for f64 in (False, True):
        for one in (False, True):
            build(Q._kth_abs_kernel, dict(x_ptr="*fp64" if f64 else "*fp32", out_ptr="*fp64", D="i32", k="i32"),
                  dict(F64=f64, ONE_BLOCK=one, BLOCK=4096, NBITS=63 if f64 else 31), dict(num_warps=8))
    build(A._bind_kernel, dict(a_ptr="*u8", b_ptr="*u8", out_ptr="*u8", flag_ptr="*i32", n="i32", B="i32"),
          dict(B_ROW=True, BLOCK=1024))
    build(A._permute_kernel, dict(a_ptr="*u8", out_ptr="*u8", flag_ptr="*i32", n="i32", B="i32", D="i32", k="i32"),
          dict(BLOCK=1024))
    build(A._permute_aligned_kernel, dict(a_ptr="*u8", out_ptr="*u8", flag_ptr="*i32", n="i32", B="i32", q="i32",
                                          r2="i32"), dict(BLOCK=1024))
    build(A._bundle_partial_kernel, dict(v_ptr="*u8", acc_ptr="*i32", flag_ptr="*i32", n="i32", B="i32", D="i32",
                                         rows_per="i32"), dict(BLOCK=256))
    build(A._bundle_kernel, dict(v_ptr="*u8", out_ptr="*u8", flag_ptr="*i32", n="i32", B="i32", D="i32",
                                 threshold="i32"), dict(PACKED=True, BLOCK=256))
    for cfg in E.ENCODE_CANDIDATES:
        build(E._encode_kernel, dict(x_ptr="*bf16", w_ptr="*bf16", thr_ptr="*fp32", out_ptr="*u8", N="i32", d="i32",
                                     B="i32", Bp="i32", stride_x="i32"),
              dict(DT=tl.bfloat16, UPCAST=False, GROUP=64), cfg)
    build(E._encode_kernel, dict(x_ptr="*fp32", w_ptr="*bf16", thr_ptr="*fp32", out_ptr="*u8", N="i32", d="i32",
                                 B="i32", Bp="i32", stride_x="i32"), dict(DT=tl.bfloat16, UPCAST=False, GROUP=64),
          {**E.ENCODE_CONFIG, "num_stages": 2})
    for cfg in E.STATS_CANDIDATES:
        build(E._stats_kernel, dict(x_ptr="*bf16", g_ptr="*bf16", m_ptr="*fp32", mean_ptr="*fp32", var_ptr="*fp32",
                                    thr_ptr="*fp32", flag_ptr="*i32", tau="fp32", N="i32", d="i32", D="i32",
                                    stride_x="i32"), dict(DT=tl.bfloat16, UPCAST=False, THR=True), cfg)
    print("ALL OK")
''')


def test_every_kernel_compiles_for_sm90():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the other Triton tests compile and run every kernel on it")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(BENCHMARKS)], capture_output=True, text=True, timeout=600,
                         env=env)
    assert out.returncode == 0 and "ALL OK" in out.stdout, out.stdout[-2000:] + out.stderr[-4000:]


def test_default_configs_do_not_spill_on_sm90():
    """The static sm_90 report (benchmarks/sass_report.py --quick): the default launch configs of
    the batched cosine GEMM (int8 and fp8), the mma kernel, the scan and the fused encode keep
    everything in registers (no local-memory stack), and the GEMM and encode use Hopper warpgroup
    MMA."""
    script = BENCHMARKS / "sass_report.py"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    rows = {}
    for line in out.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and cells[3].isdigit():
            rows[(cells[0], cells[1])] = cells
    for key in (("gemm int8", "cosine"), ("gemm fp8", "cosine"), ("mma (decode in registers)", "cosine"),
                ("scan", "cosine"), ("scan", "hamming"),
                ("encode", "bf16"), ("encode", "fp32"), ("encode stats", "bf16")):
        assert key in rows, sorted(rows)
        assert rows[key][4] == "0", (key, rows[key])
    assert rows[("gemm int8", "cosine")][6] == "IGMMA" and rows[("gemm fp8", "cosine")][6] == "QGMMA"
    assert rows[("encode", "bf16")][6] == "HGMMA"
