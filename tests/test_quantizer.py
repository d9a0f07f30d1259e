"""ternhd.Quantizer (fitted float -> ternary codes) and the Index that carries one."""
import numpy as np
import pytest

import ternhd
from ternhd import PacketError, Quantizer


def _data(n=1200, d=48, seed=0):
    rng = np.random.default_rng(seed)
    # anisotropic and off-centre, as real embeddings are
    return (rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + 3.0).astype(np.float32)


def _ref_trits(z, tau, scale=None):
    thr = tau * (scale[None] if scale is not None else z.std(1, keepdims=True, dtype=np.float64))
    return (np.sign(z) * (np.abs(z) > thr)).astype(np.int8)


def _mismatch(a, b):
    return float(np.mean(a != b))


def test_none_row_equals_the_quantize_kernel():
    x = _data()
    q = Quantizer("none", tau=0.3).fit(x)
    assert q.mean_ is None and q.rotation_ is None
    # the same thresholds as ternhd.quantize; float rounding may flip a value sitting on one
    assert _mismatch(q.encode(x, packed=False), ternhd.quantize(x, tau=0.3)) < 1e-4
    assert np.array_equal(ternhd.unpack_ternary(q.encode(x), x.shape[1]), q.encode(x, packed=False))


def test_dim_thresholds_and_centering():
    x = _data()
    q = Quantizer("none", threshold="dim", tau=0.5).fit(x)
    z = x.astype(np.float64) - x.mean(0)
    assert np.allclose(q.transform(x), z, atol=1e-4)
    assert np.allclose(q.scale_, z.std(0), rtol=1e-4)
    assert _mismatch(q.encode(x, packed=False), _ref_trits(z, 0.5, z.std(0))) < 1e-4
    # per-dimension: every dimension keeps about the same share of non-zeros, unlike per-row
    nz = (q.encode(x, packed=False) != 0).mean(0)
    assert nz.max() - nz.min() < 0.15


