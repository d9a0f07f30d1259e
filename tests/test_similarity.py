"""dot / cosine / hamming / topk / Index against the numpy reference on every SIMD path."""
import numpy as np
import pytest
import torch
from conftest import random_trits
from hypothesis import given, settings
from hypothesis import strategies as st

import ternhd
from ternhd import reference as ref

DIMS = [1, 3, 4, 5, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1000, 2051]
METRICS = ["dot", "cosine", "hamming"]


def packed(rng, rows, dim, p_zero=1 / 3):
    return ternhd.pack_ternary(random_trits(rng, (rows, dim), p_zero))


def check_pairwise(a, b):
    for metric in METRICS:
        got = ternhd.pairwise(a, b, metric)
        want = getattr(ref, metric)(a, b)
        assert got.dtype == want.dtype and got.shape == want.shape
        if metric == "cosine":
            np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
        else:
            assert np.array_equal(got, want), metric


@pytest.mark.parametrize("dim", DIMS)
def test_pairwise_matches_reference(simd, rng, dim):
    check_pairwise(packed(rng, 5, dim), packed(rng, 9, dim))


@pytest.mark.parametrize("m,n", [(0, 3), (3, 0), (1, 1), (2, 257), (3, 600), (65, 5)])
def test_pairwise_shapes_and_blocks(simd, rng, m, n):
    # odd query counts exercise the 2-query micro-kernel tail, n > 256 several database blocks
    check_pairwise(packed(rng, m, 200), packed(rng, n, 200))


def test_functions_are_the_metrics(rng):
    a, b = packed(rng, 3, 70), packed(rng, 4, 70)
    assert np.array_equal(ternhd.dot(a, b), ref.dot(a, b))
    assert np.array_equal(ternhd.hamming(a, b), ref.hamming(a, b))
    np.testing.assert_allclose(ternhd.cosine(a, b), ref.cosine(a, b), atol=1e-6)


def test_cosine_with_zero_vector_is_zero(simd, rng):
    a = np.zeros((2, 16), np.uint8)
    b = packed(rng, 3, 64)
    assert (ternhd.cosine(a, b) == 0).all() and (ternhd.cosine(b, a) == 0).all()
    assert ternhd.cosine(a[0], a[0]) == 0


def test_self_similarity_and_extremes(simd, rng):
    t = random_trits(rng, (4, 333))
    p = ternhd.pack_ternary(t)
    assert np.allclose(np.diag(ternhd.cosine(p, p)), 1.0)
    assert np.array_equal(np.diag(ternhd.dot(p, p)), (t != 0).sum(1))
    assert np.allclose(ternhd.cosine(p, ternhd.pack_ternary(-t)).diagonal(), -1.0)
    assert (np.diag(ternhd.hamming(p, p)) == 0).all()


@settings(max_examples=40, deadline=None)
@given(dim=st.integers(1, 700), m=st.integers(0, 6), n=st.integers(0, 6), pz=st.floats(0, 1),
       seed=st.integers(0, 2**32 - 1))
def test_pairwise_property(dim, m, n, pz, seed):
    rng = np.random.default_rng(seed)
    a, b = packed(rng, m, dim, pz), packed(rng, n, dim, pz)
    for path in ternhd.simd_paths():
        with ternhd.use_simd(path):
            check_pairwise(a, b)


def test_one_dimensional_rows(rng):
    a, b = packed(rng, 1, 50)[0], packed(rng, 6, 50)
    assert ternhd.dot(a, b).shape == (6,)
    assert ternhd.dot(b, a).shape == (6,)
    assert ternhd.dot(a, a).shape == () and int(ternhd.dot(a, a)) == int(ref.dot(a, a)[0, 0])


def test_views_and_torch(rng):
    a, b = packed(rng, 10, 300), packed(rng, 7, 300)
    np.testing.assert_allclose(ternhd.cosine(a[::-2], b[::3]), ref.cosine(a[::-2], b[::3]), atol=1e-6)
    out = ternhd.cosine(torch.from_numpy(a), torch.from_numpy(b))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), ref.cosine(a, b), atol=1e-6)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n,k", [(1, 1), (5, 5), (300, 1), (300, 10), (1000, 37)])
