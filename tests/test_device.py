"""The device seam (ternhd._device): which implementation each public op reaches, and the errors for
arguments on different devices. Fake CUDA tensors stand in for real ones (no GPU needed): the seam
reads only ``type(x).__module__`` and ``x.is_cuda`` / ``x.device``."""
from __future__ import annotations

import numpy as np
import pytest

import ternhd
from ternhd import _cpu, _device


class FakeCuda:
    """Looks like a CUDA uint8 tensor to the fronts' checks (shape, ndim, dtype)."""

    __module__ = "torch"
    is_cuda = True
    numpy = None
    dtype = "torch.uint8"

    def __init__(self, shape=(3, 4), device="cuda:0"):
        self.shape, self.ndim, self.device = shape, len(shape), device

    def reshape(self, *shape):
        return FakeCuda(tuple(shape), self.device)


def test_backend_picks_cpu_for_numpy_and_cpu_tensors():
    assert _device.backend(a=np.zeros(3)) is _cpu
    torch = pytest.importorskip("torch")
    assert _device.backend(a=torch.zeros(3), b=np.zeros(3)) is _cpu
    assert not _device.is_cuda(torch.zeros(3)) and not _device.is_cuda(np.zeros(3)) and not _device.is_cuda([1])


def test_mixed_devices_name_both_arguments():
    with pytest.raises(ValueError, match="^b: on the CPU but a is a CUDA tensor"):
        _device.backend(a=FakeCuda(), b=np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match="^b: on cuda:1 but a is on cuda:0"):
        _device.backend(a=FakeCuda(), b=FakeCuda(device="cuda:1"))
    with pytest.raises(ValueError, match="^b: on the CPU but a is a CUDA tensor"):
        ternhd.pairwise(FakeCuda(), np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match="^database: on the CPU but queries is a CUDA tensor"):
        ternhd.topk(FakeCuda(), np.zeros((3, 4), np.uint8), 1)


def test_cuda_arguments_reach_the_gpu_module_once_validated(monkeypatch):
    """Every public op validates in the front, then calls the GPU module's op of the same name."""
    import sys
    import types

    calls = []
    fake = types.ModuleType("ternhd.kernels.dispatch")
    for name in ("pack_ternary", "unpack_ternary", "quantize", "pairwise", "topk", "bind", "bundle", "permute"):
        setattr(fake, name, lambda *a, _n=name, **kw: calls.append(_n) or (FakeCuda(), FakeCuda())
                if _n == "topk" else calls.append(_n) or FakeCuda())
    pkg = types.ModuleType("ternhd.kernels")
    pkg.dispatch = fake
    monkeypatch.setitem(sys.modules, "ternhd.kernels", pkg)
    monkeypatch.setitem(sys.modules, "ternhd.kernels.dispatch", fake)
    x = FakeCuda()
    ternhd.unpack_ternary(x, 16)
    ternhd.pairwise(x, x)
    ternhd.topk(x, x, 2)
    ternhd.bind(x, x)
    ternhd.bundle(x)
    ternhd.permute(x, 1, 16)
    assert calls == ["unpack_ternary", "pairwise", "topk", "bind", "bundle", "permute"]
    # the front's checks run before the device is chosen, with the CPU path's messages
    with pytest.raises(ValueError, match="^packed: last axis has 4 bytes but dim=3 needs 1"):
        ternhd.unpack_ternary(x, 3)
    with pytest.raises(ValueError, match="^k: 4 exceeds the database size 3"):
        ternhd.topk(x, x, 4)
    with pytest.raises(ValueError, match="^metric:"):
        ternhd.pairwise(x, x, "l2")
    assert calls == ["unpack_ternary", "pairwise", "topk", "bind", "bundle", "permute"]


def test_index_is_one_class_over_a_device_implementation():
    db = ternhd.pack_ternary(np.random.default_rng(0).integers(-1, 2, (20, 37)).astype(np.int8))
    index = ternhd.Index(db)
    assert isinstance(index, ternhd.Index) and isinstance(index.impl, _cpu.Index)
    assert len(index) == 20 and index.nbytes == db.shape[1]
    with pytest.raises(ValueError, match="^queries: a CUDA tensor, but the index is on the CPU"):
        index.topk(FakeCuda((2, db.shape[1])), 1)
