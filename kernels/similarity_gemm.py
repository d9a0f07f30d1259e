"""The tensor-core kernels of packed similarity: ``mma`` (trit planes decoded in registers, int8
``tl.dot``) and the ``int8`` / ``fp8`` GEMMs on unpacked rows (plain and TMA-descriptor variants),
with the fused cosine / key epilogue. Launched by :mod:`.similarity`, whose docstring states the
contract."""
from __future__ import annotations

import triton
import triton.language as tl

from ._util import grouped_tile
from .similarity_jit import _decode_plane, _epilogue, _nonzero_plane


@triton.jit
def _store_tile(acc, acc2, na, nb_ptr, out_ptr, rm, rn, M, N, n_off, stride_om, METRIC: tl.constexpr,
                KEY: tl.constexpr):
    """Epilogue of a (rows rm x columns rn) accumulator tile: scores (or top-k keys) stored to out."""
    nb = tl.load(nb_ptr + rn, mask=rn < N, other=0)
    res = _epilogue(acc, acc2, na, nb, METRIC, KEY, n_off + rn.to(tl.int64)[None, :])
    rows = out_ptr + rm * stride_om  # one 64-bit row address per row, 32-bit column offsets
    tl.store(rows[:, None] + rn[None, :], res, mask=(rm[:, None] < M) & (rn[None, :] < N))