def test_topk_matches_reference(simd, rng, metric, n, k):
    q, db = packed(rng, 5, 130), packed(rng, n, 130)
    s, i = ternhd.topk(q, db, k, metric)
    rs, ri = ref.topk(q, db, k, metric)
    assert i.dtype == np.int64 and i.shape == (5, k)
    assert np.array_equal(i, ri)
    assert s.dtype == rs.dtype
    np.testing.assert_allclose(s, rs, atol=1e-6)


def test_topk_ties_go_to_lower_index(simd, rng):
    db = np.repeat(packed(rng, 3, 64), 200, axis=0)  # many identical rows
    q = db[:2]
    for metric in METRICS:
        s, i = ternhd.topk(q, db, 17, metric)
        assert np.array_equal(i, ref.topk(q, db, 17, metric)[1])


def test_topk_low_dim_many_ties(simd, rng):
    q, db = packed(rng, 40, 3), packed(rng, 2000, 3)
    for metric in METRICS:
        assert np.array_equal(ternhd.topk(q, db, 25, metric)[1], ref.topk(q, db, 25, metric)[1])


def test_topk_many_queries_chunked(rng):
    # more queries than one internal chunk: bounded heaps, same answer
    q, db = packed(rng, 700, 40), packed(rng, 300, 40)
    ternhd.set_num_threads(2)
    try:
        s, i = ternhd.topk(q, db, 290, "dot")
    finally:
        ternhd.set_num_threads(0)
    rs, ri = ref.topk(q, db, 290, "dot")
    assert np.array_equal(i, ri) and np.array_equal(s, rs)


def test_topk_one_query_and_torch(rng):
    q, db = packed(rng, 1, 90)[0], packed(rng, 50, 90)
    s, i = ternhd.topk(q, db, 4)
    assert s.shape == (4,) and i.shape == (4,)
    st_, it = ternhd.topk(torch.from_numpy(q), torch.from_numpy(db), 4)
    assert isinstance(it, torch.Tensor) and np.array_equal(it.numpy(), i)


def test_index_matches_functions(simd, rng):
    q, db = packed(rng, 7, 515), packed(rng, 333, 515)
    index = ternhd.Index(db)
    assert len(index) == 333
    assert np.array_equal(index.norms, (ternhd.unpack_ternary(db, 515) != 0).sum(1))
    for metric in METRICS:
        assert np.array_equal(index.topk(q, 8, metric)[1], ref.topk(q, db, 8, metric)[1])
        np.testing.assert_allclose(index.pairwise(q, metric), getattr(ref, metric)(q, db), atol=1e-6)
    assert index.topk(q[0], 3)[1].shape == (3,)


def test_bad_inputs(rng):
    a, b = packed(rng, 3, 40), packed(rng, 3, 44)
    with pytest.raises(ValueError, match="^b: packed row width"):
        ternhd.dot(a, b)
    with pytest.raises(TypeError, match="^a:"):
        ternhd.dot(a.astype(np.int8), a)
    with pytest.raises(ValueError, match="^a:"):
        ternhd.dot(a[None], a)
    with pytest.raises(ValueError, match="^metric:"):
        ternhd.pairwise(a, a, "euclid")
    with pytest.raises(ValueError, match="^k:"):
        ternhd.topk(a, a, 0)
    with pytest.raises(ValueError, match="^k:"):
        ternhd.topk(a, a, 4)
    with pytest.raises(TypeError, match="^k:"):
        ternhd.topk(a, a, 1.5)
    with pytest.raises(ValueError, match="^database:"):
        ternhd.topk(a, a[0], 1)
    with pytest.raises(ValueError, match="^queries:"):
        ternhd.topk(b, a, 1)
    bad = a.copy()
    bad[1, 2] = 0xFF
    with pytest.raises(ValueError, match="^b:.*0b11"):
        ternhd.dot(a, bad)
    with pytest.raises(ValueError, match="^database:.*0b11"):
        ternhd.Index(bad)
    with pytest.raises(ValueError, match="^queries:"):
        ternhd.Index(a).topk(b, 1)
