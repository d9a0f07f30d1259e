"""Triton bind / permute / bundle on packed rows against plain numpy references on trits."""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("no CUDA device and TRITON_INTERPRET is not set", allow_module_level=True)

from ternhd import kernels as K  # noqa: E402
from ternhd import reference as R  # noqa: E402

DIMS = [1, 6, 64, 1029] + ([10000] if DEVICE == "cuda" else [])


def trits(rng, shape):
    t = rng.integers(-1, 2, size=shape).astype(np.int8)
    t[rng.random(shape) < 0.3] = 0
    return t


def dev(t):
    return torch.from_numpy(R.pack_ternary(t)).to(DEVICE)


@pytest.mark.parametrize("dim", DIMS)
def test_bind(dim):
    rng = np.random.default_rng(dim)
    a, b = trits(rng, (3, 4, dim)), trits(rng, (3, 4, dim))
    np.testing.assert_array_equal(K.bind(dev(a), dev(b)).cpu().numpy(), R.pack_ternary(a * b))
    np.testing.assert_array_equal(K.bind(dev(a), dev(b[1, 2])).cpu().numpy(), R.pack_ternary(a * b[1, 2]))
    # bind with itself gives the support (|a|); binding twice with a dense key restores a
    np.testing.assert_array_equal(K.bind(dev(a), dev(a)).cpu().numpy(), R.pack_ternary(np.abs(a)))
    key = rng.choice(np.array([-1, 1], np.int8), size=dim)
    twice = K.bind(K.bind(dev(a), dev(key)), dev(key))
    np.testing.assert_array_equal(twice.cpu().numpy(), R.pack_ternary(a))


@pytest.mark.parametrize("dim", DIMS)
def test_permute(dim):
    rng = np.random.default_rng(dim + 1)
    a = trits(rng, (2, 3, dim))
    for k in (0, 1, 3, -1, -5, dim - 1, dim + 2, 7 * dim + 3):
        got = K.permute(dev(a), k, dim).cpu().numpy()
        np.testing.assert_array_equal(got, R.pack_ternary(np.roll(a, k, axis=-1)), err_msg=f"k={k}")
    inv = K.permute(K.permute(dev(a), 5, dim), -5, dim)
    np.testing.assert_array_equal(inv.cpu().numpy(), R.pack_ternary(a))


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("n", [1, 2, 7])
def test_bundle(dim, n):
    rng = np.random.default_rng(dim * 10 + n)
    v = trits(rng, (3, n, dim))
    sums = v.astype(np.int32).sum(axis=1)
    np.testing.assert_array_equal(K.bundle(dev(v), dim, packed=False).cpu().numpy(), sums)
    for thr in (0, 1, 3):
        want = ((sums > thr).astype(np.int8) - (sums < -thr).astype(np.int8)).astype(np.int8)
        np.testing.assert_array_equal(K.bundle(dev(v), dim, threshold=thr).cpu().numpy(), R.pack_ternary(want))
    np.testing.assert_array_equal(K.bundle(dev(v[0]), dim).cpu().numpy(),
                                  R.pack_ternary(np.sign(sums[0]).astype(np.int8)))


@pytest.mark.parametrize("dim", [6, 64, 1029])
@pytest.mark.parametrize("lead", [(), (2,)])
def test_bundle_many_rows_split_over_programs(dim, lead):
    """n well above BUNDLE_MIN_ROWS with few groups: the rows are split over programs and the
    partial sums added atomically; same sums, packing and error as the one-pass kernel."""
    from ternhd.kernels import algebra as A

    n = 5 * A.BUNDLE_MIN_ROWS + 7
    rng = np.random.default_rng(dim + n)
    v = trits(rng, lead + (n, dim))
    sums = v.astype(np.int32).sum(axis=-2)
    np.testing.assert_array_equal(K.bundle(dev(v), dim, packed=False).cpu().numpy(), sums)
    for thr in (0, 5):
        want = ((sums > thr).astype(np.int8) - (sums < -thr).astype(np.int8)).astype(np.int8)
        np.testing.assert_array_equal(K.bundle(dev(v), dim, threshold=thr).cpu().numpy(), R.pack_ternary(want))
    bad = dev(v)
    bad[(0,) * len(lead) + (n - 3, 0)] |= 0b11
    with pytest.raises(ValueError, match="^vectors:.*0b11"):
        K.bundle(bad, dim)


def test_algebra_errors():
    p = dev(np.zeros((2, 8), np.int8))
    bad = p.clone()
    bad[1, 1] = 0b00110000
    with pytest.raises(ValueError, match="0b11"):
        K.bind(p, bad)
    with pytest.raises(ValueError, match="^a:.*0b11"):
        K.permute(bad, 1, 8)
    with pytest.raises(ValueError, match="^vectors:.*0b11"):
        K.bundle(bad, 8)
    with pytest.raises(ValueError, match="^b:"):
        K.bind(p, p[:, :1])
    with pytest.raises(ValueError, match="^a:"):
        K.permute(p, 1, 9)
    with pytest.raises(TypeError, match="^k:"):
        K.permute(p, 1.5, 8)
    with pytest.raises(ValueError, match="^threshold:"):
        K.bundle(p, 8, threshold=-1)
    with pytest.raises(TypeError, match="^a:"):
        K.bind(p.to(torch.int8), p)
