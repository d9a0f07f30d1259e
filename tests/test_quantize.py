"""quantize against the numpy reference, every threshold mode, fused packing, bad input."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ternhd
from ternhd import reference as ref

MODES = [dict(), dict(tau=0.5), dict(tau=0.0), dict(threshold="batch"), dict(threshold="batch", tau=0.1),
         dict(threshold=0.25), dict(threshold=0), dict(sparsity=0.7), dict(sparsity=0.0), dict(sparsity=1.0)]


@pytest.mark.parametrize("kw", MODES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (17, 333), (2, 4096), (0, 5)])
def test_quantize_matches_reference(simd, rng, kw, dtype, shape):
    x = rng.normal(size=shape).astype(dtype)
    got = ternhd.quantize(x, **kw)
    want = ref.quantize(x, **kw)
    assert got.dtype == np.int8 and got.shape == x.shape
    assert np.array_equal(got, want)
    assert np.array_equal(ternhd.quantize(x, packed=True, **kw), ref.pack_ternary(want))


def test_std_mode_is_per_row(rng):
    x = rng.normal(size=(5, 64))
    y = np.concatenate([x, 100 * rng.normal(size=(5, 64))])
    assert np.array_equal(ternhd.quantize(y)[:5], ternhd.quantize(x))


def test_sparsity_hits_fraction(rng):
    x = rng.normal(size=(20, 1000))
    for s in (0.1, 0.5, 0.7, 0.95):
        zeros = (ternhd.quantize(x, sparsity=s) == 0).mean(axis=1)
        assert np.all(np.abs(zeros - s) <= 1 / 1000 + 1e-12)


def test_nd_input_and_torch(rng):
    x = rng.normal(size=(2, 3, 50)).astype(np.float32)
    assert np.array_equal(ternhd.quantize(x), ref.quantize(x.reshape(6, 50)).reshape(2, 3, 50))
    xt = torch.from_numpy(x)
    out = ternhd.quantize(xt)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.int8
    out16 = ternhd.quantize(xt.to(torch.bfloat16).float())
    assert out16.shape == xt.shape
    assert ternhd.quantize(x[..., ::-1]).shape == x.shape


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(0, 5), dim=st.integers(1, 300), tau=st.floats(0, 2), seed=st.integers(0, 2**32 - 1))
def test_quantize_property(rows, dim, tau, seed):
    x = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    assert np.array_equal(ternhd.quantize(x, tau=tau), ref.quantize(x, tau=tau))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("kw", [dict(), dict(threshold="batch"), dict(threshold=0.1), dict(sparsity=0.5)], ids=str)
def test_nonfinite_rejected(bad, kw):
    x = np.ones((3, 10), np.float32)
    x[1, 7] = bad
    with pytest.raises(ValueError, match="^x: contains NaN or Inf"):
        ternhd.quantize(x, **kw)


def test_bad_arguments():
    x = np.ones((2, 4))
    with pytest.raises(ValueError, match="^threshold:"):
        ternhd.quantize(x, threshold="median")
    with pytest.raises(ValueError, match="^threshold:"):
        ternhd.quantize(x, threshold=-1.0)
    with pytest.raises(TypeError, match="^threshold:"):
        ternhd.quantize(x, threshold=[1.0])
    with pytest.raises(ValueError, match="^tau:"):
        ternhd.quantize(x, tau=-0.1)
    with pytest.raises(ValueError, match="^sparsity:"):
        ternhd.quantize(x, sparsity=1.5)
    with pytest.raises(ValueError, match="^sparsity:"):
        ternhd.quantize(x, sparsity=0.5, threshold=0.1)
    with pytest.raises(TypeError, match="^x:"):
        ternhd.quantize(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="^x:"):
        ternhd.quantize(np.ones(3, complex))
    with pytest.raises(ValueError, match="^x:"):
        ternhd.quantize(np.float32(1.0))


def test_integer_input_is_read_as_float():
    assert ternhd.quantize(np.array([[-5, 0, 5, 1]]), threshold=2).tolist() == [[-1, 0, 1, 0]]


def test_float32_compare_is_exact_against_float64_threshold(simd):
    # 0.1 is not a float32: values on either side of it must land as in float64 arithmetic
    f = np.float32(0.1)
    below = np.nextafter(f, np.float32(0))
    x = np.array([[f, below, -f, -below, np.nextafter(f, np.float32(1))]], np.float32)
    assert ternhd.quantize(x, threshold=0.1).tolist() == [[1, 0, -1, 0, 1]]
    assert np.array_equal(ternhd.quantize(x, threshold=0.1), ref.quantize(x, threshold=0.1))
    t = float(f)  # exactly representable: strict comparison keeps f itself at 0
    assert ternhd.quantize(x, threshold=t).tolist() == [[0, 0, 0, 0, 1]]
