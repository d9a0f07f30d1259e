"""Ternary compression of training-sync payloads on ``torch.distributed``.

A float tensor is flattened and cut into chunks of ``chunk`` values (default 256). Each chunk is
sent as ``chunk`` trits in the 2-bit layout of docs/FORMAT.md plus one float32 scale:

* threshold ``thr = 0.7 * mean(|x|)`` over the chunk (the ternary-weight-network rule);
* trit ``t = sign(x)`` where ``|x| > thr``, else 0;
* scale ``s = mean(|x|)`` over the kept values (the least-squares scale for that support),
  so the chunk is reconstructed as ``s * t``.

That is ``2 + 32 / chunk`` bits per value instead of 32: 15.06x fewer bytes at ``chunk=256``.
With **error feedback** each sender adds the residual of its previous compression (what was
lost) to the next tensor before compressing it, so no gradient information is lost for good.

:func:`ternary_hook` is a DDP communication hook::

    state = ternhd.distributed.TernaryState()
    model.register_comm_hook(state, ternhd.distributed.ternary_hook)

Each rank compresses its gradient bucket (plus its residual), the payloads are exchanged with
``torch.distributed.all_gather_into_tensor`` (gloo on CPU, NCCL on GPU), and every rank decodes
and averages all of them, so all replicas apply the same update. :func:`allreduce_hook` is the
uncompressed baseline with the same byte accounting.

:class:`DeltaCompressor` compresses parameter / LoRA deltas the same way into a ``ternhd.packet``
(kind ``"delta"``: one packet row per chunk, one scale per row), :func:`delta_loads` decodes it
and :func:`apply_delta` adds it to a model.

torch is imported lazily: ``import ternhd`` works without it.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from . import packet as _packet
from ._arrays import check_int

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "DEFAULT_CHUNK", "TWN_FACTOR", "Ternary", "compress", "decompress", "compressed_nbytes", "TernaryState",
    "ternary_hook", "allreduce_hook", "DeltaCompressor", "delta_loads", "parameter_delta", "apply_delta",
]

DEFAULT_CHUNK = 256
TWN_FACTOR = 0.7
_DTYPES = ("float32", "float64", "float16", "bfloat16")


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is an extra
        raise ImportError("ternhd.distributed needs torch (pip install 'ternhd[torch]')") from None
    return torch


def _check_chunk(chunk: int) -> int:
    chunk = check_int(chunk, "chunk", 4)
    if chunk % 4:
        raise ValueError(f"chunk: must be a multiple of 4, got {chunk}")
    return chunk


# ----------------------------------------------------------------------------- tensor compression
@dataclass
class Ternary:
    """A compressed tensor.

    Attributes:
        packed: uint8 ``(n_chunks * chunk / 4,)``: the trits in the 2-bit layout (row ``i`` of
            ``packed.view(n_chunks, chunk // 4)`` is chunk ``i``; padding trits are 0).
        scales: float32 ``(n_chunks,)``.
        shape: the original shape; ``chunk``: values per chunk; ``dtype``: the original dtype.
    """

    packed: "torch.Tensor"
    scales: "torch.Tensor"
    shape: Tuple[int, ...]
    chunk: int
    dtype: Any

    @property
    def numel(self) -> int:
        return int(math.prod(self.shape))

    @property
    def nbytes(self) -> int:
        """Bytes on the wire: packed trits + scales."""
        return int(self.packed.numel() + 4 * self.scales.numel())


def compressed_nbytes(numel: int, chunk: int = DEFAULT_CHUNK) -> int:
    """Wire bytes of a compressed tensor of ``numel`` values: ``ceil(numel/chunk) * (chunk/4 + 4)``."""
    chunk = _check_chunk(chunk)
    return -(-check_int(numel, "numel", 0) // chunk) * (chunk // 4 + 4)


_CACHE: Dict[Tuple[str, str], "torch.Tensor"] = {}


def _cached(name: str, device: Any) -> "torch.Tensor":
    """Per-device constants: the 2-bit shifts and the byte -> 4 trits (float32) decode table."""
    torch = _torch()
    key = (name, str(device))
    t = _CACHE.get(key)
    if t is None:
        if name == "shifts":
            t = torch.tensor([6, 4, 2, 0], dtype=torch.uint8)
        else:
            codes = (torch.arange(256).view(-1, 1) >> torch.tensor([6, 4, 2, 0])) & 3
            t = (codes == 1).to(torch.float32) - (codes == 2).to(torch.float32)
        t = _CACHE[key] = t.to(device)
    return t


def _compress_flat(flat: "torch.Tensor", chunk: int) -> Tuple["torch.Tensor", "torch.Tensor"]:
    """float32 (n,) -> (packed uint8 (n_chunks*chunk/4,), scales float32 (n_chunks,))."""
    torch = _torch()
    n = flat.numel()
    nc = -(-n // chunk)
    v = flat if nc * chunk == n else torch.nn.functional.pad(flat, (0, nc * chunk - n))
    v = v.view(nc, chunk)
    a = v.abs()
    s = a.sum(1)
    if nc * chunk != n:  # the last chunk's mean is over its real values only
        s[-1] *= chunk / (n - (nc - 1) * chunk)
    thr = (TWN_FACTOR / chunk) * s
    keep = a > thr[:, None]
    nnz = keep.sum(1)
    scales = (a * keep).sum(1) / nnz.clamp(min=1)
    codes = keep.to(torch.uint8) * (1 + (v < 0).to(torch.uint8))  # 2-bit codes: 0, 1 (+1), 2 (-1)
    if sys.byteorder == "little":
        # Four codes c0..c3 read as one little-endian int32 sit at bits 0, 8, 16, 24: move them to
        # 6, 4, 2, 0 (first trit in the high bits) with four shifts on a quarter of the elements.
        w = codes.view(torch.int32)
        packed = (((w << 6) | (w >> 4) | (w >> 14) | (w >> 24)) & 0xFF).to(torch.uint8).view(-1)
    else:  # pragma: no cover - big-endian hosts
        packed = (codes.view(-1, 4) << _cached("shifts", flat.device)).sum(1, dtype=torch.uint8)
    return packed, scales.contiguous()


def _decompress_flat(packed: "torch.Tensor", scales: "torch.Tensor", n: int, chunk: int) -> "torch.Tensor":
    """Inverse of :func:`_compress_flat`: float32 (n,)."""
    trits = _cached("lut", packed.device)[packed.long()]
    return (trits.view(-1, chunk) * scales[:, None]).view(-1)[:n]


def compress(x: "torch.Tensor", chunk: int = DEFAULT_CHUNK) -> Ternary:
    """Ternary-compresses a float tensor (any shape, CPU or CUDA) chunk by chunk (see the module doc).

    Raises:
        TypeError: not a floating-point torch tensor. ValueError: NaN/Inf, bad ``chunk``.
    """
    torch = _torch()
    chunk = _check_chunk(chunk)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x: expected a floating-point torch.Tensor, got {type(x).__name__}")
    flat = x.detach().reshape(-1).to(torch.float32)
    if not bool(torch.isfinite(flat).all()):
        raise ValueError("x: contains NaN or Inf")
    packed, scales = _compress_flat(flat, chunk)
    return Ternary(packed, scales, tuple(x.shape), chunk, x.dtype)


def decompress(t: Ternary, dtype: Any = None) -> "torch.Tensor":
    """The reconstruction ``scale * trit`` of a :class:`Ternary`, in its original shape and dtype
    (or ``dtype``)."""
    out = _decompress_flat(t.packed, t.scales, t.numel, t.chunk).view(t.shape)
    return out.to(dtype or t.dtype)


# ----------------------------------------------------------------------------- DDP hooks
class TernaryState:
    """State of :func:`ternary_hook` (and byte counters for :func:`allreduce_hook`).

    Args:
        process_group: the group to sync over (None: the default group).
        chunk: values per scale (multiple of 4; 256 gives 15.06x fewer bytes than float32).
        error_feedback: keep each bucket's compression residual and add it to the next gradient.
        warmup_syncs: the first ``warmup_syncs`` syncs are sent uncompressed (all-reduce).

    Counters (this rank's contribution): ``syncs`` (buckets sent), ``bytes_sent``, ``bytes_dense``
    (what an uncompressed all-reduce of the same buckets carries), ``steps`` (syncs of bucket 0).
    """

    def __init__(self, process_group: Any = None, chunk: int = DEFAULT_CHUNK, error_feedback: bool = True,
                 warmup_syncs: int = 0):
        self.process_group = process_group
        self.chunk = _check_chunk(chunk)
        self.error_feedback = bool(error_feedback)
        self.warmup_syncs = check_int(warmup_syncs, "warmup_syncs", 0)
        self.residuals: Dict[int, "torch.Tensor"] = {}
        self.reset_stats()

    def reset_stats(self) -> None:
        self.syncs = 0
        self.steps = 0
        self.bytes_sent = 0
        self.bytes_dense = 0

    @property
    def compression_ratio(self) -> float:
        """``bytes_dense / bytes_sent`` so far (0 before the first sync)."""
        return self.bytes_dense / self.bytes_sent if self.bytes_sent else 0.0

    def bytes_per_step(self) -> Tuple[float, float]:
        """(sent, dense) bytes per optimizer step, averaged over the steps so far."""
        s = max(self.steps, 1)
        return self.bytes_sent / s, self.bytes_dense / s

    def __getstate__(self) -> Dict[str, Any]:  # DDP may pickle hook state; groups do not pickle
        d = dict(self.__dict__)
        d["process_group"] = None
        d["residuals"] = {}
        return d


def _count(state: TernaryState, bucket: Any, sent: int, dense: int) -> None:
    state.syncs += 1
    if bucket.index() == 0:
        state.steps += 1
    state.bytes_sent += sent
    state.bytes_dense += dense


def allreduce_hook(state: TernaryState, bucket):  # no annotation: DDP checks it against dist.GradBucket
    """Uncompressed baseline: averages the bucket with ``all_reduce`` (as DDP does by default) and
    counts its bytes into ``state``."""
    import torch.distributed as dist

    buf = bucket.buffer()
    nbytes = buf.numel() * buf.element_size()
    _count(state, bucket, nbytes, nbytes)
    group = state.process_group
    world = dist.get_world_size(group)
    fut = dist.all_reduce(buf, group=group, async_op=True).get_future()

    def finish(f):
        return f.value()[0].div_(world)

    return fut.then(finish)


def ternary_hook(state: TernaryState, bucket):  # (bucket: dist.GradBucket) -> Future[Tensor]
    """DDP communication hook: ternary-compressed, error-feedback gradient averaging.

    Register with ``model.register_comm_hook(TernaryState(...), ternary_hook)``. Works on any
    backend with ``all_gather_into_tensor`` (gloo, NCCL). Returns a ``torch.futures.Future`` of the
    averaged bucket, as DDP expects.
    """
    torch = _torch()
    import torch.distributed as dist

    if state.syncs < state.warmup_syncs:
        return allreduce_hook(state, bucket)
    group = state.process_group
    world = dist.get_world_size(group)
    buf = bucket.buffer()
    chunk = state.chunk
    n = buf.numel()
    x = buf.detach().to(torch.float32).reshape(-1)
    idx = bucket.index()
    if state.error_feedback:
        r = state.residuals.get(idx)
        if r is not None and r.shape == x.shape and r.device == x.device:
            x = x + r
    packed, scales = _compress_flat(x, chunk)
    if state.error_feedback:
        state.residuals[idx] = x - _decompress_flat(packed, scales, n, chunk)
    payload = torch.cat([packed, scales.view(torch.uint8)])
    _count(state, bucket, payload.numel(), n * buf.element_size())
    gathered = torch.empty(world * payload.numel(), dtype=torch.uint8, device=payload.device)
    # torch >= 2.12 names it all_gather_single; all_gather_into_tensor is the same collective before.
    gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    fut = gather(gathered, payload, group=group, async_op=True).get_future()
    nb = packed.numel()

    def finish(f):
        rows = gathered.view(world, -1)
        total = torch.zeros(n, dtype=torch.float32, device=buf.device)
        for r in range(world):
            sc = rows[r, nb:].contiguous().view(torch.float32)
            total += _decompress_flat(rows[r, :nb], sc, n, chunk)
        buf.copy_((total / world).view(buf.shape))
        return buf

    return fut.then(finish)


# ----------------------------------------------------------------------------- parameter deltas
def parameter_delta(new: Mapping[str, "torch.Tensor"], old: Mapping[str, "torch.Tensor"],
                    names: Optional[List[str]] = None) -> Dict[str, "torch.Tensor"]:
    """``new - old`` for every floating-point entry of two state dicts (or the given ``names``,
    e.g. the LoRA parameters)."""
    keys = list(names) if names is not None else [k for k, v in new.items() if v.is_floating_point()]
    out = {}
    for k in keys:
        if k not in old:
            raise ValueError(f"old: missing entry {k!r}")
        if new[k].shape != old[k].shape:
            raise ValueError(f"new: entry {k!r} has shape {tuple(new[k].shape)}, old {tuple(old[k].shape)}")
        out[k] = new[k].detach() - old[k].detach()
    return out


class DeltaCompressor:
    """Compresses named tensors (parameter or LoRA deltas) into one ternhd packet, with error
    feedback across calls: what one round loses is added to the same tensor's next round, so the
    sum of the decoded deltas tracks the sum of the true deltas (the gap is the current residual).

    >>> comp = DeltaCompressor()
    >>> blob = comp.dumps(parameter_delta(model.state_dict(), base))   # bytes on the wire
    >>> apply_delta(other_model, delta_loads(blob))

    Args:
        chunk: values per scale (a multiple of 4).
        encoding: packet payload encoding, ``"2bit"`` or ``"base3"`` (1.6 bits per trit).
        error_feedback: keep per-name residuals.
    """

    def __init__(self, chunk: int = DEFAULT_CHUNK, encoding: str = "2bit", error_feedback: bool = True,
                 checksum: str = "crc32"):
        self.chunk = _check_chunk(chunk)
        if encoding not in _packet.ENCODINGS:
            raise ValueError(f"encoding: expected one of {_packet.ENCODINGS}, got {encoding!r}")
        self.encoding = encoding
        self.checksum = checksum
        self.error_feedback = bool(error_feedback)
        self.residuals: Dict[str, "torch.Tensor"] = {}

    def dumps(self, deltas: Mapping[str, "torch.Tensor"], **meta: Any) -> bytes:
        """Named float tensors -> a delta packet (``**meta``: ``model_id`` and extra metadata)."""
        torch = _torch()
        if not isinstance(deltas, Mapping) or not deltas:
            raise TypeError("deltas: expected a non-empty mapping of name -> tensor")
        rows_p, rows_s, table = [], [], []
        for name, t in deltas.items():
            if not isinstance(name, str):
                raise TypeError(f"deltas: names must be strings, got {type(name).__name__}")
            if not isinstance(t, torch.Tensor) or not t.is_floating_point():
                raise TypeError(f"deltas[{name!r}]: expected a floating-point tensor")
            dtype = str(t.dtype).replace("torch.", "")
            if dtype not in _DTYPES:
                raise TypeError(f"deltas[{name!r}]: unsupported dtype {dtype}")
            x = t.detach().reshape(-1).to(device="cpu", dtype=torch.float32)
            if not bool(torch.isfinite(x).all()):
                raise ValueError(f"deltas[{name!r}]: contains NaN or Inf")
            if self.error_feedback:
                r = self.residuals.get(name)
                if r is not None and r.shape == x.shape:
                    x = x + r
            packed, scales = _compress_flat(x, self.chunk)
            if self.error_feedback:
                self.residuals[name] = x - _decompress_flat(packed, scales, x.numel(), self.chunk)
            rows_p.append(packed.view(-1, self.chunk // 4))
            rows_s.append(scales)
            table.append(dict(name=name, shape=list(t.shape), dtype=dtype, rows=int(scales.numel())))
        packed_all = torch.cat(rows_p).numpy()
        scales_all = torch.cat(rows_s).numpy()
        return _packet.dumps(packed_all, self.chunk, kind="delta", scales=scales_all, encoding=self.encoding,
                             checksum=self.checksum, tensors=table, **meta)


_MAX_TENSORS = 1 << 16


def delta_loads(data: Union[bytes, "_packet.Packet", Any], device: Any = "cpu") -> Dict[str, "torch.Tensor"]:
    """Decodes a delta packet into named tensors (original shapes and dtypes). Raises
    :class:`ternhd.PacketError` on any malformed, tampered or inconsistent packet."""
    torch = _torch()
    pkt = data if isinstance(data, _packet.Packet) else _packet.loads(data)
    if pkt.kind != "delta":
        raise _packet.PacketError(f"kind: expected a delta packet, got {pkt.kind!r}")
    if pkt.scales is None:
        raise _packet.PacketError("scales: a delta packet needs per-row scales")
    chunk = pkt.dim
    if chunk % 4:
        raise _packet.PacketError(f"dim: a delta packet's chunk must be a multiple of 4, got {chunk}")
    table = pkt.meta.get("tensors")
    if not isinstance(table, list) or not 0 < len(table) <= _MAX_TENSORS:
        raise _packet.PacketError("meta.tensors: expected a non-empty list")
    total_rows = 0
    entries = []
    seen = set()
    for e in table:
        if not isinstance(e, dict):
            raise _packet.PacketError("meta.tensors: entries must be objects")
        name, shape, dtype, rows = e.get("name"), e.get("shape"), e.get("dtype"), e.get("rows")
        if not isinstance(name, str) or name in seen:
            raise _packet.PacketError(f"meta.tensors: bad or repeated name {name!r}")
        seen.add(name)
        if dtype not in _DTYPES:
            raise _packet.PacketError(f"meta.tensors[{name!r}]: unsupported dtype {dtype!r}")
        if (not isinstance(shape, list) or len(shape) > 32
                or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s for s in shape)):
            raise _packet.PacketError(f"meta.tensors[{name!r}]: bad shape")
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise _packet.PacketError(f"meta.tensors[{name!r}]: bad row count")
        numel = math.prod(shape)
        if -(-numel // chunk) != rows:
            raise _packet.PacketError(f"meta.tensors[{name!r}]: {rows} rows cannot hold shape {shape}")
        total_rows += rows
        if total_rows > pkt.count:
            raise _packet.PacketError("meta.tensors: more rows than the packet holds")
        entries.append((name, shape, dtype, rows, numel))
    if total_rows != pkt.count:
        raise _packet.PacketError(f"meta.tensors: {total_rows} rows described, the packet holds {pkt.count}")
    packed = torch.from_numpy(np.array(pkt.vectors, copy=True)).view(-1, chunk // 4)
    scales = torch.from_numpy(np.array(pkt.scales, dtype=np.float32, copy=True))
    out: Dict[str, "torch.Tensor"] = {}
    r0 = 0
    for name, shape, dtype, rows, numel in entries:
        flat = _decompress_flat(packed[r0:r0 + rows].reshape(-1), scales[r0:r0 + rows], numel, chunk)
        out[name] = flat.view(shape).to(device=device, dtype=getattr(torch, dtype))
        r0 += rows
    return out


def apply_delta(target: Any, deltas: Mapping[str, "torch.Tensor"], alpha: float = 1.0) -> None:
    """Adds ``alpha * delta`` in place to the parameters / buffers of a module (by
    ``named_parameters`` / ``named_buffers`` name) or to the tensors of a state dict."""
    torch = _torch()
    if isinstance(target, torch.nn.Module):
        named = dict(target.named_parameters())
        named.update(dict(target.named_buffers()))
    elif isinstance(target, Mapping):
        named = dict(target)
    else:
        raise TypeError(f"target: expected a torch.nn.Module or a state dict, got {type(target).__name__}")
    with torch.no_grad():
        for k, d in deltas.items():
            if k not in named:
                raise ValueError(f"deltas: {k!r} is not in the target")
            t = named[k]
            if t.shape != d.shape:
                raise ValueError(f"deltas: {k!r} has shape {tuple(d.shape)}, the target {tuple(t.shape)}")
            t.add_(d.to(device=t.device, dtype=t.dtype), alpha=alpha)