@pytest.mark.parametrize("rotation,dim", [("random", 32), ("random", 48), ("pca", 20), ("itq", 20), ("itq", 48)])
def test_rotations_are_orthonormal_and_applied(rotation, dim):
    x = _data()
    q = Quantizer(rotation, dim, tau=0.3).fit(x)
    r = q.rotation_
    assert r.shape == (48, dim)
    assert np.allclose(r.T @ r, np.eye(dim), atol=1e-4)
    assert np.allclose(q.transform(x), (x - x.mean(0)) @ r, atol=1e-3)
    assert q.encode(x).shape == (len(x), (dim + 3) // 4)


def test_pca_keeps_the_leading_directions():
    x = _data()
    q = Quantizer("pca", 5).fit(x)
    var = q.transform(x).var(0)
    assert np.all(np.diff(var) <= 1e-3 * var[0])  # descending variance
    total = ((x - x.mean(0)) ** 2).sum(1).mean()
    top5 = np.sort(np.linalg.eigvalsh(np.cov((x - x.mean(0)).T, bias=True)))[::-1][:5].sum()
    assert np.isclose(var.sum(), top5, rtol=1e-3) and var.sum() < total


def test_itq_lowers_the_quantization_loss():
    x = _data()

    def loss(q):
        z = q.transform(x).astype(np.float64)
        b = q.encode(x, packed=False).astype(np.float64)
        # the best scale per code, then the residual: how far the codes are from the rotated rows
        s = (z * b).sum() / max((b * b).sum(), 1)
        return float(((z - s * b) ** 2).sum())

    start = Quantizer("itq", 16, itq_iters=0, seed=3).fit(x)  # the random initial rotation
    learned = Quantizer("itq", 16, itq_iters=50, seed=3).fit(x)
    assert loss(learned) < 0.95 * loss(start)


def test_tau_auto_is_chosen_on_validation():
    x = _data(n=800)
    q = Quantizer("none", tau="auto").fit(x, validation=200)
    assert set(q.validation_) == set(ternhd.quantizer.TAU_GRID)
    assert q.tau_ == max(q.validation_, key=lambda t: (q.validation_[t], -t))
    assert all(0.0 <= r <= 1.0 for r in q.validation_.values())


def test_encoder_rotation():
    x = _data()
    enc = ternhd.HDCEncoder(in_dim=48, dim=256, seed=2)
    q = Quantizer(enc, tau=0.3).fit(x)
    assert q.dim == 256 and q.mean_ is None
    p = np.asarray(enc.projection_matrix(), np.float32)
    assert np.allclose(q.transform(x), x @ p, rtol=1e-4, atol=1e-3)
    assert _mismatch(q.encode(x, packed=False), ternhd.unpack_ternary(enc.encode(x), 256)) < 1e-3


def test_index_with_a_quantizer_searches_in_the_rotated_space(tmp_path):
    x = _data(n=1500)
    db, queries = x[:1400], x[1400:]
    q = Quantizer("itq", 24, threshold="dim", tau="auto").fit(db)
    index = ternhd.Index(dim=24, quantizer=q)
    ids = index.add(db, ids=np.arange(1400) + 10_000)
    assert len(index) == 1400 and ids[0] == 10_000
    plain = ternhd.Index(q.encode(db), ids=np.arange(1400) + 10_000)
    for queries_in, expect_in in [(queries, q.transform(queries)), (q.encode(queries), q.encode(queries))]:
        s1, i1 = index.search(queries_in, 7)
        s2, i2 = plain.search(expect_in, 7)
        assert np.array_equal(i1, i2) and np.allclose(s1, s2)
    # rescoring with float vectors: the float queries are the raw ones, not the rotated ones
    s, i = index.search(queries, 5, rescore=db, oversample=4)
    exact = np.einsum("mcd,md->mc", db[i - 10_000], queries)
    assert np.allclose(s, exact, rtol=1e-4)
    # the quantizer travels with the file (format version 2)
    path = tmp_path / "q.tnhd"
    index.save(path)
    for loaded in (ternhd.Index.load(path), ternhd.Index.view(path, verify=True)):
        assert loaded.quantizer is not None and loaded.quantizer.tau_ == q.tau_
        assert np.array_equal(loaded.quantizer.rotation_, q.rotation_)
        assert np.array_equal(loaded.search(queries, 7)[1], index.search(queries, 7)[1])
    # an index without one still writes version 1
    plain.save(tmp_path / "plain.tnhd")
    meta = ternhd.packet.loads((tmp_path / "plain.tnhd").read_bytes()).meta
    assert meta["ternhd_index"] == 1 and "quantizer" not in meta


def test_to_dict_round_trip_and_corrupt_records():
    x = _data()
    q = Quantizer("pca", 12, threshold="dim", tau=0.4).fit(x)
    back = Quantizer.from_dict(q.to_dict())
    assert np.array_equal(back.encode(x), q.encode(x))
    d = q.to_dict()
    d["rotation_"]["f32le"] = "!!not base64!!"
    with pytest.raises(ValueError, match="rotation_"):
        Quantizer.from_dict(d)
    d = q.to_dict()
    d["scale_"]["shape"] = [13]
    with pytest.raises(ValueError, match="quantizer"):
        Quantizer.from_dict(d)
    with pytest.raises(ValueError, match="quantizer"):
        Quantizer.from_dict({"quantizer": 99})


def test_bad_input():
    x = _data(n=100)
    with pytest.raises(ValueError, match="^rotation"):
        Quantizer("spin")
    with pytest.raises(ValueError, match="^threshold"):
        Quantizer(threshold="batch")
    with pytest.raises(ValueError, match="^tau"):
        Quantizer(tau="best")
    with pytest.raises(ValueError, match="^tau"):
        Quantizer(tau=-1.0)
    with pytest.raises(TypeError, match="^tau"):
        Quantizer(tau=[0.3])
    with pytest.raises(ValueError, match="^dim"):
        Quantizer("pca", 49).fit(x)
    with pytest.raises(ValueError, match="^dim"):
        Quantizer("none", 10).fit(x)
    with pytest.raises(ValueError, match="not fitted"):
        Quantizer().encode(x)
    bad = x.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="^x"):
        Quantizer().fit(bad)
    with pytest.raises(TypeError, match="^x"):
        Quantizer().fit(np.array([["a", "b"]]))
    q = Quantizer("pca", 8).fit(x)
    with pytest.raises(ValueError, match="^x"):
        q.encode(x[:, :40])
    with pytest.raises(TypeError, match="^quantizer"):
        ternhd.Index(dim=8, quantizer="pca")
    with pytest.raises(ValueError, match="^quantizer"):
        ternhd.Index(dim=8, quantizer=Quantizer("pca", 8))
    with pytest.raises(ValueError, match="^dim"):
        ternhd.Index(dim=16, quantizer=q)
    index = ternhd.Index(x, quantizer=q)
    with pytest.raises(ValueError, match="^queries"):
        index.search(x[:2, :40], 3)
    with pytest.raises(ValueError, match="^vectors"):
        index.add(x[:2, :40])


def test_tampered_quantizer_in_an_index_file(tmp_path):
    x = _data(n=200)
    q = Quantizer("pca", 8).fit(x)
    index = ternhd.Index(x, quantizer=q)
    path = tmp_path / "i.tnhd"
    index.save(path)
    # rewrite the file with a quantizer record for another width: the reader must refuse it
    from ternhd.similarity import _write_index

    rec = Quantizer("pca", 12).fit(x).to_dict()
    _write_index(path, np.asarray(index.vectors), 8, index.ids, {"ternhd_index": 2, "next_id": 200, "quantizer": rec})
    with pytest.raises(PacketError, match="quantizer"):
        ternhd.Index.load(path)
    with pytest.raises(PacketError, match="quantizer"):
        ternhd.Index.view(path)
