"""Triton fused encode (projection tile + Gram-trick threshold + packing) against float64
references on the same rounded operands, and against ternhd.HDCEncoder."""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("no CUDA device and TRITON_INTERPRET is not set", allow_module_level=True)

import ternhd  # noqa: E402
from ternhd import kernels as K  # noqa: E402
from ternhd import reference as R  # noqa: E402
from ternhd.encoder import gaussian_projection  # noqa: E402

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
SHAPES = [(5, 8, 9), (21, 24, 37), (33, 50, 130)] + ([(1000, 768, 4096), (77, 300, 1001)] if DEVICE == "cuda" else [])
# |h - thr| / std(h) below which a trit may legitimately differ from the float64 reference
TOL = {torch.float32: 2e-3, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def reference_h(x, p, dtype):
    xr = torch.from_numpy(x).to(dtype).double().numpy()
    pr = torch.from_numpy(p).to(dtype).double().numpy()
    return xr @ pr


def check(got_trits, h, thr, tol, max_frac=2e-3):
    want = ((h > thr).astype(np.int8) - (h < -thr).astype(np.int8))
    diff = got_trits != want
    margin = np.abs(np.abs(h) - thr) / np.maximum(h.std(axis=1, keepdims=True), 1e-30)
    assert diff.mean() <= max_frac, diff.mean()
    if diff.any():
        assert margin[diff].max() < tol, margin[diff].max()


@pytest.mark.parametrize("n,d,dim", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_encode_std(n, d, dim, dtype):
    rng = np.random.default_rng(n + d + dim)
    p = gaussian_projection(d, dim, seed=3)
    x = (rng.standard_normal((n, d)) * 2 + 0.1).astype(np.float32)
    proj = K.prepare_projection(torch.from_numpy(p).to(DEVICE), dtype=dtype)
    out = K.encode(torch.from_numpy(x).to(DEVICE), proj)
    assert out.dtype == torch.uint8 and tuple(out.shape) == (n, (dim + 3) // 4)
    h = reference_h(x, p, dtype)
    thr = 0.3 * h.std(axis=1, keepdims=True)
    check(R.unpack_ternary(out.cpu().numpy(), dim), h, thr, TOL[dtype])
    mean, var = K.encode_stats(torch.from_numpy(x).to(DEVICE), proj)
    np.testing.assert_allclose(mean.cpu().numpy(), h.mean(axis=1), atol=5e-3 * h.std(axis=1).max())
    np.testing.assert_allclose(np.sqrt(var.cpu().numpy()), h.std(axis=1), rtol=TOL[dtype])


@pytest.mark.parametrize("mode", [dict(threshold="batch", tau=0.5), dict(threshold=0.2), dict(sparsity=0.7)],
                         ids=["batch", "fixed", "sparsity"])
def test_encode_modes(mode):
    n, d, dim = 17, 24, 45
    rng = np.random.default_rng(11)
    p = gaussian_projection(d, dim, seed=4)
    x = rng.standard_normal((n, d)).astype(np.float32)
    out = K.encode(torch.from_numpy(x).to(DEVICE), torch.from_numpy(p).to(DEVICE), packed=False,
                   dtype=torch.float32, **mode)
    assert out.dtype == torch.int8 and tuple(out.shape) == (n, dim)
    h = reference_h(x, p, torch.float32)
    thr = R.thresholds(h, mode.get("tau", 0.3), mode.get("threshold", "std"), mode.get("sparsity"))[:, None]
    check(out.cpu().numpy(), h, thr, 2e-3, max_frac=3e-3 if "sparsity" not in mode else 2e-2)


def test_encode_agrees_with_hdcencoder():
    enc = ternhd.HDCEncoder(40, dim=130, seed=5)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((25, 40)).astype(np.float32)
    ref = ternhd.unpack_ternary(enc.encode(x), 130)
    proj = K.prepare_projection(enc.projection_matrix(), dtype=torch.float32, device=DEVICE)
    got = ternhd.unpack_ternary(K.encode(torch.from_numpy(x).to(DEVICE), proj).cpu().numpy(), 130)
    assert (got != ref).mean() < 2e-3


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy under the interpreter: inf - inf
def test_encode_errors():
    proj = K.prepare_projection(gaussian_projection(8, 12), dtype=torch.float32, device=DEVICE)
    with pytest.raises(ValueError, match="^x:"):
        K.encode(torch.zeros((3, 7), device=DEVICE), proj)
    with pytest.raises(TypeError, match="^x:"):
        K.encode(torch.zeros((3, 8), dtype=torch.int32, device=DEVICE), proj)
    for bad in (float("nan"), float("inf"), -float("inf")):
        x = torch.ones((3, 8), device=DEVICE)
        x[1, 2] = bad
        for mode in (dict(), dict(threshold="batch"), dict(threshold=0.5), dict(sparsity=0.5)):
            with pytest.raises(ValueError, match="^x: contains NaN"):
                K.encode(x, proj, **mode)
    with pytest.raises(TypeError, match="^dtype:"):
        K.prepare_projection(gaussian_projection(8, 12), dtype=torch.int8)
    assert K.encode(torch.zeros((0, 8), device=DEVICE), proj).shape == (0, 3)
