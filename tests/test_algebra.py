"""bind / bundle / permute on packed rows against the numpy reference, on every SIMD path."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ternhd
from ternhd import reference as ref

PATHS = ternhd.simd_paths()
DIMS = [1, 2, 3, 4, 5, 7, 31, 33, 64, 127, 129, 255, 257, 1001, 4096, 4099]


def random_packed(rng: np.random.Generator, lead: tuple, dim: int, zeros: float = 0.3) -> np.ndarray:
    p = [(1 - zeros) / 2, zeros, (1 - zeros) / 2]
    return ref.pack_ternary(rng.choice(np.array([-1, 0, 1], np.int8), size=lead + (dim,), p=p))



# ------------------------------------------------------------------------------------------ bind
@pytest.mark.parametrize("dim", DIMS)
def test_bind_matches_reference(simd, dim):
    rng = np.random.default_rng(dim)
    a, b = random_packed(rng, (6,), dim), random_packed(rng, (6,), dim)
    np.testing.assert_array_equal(ternhd.bind(a, b), ref.bind(a, b))
    # one key against many rows, both ways round
    np.testing.assert_array_equal(ternhd.bind(a, b[2]), ref.bind(a, b[2]))
    np.testing.assert_array_equal(ternhd.bind(b[3], a), ref.bind(b[3], a))
    np.testing.assert_array_equal(ternhd.bind(a[0], b[0]), ref.bind(a[0], b[0]))


def test_bind_trit_table(simd):
    vals = np.array([-1, 0, 1], np.int8)
    ta, tb = np.meshgrid(vals, vals)
    ta, tb = ta.reshape(1, -1), tb.reshape(1, -1)
    out = ternhd.unpack_ternary(ternhd.bind(ternhd.pack_ternary(ta), ternhd.pack_ternary(tb)), 9)
    np.testing.assert_array_equal(out, ta * tb)


def test_bind_is_self_inverse_on_nonzero_keys(simd):
    rng = np.random.default_rng(1)
    a = random_packed(rng, (4,), 1000)
    key = random_packed(rng, (), 1000, zeros=0.0)
    np.testing.assert_array_equal(ternhd.bind(ternhd.bind(a, key), key), a)


def test_bind_broadcast_3d_and_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    a, b = random_packed(rng, (2, 3), 50), random_packed(rng, (3,), 50)
    np.testing.assert_array_equal(ternhd.bind(a, b), ref.bind(a, b))
    out = ternhd.bind(torch.from_numpy(a), torch.from_numpy(b))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8
    np.testing.assert_array_equal(out.numpy(), ref.bind(a, b))


def test_bind_errors():
    a = np.zeros((2, 4), np.uint8)
    with pytest.raises(TypeError, match="^a:"):
        ternhd.bind(a.astype(np.int8), a)
    with pytest.raises(ValueError, match="^b:"):
        ternhd.bind(a, np.zeros((2, 5), np.uint8))
    with pytest.raises(ValueError, match="^b:"):
        ternhd.bind(a, np.zeros((3, 4), np.uint8))
    bad = a.copy()
    bad[1, 3] = 0b00110000
    for path in PATHS:
        with ternhd.use_simd(path), pytest.raises(ValueError, match="0b11"):
            ternhd.bind(a, bad)


# ---------------------------------------------------------------------------------------- bundle
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 16, 17, 130, 1000])
def test_bundle_matches_reference(simd, dim, n):
    # n crosses the bit-sliced kernel's 16-row adder tree and count widths up to 10 bits
    rng = np.random.default_rng(dim * 10 + n)
    v = random_packed(rng, (n,), dim)
    for thr in (0, 1, 2.5, n - 1, n):
        np.testing.assert_array_equal(ternhd.bundle(v, threshold=thr), ref.bundle(v, thr))
    sums = ref.unpack_ternary(v, 4 * v.shape[-1]).astype(np.int64).sum(axis=0)
    got = ternhd.bundle(v, packed=False)
    assert got.dtype == np.int32 and got.shape == (4 * v.shape[-1],)
    np.testing.assert_array_equal(got, sums)


@pytest.mark.parametrize("n", [2, 3, 32, 1000])
def test_bundle_ties(simd, n):
    # rows and their negations: every sum is 0 (a tie: 0 at threshold 0), plus one row for odd n
    rng = np.random.default_rng(n)
    half = ref.unpack_ternary(random_packed(rng, (n // 2,), 1001), 1001)
    t = np.concatenate([half, -half] + ([ref.unpack_ternary(random_packed(rng, (1,), 1001), 1001)] if n % 2 else []))
    v = ternhd.pack_ternary(t)
    want = t.sum(axis=0, dtype=np.int32)
    np.testing.assert_array_equal(ternhd.bundle(v, packed=False)[:1001], want)
    np.testing.assert_array_equal(ternhd.unpack_ternary(ternhd.bundle(v), 1001), np.sign(want))
    assert (ternhd.bundle(v, threshold=1) == 0).all()


def test_bundle_large_is_threaded_and_exact(simd):
    # 3 groups x 1,500 rows x 2,048 bytes: enough input for the kernel to split over 2 threads
    rng = np.random.default_rng(6)
    v = random_packed(rng, (3, 1500), 8192, zeros=0.0)
    before = ternhd.get_num_threads()
    ternhd.set_num_threads(2)
    try:
        packed, sums = ternhd.bundle(v), ternhd.bundle(v, packed=False)
    finally:
        ternhd.set_num_threads(before)
    want = ternhd.unpack_ternary(v, 8192).sum(axis=-2, dtype=np.int32)
    np.testing.assert_array_equal(sums, want)
    np.testing.assert_array_equal(ternhd.unpack_ternary(packed, 8192), np.sign(want))


def test_bundle_sums_groups_and_torch(simd):
    rng = np.random.default_rng(5)
    v = random_packed(rng, (2, 3, 37), 150)
    sums = ternhd.bundle(v, packed=False)
    assert sums.shape == (2, 3, 152) and sums.dtype == np.int32
    np.testing.assert_array_equal(sums, ref.unpack_ternary(v, 152).astype(np.int32).sum(axis=-2))
    torch = pytest.importorskip("torch")
    out = ternhd.bundle(torch.from_numpy(v), packed=False)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.int32
    np.testing.assert_array_equal(out.numpy(), sums)


def test_bundle_groups_sequence_and_ties(simd):
    rng = np.random.default_rng(3)
    v = random_packed(rng, (3, 4, 7), 130)
    np.testing.assert_array_equal(ternhd.bundle(v), ref.bundle(v))
    rows = [v[0, i] for i in range(4)]
    np.testing.assert_array_equal(ternhd.bundle(rows), ref.bundle(v[0]))
    # a tie (+1 and -1) is 0; two agreeing votes win over one zero
    t = np.array([[1, 1, 0, -1], [-1, 1, 0, -1]], np.int8)
    np.testing.assert_array_equal(ternhd.unpack_ternary(ternhd.bundle(ternhd.pack_ternary(t)), 4), [0, 1, 0, -1])


def test_bundle_many_rows_no_overflow(simd):
    # more rows than an int16 lane holds: every row +1 at trit 0, -1 at trit 1
    n = 40000
    t = np.zeros((n, 8), np.int8)
    t[:, 0], t[:, 1] = 1, -1
    t[: n // 2 + 1, 2], t[n // 2 + 1:, 2] = 1, -1  # majority +1 by 2
    out = ternhd.unpack_ternary(ternhd.bundle(ternhd.pack_ternary(t), threshold=1.5), 8)
    np.testing.assert_array_equal(out, [1, -1, 1, 0, 0, 0, 0, 0])
    out = ternhd.unpack_ternary(ternhd.bundle(ternhd.pack_ternary(t), threshold=2), 8)
    np.testing.assert_array_equal(out, [1, -1, 0, 0, 0, 0, 0, 0])


def test_bundle_torch():
    torch = pytest.importorskip("torch")
    v = random_packed(np.random.default_rng(4), (5,), 77)
    out = ternhd.bundle(torch.from_numpy(v))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_array_equal(out.numpy(), ref.bundle(v))
    out = ternhd.bundle([torch.from_numpy(r) for r in v])
    np.testing.assert_array_equal(out.numpy(), ref.bundle(v))


def test_bundle_errors():
    with pytest.raises(ValueError, match="^vectors:"):
        ternhd.bundle(np.zeros((0, 4), np.uint8))
    with pytest.raises(ValueError, match="^vectors:"):
        ternhd.bundle([])
    with pytest.raises(ValueError, match="^vectors:"):
        ternhd.bundle(np.zeros(4, np.uint8))
    with pytest.raises(TypeError, match="^vectors:"):
        ternhd.bundle(np.zeros((2, 4), np.int32))
    with pytest.raises(ValueError, match="^threshold:"):
        ternhd.bundle(np.zeros((2, 4), np.uint8), threshold=-1)
    with pytest.raises(TypeError, match="^threshold:"):
        ternhd.bundle(np.zeros((2, 4), np.uint8), threshold="1")
    bad = np.zeros((3, 100), np.uint8)
    bad[2, 99] = 0b11
    for path in PATHS:
        with ternhd.use_simd(path), pytest.raises(ValueError, match="0b11"):
            ternhd.bundle(bad)
        with ternhd.use_simd(path), pytest.raises(ValueError, match="0b11"):
            ternhd.bundle(bad, packed=False)


# --------------------------------------------------------------------------------------- permute
@pytest.mark.parametrize("dim", DIMS)
def test_permute_matches_reference(simd, dim):
    rng = np.random.default_rng(dim + 7)
    a = random_packed(rng, (3,), dim)
    for k in sorted({0, 1, 2, 3, 4, 5, -1, -2, -5, dim - 1, dim, dim + 1, 3 * dim + 2, 63, 64, 65, 257, -130,
                     int(rng.integers(-5 * dim, 5 * dim))}):
        np.testing.assert_array_equal(ternhd.permute(a, k, dim), ref.permute(a, k, dim), err_msg=f"k={k}")


def test_permute_composes_and_inverts(simd):
    rng = np.random.default_rng(5)
    a = random_packed(rng, (2, 3), 1001)
    np.testing.assert_array_equal(ternhd.permute(ternhd.permute(a, 17, 1001), -17, 1001), a)
    np.testing.assert_array_equal(ternhd.permute(ternhd.permute(a, 5, 1001), 9, 1001), ternhd.permute(a, 14, 1001))


def test_permute_clears_padding_and_keeps_shape():
    torch = pytest.importorskip("torch")
    a = ref.pack_ternary(np.ones((1, 5), np.int8))
    for k in (0, 1, 4):
        out = ternhd.permute(a, k, 5)
        assert out[0, 1] == 0b01000000
    t = torch.from_numpy(random_packed(np.random.default_rng(6), (4,), 10))
    out = ternhd.permute(t, 3, 10)
    assert isinstance(out, torch.Tensor) and out.shape == t.shape
    np.testing.assert_array_equal(out.numpy(), ref.permute(t.numpy(), 3, 10))
    np.testing.assert_array_equal(ternhd.permute(t.numpy()[0], 3, 10), ref.permute(t.numpy()[0], 3, 10))


def test_permute_errors():
    a = np.zeros((2, 3), np.uint8)
    with pytest.raises(ValueError, match="^a:"):
        ternhd.permute(a, 1, 13)
    with pytest.raises(ValueError, match="^dim:"):
        ternhd.permute(a, 1, 0)
    with pytest.raises(TypeError, match="^k:"):
        ternhd.permute(a, 1.5, 12)
    with pytest.raises(TypeError, match="^a:"):
        ternhd.permute(a.astype(np.float32), 1, 12)
    bad = a.copy()
    bad[0, 2] = 0b11000000  # trit 8 invalid
    with pytest.raises(ValueError, match="0b11"):
        ternhd.permute(bad, 1, 12)
    # code 11 in the padding beyond dim is ignored, like unpack_ternary(p, dim)
    pad = a.copy()
    pad[0, 2] = 0b00000011
    np.testing.assert_array_equal(ternhd.permute(pad, 1, 11), ref.permute(pad, 1, 11))


# -------------------------------------------------------------------------------------- hypothesis
@settings(max_examples=60, deadline=None)
@given(dim=st.integers(1, 300), rows=st.integers(1, 4), n=st.integers(1, 40), k=st.integers(-1000, 1000),
       thr=st.integers(0, 6), seed=st.integers(0, 2**32 - 1), path=st.sampled_from(PATHS))
def test_algebra_hypothesis(dim, rows, n, k, thr, seed, path):
    rng = np.random.default_rng(seed)
    a, b = random_packed(rng, (rows,), dim), random_packed(rng, (rows,), dim)
    v = random_packed(rng, (rows, n), dim)
    with ternhd.use_simd(path):
        np.testing.assert_array_equal(ternhd.bind(a, b), ref.bind(a, b))
        np.testing.assert_array_equal(ternhd.bundle(v), ref.bundle(v))
        np.testing.assert_array_equal(ternhd.bundle(v, threshold=thr), ref.bundle(v, thr))
        np.testing.assert_array_equal(ternhd.bundle(v, packed=False),
                                      ref.unpack_ternary(v, 4 * v.shape[-1]).astype(np.int32).sum(axis=-2))
        np.testing.assert_array_equal(ternhd.permute(a, k, dim), ref.permute(a, k, dim))