@triton.jit
def _gemm_epilogue(acc, acc2, rm, pid_n, na_ptr, nb_ptr, out_ptr, M, N, n_off, stride_om, METRIC: tl.constexpr,
                   KEY: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, SPLIT: tl.constexpr):
    """Stores a GEMM tile's scores; SPLIT (2 or 4): on two column halves or four quarters,
    a fraction of the live float64 registers of the cosine epilogue at a time (no spills where the
    whole tile would spill)."""
    na = tl.load(na_ptr + rm, mask=rm < M, other=0)
    if SPLIT == 4:  # column c = hi * 2q + lo * q + j (q = BLOCK_N / 4) -> (m, j, hi, lo): split lo, then hi
        a0, a1 = tl.split(tl.permute(tl.reshape(acc, (BLOCK_M, 2, 2, BLOCK_N // 4)), (0, 3, 1, 2)))
        b0, b1 = tl.split(tl.permute(tl.reshape(acc2, (BLOCK_M, 2, 2, BLOCK_N // 4)), (0, 3, 1, 2)))
        a00, a10 = tl.split(a0)
        a01, a11 = tl.split(a1)
        b00, b10 = tl.split(b0)
        b01, b11 = tl.split(b1)
        rq = pid_n * BLOCK_N + tl.arange(0, BLOCK_N // 4)
        _store_tile(a00, b00, na, nb_ptr, out_ptr, rm, rq, M, N, n_off, stride_om, METRIC, KEY)
        _store_tile(a01, b01, na, nb_ptr, out_ptr, rm, rq + BLOCK_N // 4, M, N, n_off, stride_om, METRIC, KEY)
        _store_tile(a10, b10, na, nb_ptr, out_ptr, rm, rq + BLOCK_N // 2, M, N, n_off, stride_om, METRIC, KEY)
        _store_tile(a11, b11, na, nb_ptr, out_ptr, rm, rq + 3 * (BLOCK_N // 4), M, N, n_off, stride_om, METRIC, KEY)
    elif SPLIT:
        acc_l, acc_r = tl.split(tl.permute(tl.reshape(acc, (BLOCK_M, 2, BLOCK_N // 2)), (0, 2, 1)))
        acc2_l, acc2_r = tl.split(tl.permute(tl.reshape(acc2, (BLOCK_M, 2, BLOCK_N // 2)), (0, 2, 1)))
        rn_l = pid_n * BLOCK_N + tl.arange(0, BLOCK_N // 2)
        _store_tile(acc_l, acc2_l, na, nb_ptr, out_ptr, rm, rn_l, M, N, n_off, stride_om, METRIC, KEY)
        _store_tile(acc_r, acc2_r, na, nb_ptr, out_ptr, rm, rn_l + BLOCK_N // 2, M, N, n_off, stride_om, METRIC, KEY)
    else:
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        _store_tile(acc, acc2, na, nb_ptr, out_ptr, rm, rn, M, N, n_off, stride_om, METRIC, KEY)


@triton.jit(do_not_specialize=["M", "N", "n_off"])
def _mma_kernel(a_ptr, b_ptr, na_ptr, nb_ptr, out_ptr, M, N, B, n_off, stride_om,
                METRIC: tl.constexpr, KEY: tl.constexpr, HW: tl.constexpr,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
                SPLIT: tl.constexpr = 0):
    """Tile (BLOCK_M queries x BLOCK_N rows): four int8 tl.dot per BLOCK_K packed bytes; SPLIT as in
    :func:`_gemm_epilogue`."""
    pid_m, pid_n = grouped_tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    rm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    a_rows = a_ptr + rm * B
    b_rows = b_ptr + rn.to(tl.int64) * B
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.int32)
    acc2 = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.int32)
    for k0 in range(0, B, BLOCK_K):
        kk = k0 + rk
        a = tl.load(a_rows[:, None] + kk[None, :], mask=(rm[:, None] < M) & (kk[None, :] < B), other=0)
        b = tl.load(b_rows[None, :] + kk[:, None], mask=(rn[None, :] < N) & (kk[:, None] < B), other=0)
        for s in tl.static_range(4):
            acc = tl.dot(_decode_plane(a, s, HW), _decode_plane(b, s, HW), acc, out_dtype=tl.int32)
            if METRIC == 2:
                acc2 = tl.dot(_nonzero_plane(a, s), _nonzero_plane(b, s), acc2, out_dtype=tl.int32)
    _gemm_epilogue(acc, acc2, rm, pid_n, na_ptr, nb_ptr, out_ptr, M, N, n_off, stride_om, METRIC, KEY,
                   BLOCK_M, BLOCK_N, SPLIT)


@triton.jit
def _nonzero_fp8(x):
    """|x| of float8 e4m3 trits (sign bit cleared): the non-zero plane as float8."""
    return (x.to(tl.uint8, bitcast=True) & 0x7F).to(tl.float8e4nv, bitcast=True)


@triton.jit
def _gemm_zeros(BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, FP8: tl.constexpr):
    """An accumulator tile: float32 for fp8 operands (exact: integers below 2**24), else int32."""
    if FP8:
        z = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    else:
        z = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.int32)
    return z


@triton.jit
def _gemm_step(a, b, acc, acc2, METRIC: tl.constexpr, FP8: tl.constexpr):
    """acc += a @ b (and for hamming acc2 += |a| @ |b|) on trit tiles a (M, K), b (K, N)."""
    if FP8:
        acc = tl.dot(a, b, acc)
        if METRIC == 2:
            acc2 = tl.dot(_nonzero_fp8(a), _nonzero_fp8(b), acc2)
    else:
        acc = tl.dot(a, b, acc, out_dtype=tl.int32)
        if METRIC == 2:
            acc2 = tl.dot(a * a, b * b, acc2, out_dtype=tl.int32)
    return acc, acc2


@triton.jit(do_not_specialize=["M", "N", "n_off"])
def _gemm_kernel(a_ptr, b_ptr, na_ptr, nb_ptr, out_ptr, M, N, K, n_off, stride_om,
                 METRIC: tl.constexpr, KEY: tl.constexpr, FP8: tl.constexpr,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
                 SPLIT: tl.constexpr = 0):
    """Tile (BLOCK_M x BLOCK_N) of a GEMM on unpacked trits a (M, K) and b (N, K), both K-major (the
    layout tensor-core products want), with the similarity epilogue fused. Operands are int8
    (int32 accumulation) or, with FP8, float8 e4m3 (float32 accumulation: every partial sum is an
    integer below 2**24, so exact)."""
    pid_m, pid_n = grouped_tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    rm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    a_rows = a_ptr + rm * K
    b_rows = b_ptr + rn.to(tl.int64) * K
    acc = _gemm_zeros(BLOCK_M, BLOCK_N, FP8)
    acc2 = _gemm_zeros(BLOCK_M, BLOCK_N, FP8)
    for k0 in range(0, K, BLOCK_K):
        kk = k0 + rk
        a_msk = (rm[:, None] < M) & (kk[None, :] < K)
        b_msk = (rn[None, :] < N) & (kk[:, None] < K)
        if FP8:  # the interpreter cannot cast an integer 0 to float8
            a = tl.load(a_rows[:, None] + kk[None, :], mask=a_msk, other=0.0)
            b = tl.load(b_rows[None, :] + kk[:, None], mask=b_msk, other=0.0)
        else:
            a = tl.load(a_rows[:, None] + kk[None, :], mask=a_msk, other=0)
            b = tl.load(b_rows[None, :] + kk[:, None], mask=b_msk, other=0)
        acc, acc2 = _gemm_step(a, b, acc, acc2, METRIC, FP8)
    _gemm_epilogue(acc, acc2, rm, pid_n, na_ptr, nb_ptr, out_ptr, M, N, n_off, stride_om, METRIC, KEY,
                   BLOCK_M, BLOCK_N, SPLIT)


@triton.jit(do_not_specialize=["M", "N", "n_off"])
def _gemm_tma_kernel(a_desc, b_desc, na_ptr, nb_ptr, out_ptr, M, N, K, n_off, stride_om,
                     METRIC: tl.constexpr, KEY: tl.constexpr, FP8: tl.constexpr,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
                     SPLIT: tl.constexpr = 0):
    """:func:`_gemm_kernel` with the operand tiles fetched by tensor-memory-accelerator descriptors
    (Hopper and later; rows and columns past the tensor come back as zeros), block shapes
    (BLOCK_M, BLOCK_K) for a and (BLOCK_N, BLOCK_K) for b."""
    pid_m, pid_n = grouped_tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    om = pid_m * BLOCK_M
    on = pid_n * BLOCK_N
    acc = _gemm_zeros(BLOCK_M, BLOCK_N, FP8)
    acc2 = _gemm_zeros(BLOCK_M, BLOCK_N, FP8)
    for k0 in range(0, K, BLOCK_K):
        acc, acc2 = _gemm_step(a_desc.load([om, k0]), b_desc.load([on, k0]).T, acc, acc2, METRIC, FP8)
    rm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    _gemm_epilogue(acc, acc2, rm, pid_n, na_ptr, nb_ptr, out_ptr, M, N, n_off, stride_om, METRIC, KEY,
                   BLOCK_M, BLOCK_N, SPLIT)
