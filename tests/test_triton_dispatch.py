"""The public ternhd functions send CUDA tensors (through ternhd._device) to ternhd.kernels.dispatch,
with results identical
to the C++ path. Without a GPU the test routes CPU tensors through the same branch (the interpreter
runs the kernels) by treating every torch tensor as a device tensor."""
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("no CUDA device and TRITON_INTERPRET is not set", allow_module_level=True)

import ternhd  # noqa: E402
from ternhd import kernels as K  # noqa: E402


@pytest.fixture
def gpu_branch(monkeypatch):
    if DEVICE == "cpu":  # the one device seam: every torch tensor counts as a device tensor
        monkeypatch.setattr(importlib.import_module("ternhd._device"), "is_cuda", lambda x: isinstance(x, torch.Tensor))
    calls = []
    for name in ("pack_ternary", "unpack_ternary", "quantize", "pairwise", "topk"):
        fn = getattr(K.dispatch, name)

        def spy(*a, _fn=fn, _name=name, **kw):
            calls.append(_name)
            return _fn(*a, **kw)

        monkeypatch.setattr(K.dispatch, name, spy)
    return calls


def test_public_api_dispatches(gpu_branch):
    rng = np.random.default_rng(0)
    t = rng.integers(-1, 2, size=(11, 77)).astype(np.int8)
    p = ternhd.pack_ternary(t)
    tt = torch.from_numpy(t).to(DEVICE)
    got = ternhd.pack_ternary(tt)
    assert got.device.type == DEVICE
    np.testing.assert_array_equal(got.cpu().numpy(), p)
    np.testing.assert_array_equal(ternhd.pack_ternary(tt, layout="offset").cpu().numpy(),
                                  ternhd.pack_ternary(t, layout="offset"))
    np.testing.assert_array_equal(ternhd.unpack_ternary(got, 77).cpu().numpy(), t)
    x = rng.standard_normal((6, 77)).astype(np.float32)
    for kw in (dict(), dict(sparsity=0.5), dict(threshold="batch"), dict(threshold=0.1)):
        np.testing.assert_array_equal(ternhd.quantize(torch.from_numpy(x).to(DEVICE), packed=True, **kw).cpu().numpy(),
                                      ternhd.quantize(x, packed=True, **kw))
    pd = got
    for metric in ("dot", "cosine", "hamming"):
        for rows in (slice(0, 3), 2):
            np.testing.assert_array_equal(ternhd.pairwise(pd[rows], pd, metric).cpu().numpy(),
                                          ternhd.pairwise(p[rows], p, metric))
        s, i = ternhd.topk(pd[:2], pd, 4, metric)
        rs, ri = ternhd.topk(p[:2], p, 4, metric)
        np.testing.assert_array_equal(i.cpu().numpy(), ri)
        np.testing.assert_array_equal(s.cpu().numpy(), rs)
    np.testing.assert_array_equal(ternhd.cosine(pd, pd).cpu().numpy(), ternhd.cosine(p, p))
    assert {"pack_ternary", "unpack_ternary", "quantize", "pairwise", "topk"} <= set(gpu_branch)


def test_dispatch_contract_names():
    """Both sides of the device seam offer the same ops with the same parameters."""
    import inspect

    from ternhd import _cpu

    for name in ("pack_ternary", "unpack_ternary", "quantize", "pairwise", "topk", "bind", "bundle", "permute"):
        gpu, cpu = getattr(K.dispatch, name), getattr(_cpu, name)
        assert list(inspect.signature(gpu).parameters) == list(inspect.signature(cpu).parameters), name
    assert callable(K.dispatch.Index) and callable(K.dispatch.encode) and callable(K.dispatch.prepare_projection)


def test_kernels_import_in_fresh_process():
    # `import ternhd.kernels` resolves to the package shipped as ternhd/kernels (editable or wheel)
    code = "import ternhd.kernels as k, os; print(os.path.basename(os.path.dirname(k.__file__)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("kernels",)


def test_encoder_and_algebra_dispatch(monkeypatch):
    """HDCEncoder.encode, bind, bundle and permute on device tensors match the CPU path."""
    if DEVICE == "cpu":
        monkeypatch.setattr(importlib.import_module("ternhd._device"), "is_cuda", lambda x: isinstance(x, torch.Tensor))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((37, 48)).astype(np.float32)
    for kw in (dict(), dict(threshold="batch"), dict(threshold=0.2), dict(sparsity=0.6)):
        enc = ternhd.HDCEncoder(48, dim=130, seed=5, **kw)
        want = ternhd.unpack_ternary(enc.encode(x), 130)
        got = enc.encode(torch.from_numpy(x).to(DEVICE))
        assert got.device.type == DEVICE and got.dtype == torch.uint8
        got = ternhd.unpack_ternary(got.cpu().numpy(), 130)
        # float32 products summed in another order may flip trits that sit on the threshold
        assert (got != want).mean() <= 1e-3, (kw, (got != want).mean())
    t = rng.integers(-1, 2, size=(9, 77)).astype(np.int8)
    p = ternhd.pack_ternary(t)
    pd = torch.from_numpy(p).to(DEVICE)
    np.testing.assert_array_equal(ternhd.bind(pd, pd.flip(0)).cpu().numpy(), ternhd.bind(p, p[::-1]))
    np.testing.assert_array_equal(ternhd.bundle(pd).cpu().numpy(), ternhd.bundle(p))
    np.testing.assert_array_equal(ternhd.bundle(pd, threshold=2).cpu().numpy(), ternhd.bundle(p, threshold=2))
    for k in (0, 3, -5, 76, 1000):
        np.testing.assert_array_equal(ternhd.permute(pd, k, 77).cpu().numpy(), ternhd.permute(p, k, 77))
