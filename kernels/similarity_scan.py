"""The popcount kernels of packed similarity: row norms and the scan (few queries, the one-query
search; memory-bound). Launched by :mod:`.similarity`, whose docstring states the contract."""
from __future__ import annotations

import triton
import triton.language as tl

from ._util import popcount32, raise_flag
from .similarity_jit import _cosine, _output


@triton.jit(do_not_specialize=["R", "B"])
def _norms_kernel(p_ptr, norms_ptr, flag_ptr, code, R, B, BLOCK_R: tl.constexpr, BLOCK_B: tl.constexpr):
    """Non-zeros per packed row (int32); raises the flag to ``code`` on an invalid 2-bit code."""
    rr = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    acc = tl.zeros([BLOCK_R, BLOCK_B], dtype=tl.int32)
    bad = tl.zeros([BLOCK_R, BLOCK_B], dtype=tl.int32)
    for k0 in range(0, B, BLOCK_B):
        rk = k0 + tl.arange(0, BLOCK_B)
        m = (rr[:, None] < R) & (rk[None, :] < B)
        x = tl.load(p_ptr + rr[:, None] * B + rk[None, :], mask=m, other=0).to(tl.int32)
        lo = x & 0x55
        hi = (x >> 1) & 0x55
        nz = lo | hi
        bad = bad | (lo & hi)
        nz = (nz & 0x11) + ((nz >> 2) & 0x11)
        acc += (nz & 0x0F) + (nz >> 4)
    tl.store(norms_ptr + rr, tl.sum(acc, axis=1), mask=rr < R)
    raise_flag(flag_ptr, tl.where(tl.max(tl.max(bad, axis=1), axis=0) != 0, code, 0))


@triton.jit(do_not_specialize=["M", "N", "n_off"])
def _scan_kernel(a_ptr, b_ptr, out_ptr, flag_ptr, code, M, N, W, n_off, stride_om,
                 METRIC: tl.constexpr, KEY: tl.constexpr, HW: tl.constexpr,
                 BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr, PREFETCH: tl.constexpr = False):
    """Program (n-block, m), m fastest so the queries share each database tile in L2: query row m
    against BLOCK_N database rows, as 32-bit words. PREFETCH: the next database tile is loaded
    before the current one is counted (two tiles in flight per warp).

    Per word d of the database and q of the query (``swap`` exchanges the bits of each pair):

    * dot and cosine: ``popc(d & ~swap(q) | swap(d) & swap(q))`` counts 2 per position where the
      trits are equal and non-zero, 1 where d is non-zero and q zero, 0 elsewhere, so it is
      ``dot + |d|``; with ``|d| = popc(d)`` that is two popcounts per word for both quantities;
    * hamming: ``x = d ^ q`` has a bit in a pair exactly where the trits differ, so it is one
      popcount of ``(x | x >> 1) & 0x55555555``.
    """
    pid = tl.program_id(0).to(tl.int64)
    m = pid % M
    rn = (pid // M) * BLOCK_N + tl.arange(0, BLOCK_N)
    rw0 = tl.arange(0, BLOCK_W)
    rows = b_ptr + rn * W
    in_n = rn < N
    acc1 = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.int32)  # dot + |d| (dot, cosine) or hamming
    acc2 = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.int32)  # |d| (dot, cosine)
    acc_na = tl.zeros([BLOCK_W], dtype=tl.int32)
    bad = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.uint32)
    if PREFETCH:
        d_next = tl.load(rows[:, None] + rw0[None, :], mask=in_n[:, None] & (rw0[None, :] < W), other=0)
    for w0 in range(0, W, BLOCK_W):
        rw = w0 + rw0
        q = tl.load(a_ptr + m * W + rw, mask=rw < W, other=0).to(tl.uint32, bitcast=True)
        if PREFETCH:
            d = d_next.to(tl.uint32, bitcast=True)
            rw2 = rw + BLOCK_W
            d_next = tl.load(rows[:, None] + rw2[None, :], mask=in_n[:, None] & (rw2[None, :] < W), other=0)
        else:
            d = tl.load(rows[:, None] + rw[None, :], mask=in_n[:, None] & (rw[None, :] < W),
                        other=0).to(tl.uint32, bitcast=True)
        dr = d >> 1
        bad = bad | (d & dr)
        if METRIC == 2:
            x = d ^ q[None, :]
            acc1 += popcount32((x | (x >> 1)) & 0x55555555, HW)
        else:
            qs = ((q >> 1) & 0x55555555) | ((q & 0x55555555) << 1)
            ds = (dr & 0x55555555) | ((d & 0x55555555) << 1)
            acc1 += popcount32(d ^ ((d ^ ds) & qs[None, :]), HW)  # bits of ds where qs is set, else of d
            acc2 += popcount32(d, HW)
            if METRIC == 1:
                acc_na += popcount32(q, HW)
    if METRIC == 2:
        score = tl.sum(acc1, axis=1)
    else:
        nd = tl.sum(acc2, axis=1)
        dotv = tl.sum(acc1, axis=1) - nd
        if METRIC == 0:
            score = dotv
        else:
            score = _cosine(dotv, tl.sum(acc_na, axis=0), nd)
    res = _output(score, METRIC, KEY, n_off + rn)
    tl.store(out_ptr + m * stride_om + rn, res, mask=in_n)
    bad = (bad & 0x55555555) != 0
    raise_flag(flag_ptr, tl.where(tl.max(tl.max(bad.to(tl.int32), axis=1), axis=0) != 0, code, 0))
