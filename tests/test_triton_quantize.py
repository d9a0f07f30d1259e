"""Triton quantize (every threshold mode, packed or not) against the C++ path."""
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

MODES = [dict(), dict(tau=0.7), dict(tau=0.0), dict(threshold="batch"), dict(threshold=0.25),
         dict(sparsity=0.7), dict(sparsity=0.0), dict(sparsity=1.0)]
# rows up to 4096 values take the one-block kernel path, longer ones the chunked loops
SHAPES = [(3, 1), (4, 6), (2, 3, 13), (3, 1100), (2, 4096), (2, 5001)] + ([(70, 4099)] if DEVICE == "cuda" else [])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", MODES, ids=[str(m) for m in MODES])
@pytest.mark.parametrize("packed", [False, True])
def test_quantize_matches_cpp(shape, mode, packed):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * rng.uniform(0.5, 3.0)).astype(np.float32)
    ref = ternhd.quantize(x, packed=packed, **mode)
    got = K.quantize(torch.from_numpy(x).to(DEVICE), packed=packed, **mode)
    assert got.dtype == (torch.uint8 if packed else torch.int8) and tuple(got.shape) == ref.shape
    np.testing.assert_array_equal(got.cpu().numpy(), ref)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16, torch.int32])
def test_quantize_dtypes(dtype):
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.standard_normal((3, 37)) * 4)
    if not dtype.is_floating_point:
        x = x.round()
    x = x.to(dtype)
    ref = ternhd.quantize(x, packed=True)  # the CPU path with the same conversions
    np.testing.assert_array_equal(K.quantize(x.to(DEVICE), packed=True).cpu().numpy(), ref.numpy())


def test_threshold_ties_exact():
    # values exactly at the threshold stay 0; the comparison is exact in float64 as on the CPU
    x = torch.tensor([[0.25, -0.25, 0.2500001, -0.2500001, 0.0, 1.0, -1.0]], dtype=torch.float32)
    ref = ternhd.quantize(x, threshold=0.25)
    np.testing.assert_array_equal(K.quantize(x.to(DEVICE), threshold=0.25).cpu(), ref)
    assert ref.tolist() == [[0, 0, 1, -1, 0, 1, -1]]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy under the interpreter: inf - inf
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("mode", [dict(), dict(threshold="batch"), dict(threshold=1.0), dict(sparsity=0.5)],
                         ids=["std", "batch", "fixed", "sparsity"])
def test_quantize_rejects_nonfinite(bad, mode):
    x = torch.zeros((2, 9))
    x[1, 5] = bad
    with pytest.raises(ValueError, match="^x: contains NaN or Inf"):
        K.quantize(x.to(DEVICE), **mode)


def test_quantize_argument_errors():
    # the mode arguments are validated by the public front (tests/test_quantize.py), once for both devices
    with pytest.raises(ValueError, match="^x:"):
        K.quantize(torch.tensor(1.0, device=DEVICE))
    with pytest.raises(TypeError, match="^x:"):
        K.quantize(torch.zeros(3, dtype=torch.complex64, device=DEVICE))


def test_quantize_empty():
    assert K.quantize(torch.zeros((0, 5), device=DEVICE), packed=True).shape == (0, 2)
    assert K.quantize(torch.zeros((2, 0), device=DEVICE)).shape == (2, 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [1, 7, 300, 5000])
def test_kth_abs_radix_select_matches_kthvalue(dtype, dim):
    """The sparsity threshold (radix select over the bits of |x|) is exactly torch.kthvalue's, with
    ties, signed zeros, denormals and row lengths above one block."""
    from ternhd.kernels.quantize import _kth_abs

    rng = np.random.default_rng(dim)
    x = torch.from_numpy(rng.standard_normal((5, dim)) * 10.0 ** rng.integers(-3, 4, size=(5, 1))).to(dtype)
    x[1] = x[1].round()  # many ties
    x[2, : dim // 2] = -0.0
    x[3, :: 3] = torch.finfo(dtype).tiny / 4  # denormals
    xd = x.to(DEVICE)
    for k in sorted({1, max(1, dim // 3), dim}):
        ref = torch.kthvalue(x.abs(), k, dim=1).values.to(torch.float64)
        np.testing.assert_array_equal(_kth_abs(xd, k).cpu().numpy(), ref.numpy())
