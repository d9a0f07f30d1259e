"""Fused HDC encode in Triton: projection tile from ``tl.dot``, per-row threshold, 2-bit packing in
the epilogue. The ``N x D`` float projection never reaches global memory; only the packed
``N x ceil(D/4)`` bytes are written.

``h = x @ P`` with ``P`` ``(d, D)``. The per-row threshold ``tau * std(h_row)`` is known before ``h``
is formed (docs/FORMAT.md, the Gram identity): with ``G = P Pᵀ`` and ``m = P 1 / D``,
``mean(h) = x·m`` and ``var(h) = xᵀ G x / D - (x·m)²``. A small stats kernel computes them
(``O(N d²)``, ``d / D`` of the projection's work; it also writes the thresholds and flags NaN /
Inf), then the encode kernel forms each tile of ``h`` as one wide product whose four column blocks
are the four 2-bit slots of the output bytes (:func:`prepare_projection` stores the columns of
``P`` slot-major in groups), thresholds them and writes the packed bytes.

Precision: the products run on tensor cores in ``dtype`` (bfloat16 by default, or float16),
accumulated in float32 (``dtype=torch.float32``: exact float32 products on the CUDA cores,
slower), so a trit whose value lies within about ``1e-3 * std`` of the threshold may differ from
the float32 CPU encoder (``ternhd.HDCEncoder``); elsewhere they agree.
Under the interpreter, whose bfloat16 ``tl.dot`` is not usable, bfloat16 operands are rounded to
bfloat16 and multiplied in float32 (the same products).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

import torch
import triton
import triton.language as tl

from ._util import (
    autotune_enabled,
    check_tensor,
    grouped_tile,
    interpreting,
    launch,
    new_flag,
    raise_flag,
    raise_if,
    size_class,
    tune,
)

__all__ = ["Projection", "prepare_projection", "encode", "encode_stats"]

_DTYPES = {torch.bfloat16: tl.bfloat16, torch.float16: tl.float16, torch.float32: tl.float32}


@dataclass(frozen=True)
class Projection:
    """A projection prepared for :func:`encode`.

    Attributes:
        w: ``(d, 4 Bp)`` in ``dtype``, the columns of ``P`` (zero past ``D``) grouped slot-major by
            ``group`` output bytes: column ``(j // group) 4 group + s group + j % group`` holds
            ``P[:, 4 j + s]`` (output byte ``j``, 2-bit slot ``s``), so that one ``tl.dot`` of width
            ``4 BLOCK_B`` gives the four slot planes of ``BLOCK_B`` output bytes side by side.
            ``Bp`` is the packed width rounded up to ``group``.
        gram: ``(d, d)`` ``P Pᵀ`` in ``dtype``. mean: ``(d,)`` float32 ``P 1 / D``.
        in_dim, dim: ``d`` and ``D``. dtype: the compute dtype. group: a power of two (16 to 64).
    """
    w: torch.Tensor
    gram: torch.Tensor
    mean: torch.Tensor
    in_dim: int
    dim: int
    dtype: torch.dtype
    group: int

    def matrix(self) -> torch.Tensor:
        """``P`` ``(d, D)`` in the compute dtype, back in natural column order."""
        d, cols = self.w.shape
        g = self.group
        return self.w.reshape(d, cols // (4 * g), 4, g).permute(0, 1, 3, 2).reshape(d, cols)[:, :self.dim]


def prepare_projection(p: Any, dtype: torch.dtype = torch.bfloat16, device: Optional[Any] = None) -> Projection:
    """Slot-major copy of a projection ``P`` ``(d, D)`` (numpy array or tensor) plus its Gram matrix
    and column mean, on ``device`` (default: ``P``'s device, CPU for numpy). Prepare once, encode
    many batches."""
    if dtype not in _DTYPES:
        raise TypeError(f"dtype: expected one of {list(_DTYPES)}, got {dtype}")
    if not isinstance(p, torch.Tensor):
        import numpy as np

        arr = np.asarray(p)
        if arr.dtype.kind != "f":
            raise TypeError(f"p: expected a float projection matrix, got dtype {arr.dtype}")
        p = torch.from_numpy(np.ascontiguousarray(arr))
    if not p.is_floating_point():
        raise TypeError(f"p: expected a float projection matrix, got dtype {p.dtype}")
    if p.dim() != 2 or p.shape[0] < 1 or p.shape[1] < 1:
        raise ValueError(f"p: expected a non-empty (in_dim, dim) matrix, got shape {tuple(p.shape)}")
    if device is not None:
        p = p.to(device)
    d, D = p.shape
    p64 = p.to(torch.float64)
    B = (D + 3) // 4
    group = min(MAX_GROUP, max(16, triton.next_power_of_2(B)))
    Bp = (B + group - 1) // group * group
    padded = torch.zeros((d, 4 * Bp), dtype=torch.float64, device=p.device)
    padded[:, :D] = p64
    w = padded.reshape(d, Bp // group, group, 4).permute(0, 1, 3, 2).reshape(d, 4 * Bp).contiguous().to(dtype)
    gram = (p64 @ p64.T).to(dtype).contiguous()
    mean = (p64.sum(dim=1) / D).to(torch.float32).contiguous()
    return Projection(w=w, gram=gram, mean=mean, in_dim=d, dim=D, dtype=dtype, group=group)


@triton.jit
def _cast(x, DT: tl.constexpr, UPCAST: tl.constexpr):
    """Operand in the compute dtype; UPCAST (interpreter): rounded to DT, then float32."""
    y = x.to(DT)
    if UPCAST:
        y = y.to(tl.float32)
    return y


@triton.jit
def _mm(a, b, acc, DT: tl.constexpr, UPCAST: tl.constexpr):
    if UPCAST:
        r = tl.dot(a, b, acc, input_precision="ieee")
    elif DT == tl.float32:
        r = tl.dot(a, b, acc, input_precision="ieee")
    else:
        r = tl.dot(a, b, acc)
    return r


@triton.jit(do_not_specialize=["N", "D", "tau"])
def _stats_kernel(x_ptr, g_ptr, m_ptr, mean_ptr, var_ptr, thr_ptr, flag_ptr, tau, N, d, D, stride_x,
                  DT: tl.constexpr, UPCAST: tl.constexpr, THR: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """Per row of x: mean(h) = x·m and var(h) = xᵀGx / D - mean², float32; with THR also the
    threshold tau * sqrt(var). Raises the flag where mean or var is not finite (NaN / Inf in x)."""
    rm = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    rk = tl.arange(0, BLOCK_K)
    q = tl.zeros([BLOCK_M], dtype=tl.float32)
    mu = tl.zeros([BLOCK_M], dtype=tl.float32)
    for n0 in range(0, d, BLOCK_N):
        rn = n0 + tl.arange(0, BLOCK_N)
        acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
        for k0 in range(0, d, BLOCK_K):
            kk = k0 + rk
            xa = tl.load(x_ptr + rm[:, None] * stride_x + kk[None, :], mask=(rm[:, None] < N) & (kk[None, :] < d),
                         other=0.0)
            g = tl.load(g_ptr + kk[:, None] * d + rn[None, :], mask=(kk[:, None] < d) & (rn[None, :] < d), other=0.0)
            acc = _mm(_cast(xa, DT, UPCAST), _cast(g, DT, UPCAST), acc, DT, UPCAST)
        xn = tl.load(x_ptr + rm[:, None] * stride_x + rn[None, :], mask=(rm[:, None] < N) & (rn[None, :] < d),
                     other=0.0).to(tl.float32)
        mv = tl.load(m_ptr + rn, mask=rn < d, other=0.0)
        q += tl.sum(acc * xn, axis=1)
        mu += tl.sum(xn * mv[None, :], axis=1)
    var = tl.maximum(q / D - mu * mu, 0.0)
    tl.store(mean_ptr + rm, mu, mask=rm < N)
    tl.store(var_ptr + rm, var, mask=rm < N)
    if THR:
        tl.store(thr_ptr + rm, tau * tl.sqrt(var), mask=rm < N)
    bad = (rm < N) & ((mu != mu) | (var != var) | (tl.abs(mu) == float("inf")) | (var == float("inf")))
    raise_flag(flag_ptr, tl.max(bad.to(tl.int32)))


@triton.jit
def _slot_code(h, thr):
    return tl.where(h > thr, 1, tl.where(h < -thr, 2, 0))


@triton.jit(do_not_specialize=["N"])
def _encode_kernel(x_ptr, w_ptr, thr_ptr, out_ptr, N, d, B, Bp, stride_x,
                   DT: tl.constexpr, UPCAST: tl.constexpr, GROUP: tl.constexpr,
                   BLOCK_M: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    """Tile (BLOCK_M rows x BLOCK_B output bytes = 4 * BLOCK_B trits): one (BLOCK_M x 4 BLOCK_B)
    product per k-step, whose four column blocks are the four 2-bit slots (the slot-major
    projection layout); thresholded per row and packed into bytes. BLOCK_B divides GROUP."""
    pid_m, pid_b = grouped_tile(tl.program_id(0), N, B, BLOCK_M, BLOCK_B, GROUP_M)
    rm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    b0 = pid_b * BLOCK_B
    c = tl.arange(0, 4 * BLOCK_B)
    # column of w for tile column c = s * BLOCK_B + j (slot s of byte b0 + j)
    wcol = (b0 // GROUP) * (4 * GROUP) + b0 % GROUP + (c // BLOCK_B) * GROUP + c % BLOCK_B
    rk = tl.arange(0, BLOCK_K)
    x_rows = x_ptr + rm * stride_x
    acc = tl.zeros([BLOCK_M, 4 * BLOCK_B], dtype=tl.float32)
    for k0 in range(0, d, BLOCK_K):
        kk = k0 + rk
        xa = tl.load(x_rows[:, None] + kk[None, :], mask=(rm[:, None] < N) & (kk[None, :] < d), other=0.0)
        wt = tl.load(w_ptr + kk[:, None].to(tl.int64) * (4 * Bp) + wcol[None, :], mask=kk[:, None] < d, other=0.0)
        acc = _mm(_cast(xa, DT, UPCAST), _cast(wt, DT, UPCAST), acc, DT, UPCAST)
    thr = tl.load(thr_ptr + rm, mask=rm < N, other=0.0)[:, None, None, None]
    # (m, s_hi, s_lo, j) -> (m, j, s_hi, s_lo); split s_lo, then s_hi: the four slot planes
    a4 = tl.permute(tl.reshape(acc, (BLOCK_M, 2, 2, BLOCK_B)), (0, 3, 1, 2))
    lo0, lo1 = tl.split(_slot_code(a4, thr))
    s0, s2 = tl.split(lo0)
    s1, s3 = tl.split(lo1)
    byte = (s0 << 6) | (s1 << 4) | (s2 << 2) | s3
    rb = b0 + tl.arange(0, BLOCK_B)
    tl.store(out_ptr + rm[:, None] * B + rb[None, :], byte.to(tl.uint8), mask=(rm[:, None] < N) & (rb[None, :] < B))


def _compiled(device: torch.device) -> bool:
    return device.type == "cuda" and not interpreting()


def _as_input(x: Any, proj: Projection) -> torch.Tensor:
    x = check_tensor(x, "x")
    if x.dim() != 2 or x.shape[1] != proj.in_dim:
        raise ValueError(f"x: expected shape (N, {proj.in_dim}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x: expected a float tensor, got dtype {x.dtype}")
    if x.device != proj.w.device:
        raise ValueError(f"x: on {x.device} but the projection is on {proj.w.device}")
    if x.stride(1) != 1:
        x = x.contiguous()
    return x


#: Output bytes per column group of the slot-major projection layout (at most; fewer for small D).
MAX_GROUP = 64
#: Launch configurations on a compiled GPU for small problems and with ``TERNHD_AUTOTUNE=0``
#: (``config=`` / ``stats_config=`` override them); larger ones (``N d D`` at least ``TUNE_MIN_WORK``)
#: time the candidates on first use per shape class (``_util.tune``). ``BLOCK_B`` must divide the
#: projection's ``group`` (it is clamped to it).
ENCODE_CONFIG = dict(BLOCK_M=128, BLOCK_B=64, BLOCK_K=64, GROUP_M=8, num_warps=8, num_stages=3)
STATS_CONFIG = dict(BLOCK_M=64, BLOCK_N=128, BLOCK_K=64, num_warps=8, num_stages=3)
ENCODE_CANDIDATES = tuple(dict(BLOCK_M=m, BLOCK_B=b, BLOCK_K=k, GROUP_M=8, num_warps=w, num_stages=st)
                          for m, b, k, w, st in ((128, 64, 64, 8, 3), (128, 64, 64, 8, 4), (128, 32, 64, 8, 4),
                                                 (128, 64, 32, 8, 4), (256, 32, 64, 8, 3), (64, 64, 64, 4, 4),
                                                 (128, 32, 64, 4, 4)))
#: float32 compute dtype (exact products on the CUDA cores, as ``HDCEncoder.encode`` uses): narrower
#: tiles, since the bf16 tiles spill most of their accumulators there (benchmarks/sass_report.py).
ENCODE_CONFIG_F32 = dict(BLOCK_M=128, BLOCK_B=32, BLOCK_K=32, GROUP_M=8, num_warps=8, num_stages=2)
ENCODE_CANDIDATES_F32 = tuple(dict(BLOCK_M=m, BLOCK_B=b, BLOCK_K=32, GROUP_M=8, num_warps=w, num_stages=2)
                              for m, b, w in ((128, 32, 8), (64, 32, 8), (64, 32, 4), (128, 16, 8)))
STATS_CANDIDATES = tuple(dict(BLOCK_M=m, BLOCK_N=n, BLOCK_K=k, num_warps=w, num_stages=st)
                         for m, n, k, w, st in ((64, 128, 64, 8, 3), (64, 128, 64, 8, 4), (64, 128, 128, 8, 3),
                                                (128, 64, 64, 8, 3), (128, 64, 128, 8, 3), (64, 64, 64, 4, 4)))
TUNE_MIN_WORK = 1 << 33
_INTERPRETER_ENCODE = dict(BLOCK_M=16, BLOCK_B=16, BLOCK_K=32, GROUP_M=4)
_INTERPRETER_STATS = dict(BLOCK_M=16, BLOCK_N=32, BLOCK_K=32)


def _pick(name: str, x: torch.Tensor, config: Optional[dict], default: dict, interp: dict, candidates,
          key: tuple, work: int, run, fit) -> dict:
    """``config``, the interpreter tiles, the tuned choice (large problems) or the default, each
    passed through ``fit`` (clamps block sizes to the problem)."""
    if config is not None:
        return fit(dict(config))
    if not _compiled(x.device):
        return fit(dict(interp))
    if work < TUNE_MIN_WORK or not autotune_enabled():
        return fit(dict(default))
    return tune(name, key, [fit(dict(c)) for c in candidates], run)


def _stats(x: torch.Tensor, proj: Projection, config: Optional[dict], tau: Optional[float]):
    """Launches the stats kernel: ``(mean, var, thr, flag)``; ``thr`` (tau * std) only with ``tau``."""
    N, d = x.shape
    mean = torch.empty(N, dtype=torch.float32, device=x.device)
    var = torch.empty(N, dtype=torch.float32, device=x.device)
    thr = torch.empty(N if tau is not None else 1, dtype=torch.float32, device=x.device)
    flag = new_flag(x.device)
    if N == 0:
        return mean, var, thr, flag
    cap = max(16, triton.next_power_of_2(d))

    def fit(c):
        return {**c, "BLOCK_N": min(c["BLOCK_N"], cap), "BLOCK_K": min(c["BLOCK_K"], cap)}

    def run(c):
        return launch(_stats_kernel, (triton.cdiv(N, c["BLOCK_M"]),),
                      (x, proj.gram, proj.mean, mean, var, thr, flag, float(tau or 0.0), N, d, proj.dim, x.stride(0)),
                      c, DT=_DTYPES[proj.dtype], UPCAST=not _compiled(x.device), THR=tau is not None)

    cfg = _pick("encode.stats", x, config, STATS_CONFIG, _INTERPRETER_STATS, STATS_CANDIDATES,
                (proj.dtype, x.dtype, d, size_class(N)), N * d * proj.dim, run, fit)
    run(cfg)
    return mean, var, thr, flag


def encode_stats(x: torch.Tensor, proj: Projection, config: Optional[dict] = None):
    """``(mean, var)`` float32 ``(N,)`` of ``h = x @ P`` per row, by the Gram trick (no ``h``)."""
    x = _as_input(x, proj)
    mean, var, _, _ = _stats(x, proj, config, None)
    return mean, var


def encode(x: Any, projection: Union[Projection, Any], tau: float = 0.3, threshold: Union[str, float] = "std",
           sparsity: Optional[float] = None, packed: bool = True,
           dtype: torch.dtype = torch.bfloat16, config: Optional[dict] = None,
           stats_config: Optional[dict] = None) -> torch.Tensor:
    """Project and quantize in one pass: ``quantize(x @ P, tau, threshold, sparsity, packed)``.

    Args:
        x: float tensor ``(N, d)`` (CUDA, or CPU under ``TRITON_INTERPRET=1``).
        projection: a :class:`Projection` (from :func:`prepare_projection`, reuse it) or ``P``
            itself ``(d, D)`` (prepared on each call, in ``dtype``).
        tau, threshold: ``"std"`` (per row, from the Gram trick), ``"batch"`` (one std over the
            batch, from the same statistics) or a fixed number.
        sparsity: a fraction of zeros per row: needs a selection over each row, so ``h`` is formed
            (``torch.matmul`` in the compute dtype) and quantized by the Triton quantize kernel.
        packed: packed uint8 ``(N, ceil(D/4))`` (fused); ``False`` returns int8 ``(N, D)`` trits.
        dtype: compute dtype when ``projection`` is a raw matrix.
        config, stats_config: launch meta-parameters overriding ``ENCODE_CONFIG`` / ``STATS_CONFIG``.

    Returns:
        uint8 ``(N, ceil(D / 4))`` or int8 ``(N, D)``.

    Raises:
        ValueError: NaN or Inf in ``x`` (seen in the row statistics, so ``x`` is not read an extra
        time; with a fixed threshold, by ``torch.isfinite``), bad shapes.
        TypeError: non-float ``x``. The mode arguments are trusted: ``ternhd.HDCEncoder`` and
        ``ternhd.quantize`` validate them before they call here.
    """
    from .quantize import quantize

    proj = projection if isinstance(projection, Projection) else prepare_projection(
        projection, dtype=dtype, device=x.device if isinstance(x, torch.Tensor) else None)
    x = _as_input(x, proj)
    N, d = x.shape
    D, B = proj.dim, (proj.dim + 3) // 4
    if sparsity is not None:
        h = torch.matmul(x.to(proj.dtype), proj.matrix()).to(torch.float32)
        return quantize(h, tau=tau, threshold=threshold, sparsity=sparsity, packed=packed)
    flag = None  # a device flag checked after the launch: NaN / Inf in x make mean(h) or var(h) non-finite
    if isinstance(threshold, str):
        mean, var, thr, flag = _stats(x, proj, stats_config, float(tau) if threshold == "std" else None)
        if threshold == "batch":  # pooled variance of all N * D values
            mu = mean.mean() if N else mean.new_zeros(())
            pooled = ((var + mean * mean).mean() - mu * mu).clamp_min(0) if N else mu
            thr = (float(tau) * pooled.sqrt()).expand(N).contiguous()
    else:
        thr = torch.full((N,), float(threshold), dtype=torch.float32, device=x.device)
        flag = (~torch.isfinite(x)).any().to(torch.int32)
    out = torch.empty((N, B), dtype=torch.uint8, device=x.device)
    if N:
        def fit(c):
            c = {**c, "BLOCK_K": min(c["BLOCK_K"], max(16, triton.next_power_of_2(d))),
                 "BLOCK_B": min(c["BLOCK_B"], proj.group)}
            if x.element_size() > 2 and "num_stages" in c and config is None:
                c["num_stages"] = min(c["num_stages"], 2)  # float32 x tiles take twice the shared memory
            return c

        def run(c):
            grid = (triton.cdiv(N, c["BLOCK_M"]) * triton.cdiv(B, c["BLOCK_B"]),)
            return launch(_encode_kernel, grid, (x, proj.w, thr, out, N, d, B, proj.w.shape[1] // 4, x.stride(0)), c,
                          DT=_DTYPES[proj.dtype], UPCAST=not _compiled(x.device), GROUP=proj.group)

        f32 = proj.dtype == torch.float32
        run(_pick("encode", x, config, ENCODE_CONFIG_F32 if f32 else ENCODE_CONFIG, _INTERPRETER_ENCODE,
                  ENCODE_CANDIDATES_F32 if f32 else ENCODE_CANDIDATES,
                  (proj.dtype, x.dtype, d, proj.dim, size_class(N)), N * d * proj.dim, run, fit))
        raise_if(flag, "x: contains NaN or Inf")
    if packed:
        return out
    from .pack import unpack_ternary

    return unpack_ternary(out, D)
