"""ternhd.Index as a search product: ids, add / remove, search, range_search, asymmetric (float /
int8) queries, rescoring, save / load / view, and bad input."""
import os

import numpy as np
import pytest

import ternhd
from ternhd import reference
from ternhd.packet import PacketError
from ternhd.similarity import INDEX_FORMAT, Index


def _data(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.choice(np.array([-1, 0, 1], np.int8), size=(n, dim), p=[0.35, 0.3, 0.35])
    return t, ternhd.pack_ternary(t)


def _float_ref(q, t, metric):
    s = q.astype(np.float64) @ t.astype(np.float64).T
    if metric == "cosine":
        den = np.linalg.norm(q.astype(np.float64), axis=1)[:, None] * np.sqrt((t != 0).sum(1))[None]
        s = np.where(den > 0, s / np.where(den > 0, den, 1), 0.0)
    return s


def _ref_topk(s, k):
    order = np.lexsort((np.broadcast_to(np.arange(s.shape[1]), s.shape), -s), axis=-1)[:, :k]
    return np.take_along_axis(s, order, 1), order


def test_add_search_ids_match_topk():
    t, p = _data(200, 100)
    ids = np.arange(200, dtype=np.int64) * 7 + 1000
    idx = Index(dim=100)
    assert len(idx) == 0
    got = idx.add(p[:120], ids=ids[:120])
    np.testing.assert_array_equal(got, ids[:120])
    idx.add(p[120:], ids=ids[120:])
    assert len(idx) == 200 and idx.dim == 100
    q = p[:5]
    for metric in ("cosine", "dot", "hamming"):
        s_ref, i_ref = ternhd.topk(q, p, 10, metric)
        s, i = idx.search(q, 10, metric)
        np.testing.assert_array_equal(s, s_ref)
        np.testing.assert_array_equal(i, ids[i_ref])
    s1, i1 = idx.search(q[0], 3)
    assert s1.shape == (3,) and i1.shape == (3,)
    # the old API still answers with positions
    s2, pos = idx.topk(q, 4)
    np.testing.assert_array_equal(idx.ids[pos], idx.search(q, 4)[1])
    assert idx.norms.shape == (200,) and idx.nbytes == 25


def test_default_ids_and_remove():
    t, p = _data(50, 64, 1)
    idx = Index(p[:20])
    np.testing.assert_array_equal(idx.ids, np.arange(20))
    np.testing.assert_array_equal(idx.add(p[20:30]), np.arange(20, 30))
    assert idx.remove([3, 25, 7]) == 3
    assert len(idx) == 27 and 3 not in idx.ids and 25 not in idx.ids
    keep = np.array([i for i in range(30) if i not in (3, 7, 25)])
    s_ref, i_ref = ternhd.topk(p[:4], p[keep], 5)
    s, i = idx.search(p[:4], 5)
    np.testing.assert_array_equal(s, s_ref)
    np.testing.assert_array_equal(i, keep[i_ref])
    # removed ids can come back; new default ids continue after the largest
    idx.add(p[3], ids=[3])
    assert idx.add(p[40:42])[0] == 30
    with pytest.raises(ValueError, match="not in the index"):
        idx.remove([7])
    assert len(idx) == 30  # nothing removed by the failed call


def test_asymmetric_matches_float_reference():
    t, p = _data(300, 130, 2)
    idx = Index(p, dim=130)
    rng = np.random.default_rng(3)
    q = rng.standard_normal((6, 130)).astype(np.float32)
    for metric in ("dot", "cosine"):
        ref = _float_ref(q, t, metric)
        s, i = idx.search(q, 12, metric)
        s_ref, i_ref = _ref_topk(ref, 12)
        np.testing.assert_allclose(s, s_ref, rtol=1e-5, atol=1e-4)
        # the same rows, up to float32 near-ties
        np.testing.assert_allclose(np.take_along_axis(ref, i, 1), s_ref, rtol=1e-5, atol=1e-4)
    # int8 queries are exact
    q8 = rng.integers(-127, 128, (4, 130)).astype(np.int8)
    ref = _float_ref(q8, t, "dot")
    s, i = idx.search(q8, 300, "dot")
    s_ref, i_ref = _ref_topk(ref, 300)
    np.testing.assert_array_equal(s, s_ref)
    np.testing.assert_array_equal(i, i_ref)
    with pytest.raises(ValueError, match="hamming"):
        idx.search(q, 3, "hamming")


@pytest.mark.parametrize("m,n,dim", [(1, 37, 5), (3, 300, 130), (5, 257, 63), (6, 301, 257), (17, 600, 1027),
                                     (40, 1100, 200)])
def test_asymmetric_search_every_path(tmp_path, m, n, dim):
    """Few-query (m < 6) and table (m >= 6) kernels, row counts around the 256-row segments, odd dims:
    scores within float32 rounding of float64, the reference's rows up to near-ties, on every SIMD
    path, for the bit planes and a memory-mapped view alike."""
    t, p = _data(n, dim, seed=m + n)
    idx = Index(p, dim=dim)
    path = tmp_path / "db.tnhd"
    idx.save(path)
    view = Index.view(path)
    q = np.random.default_rng(dim).standard_normal((m, dim)).astype(np.float32)
    q[0, : dim // 2] = 0.0  # exact zeros in a query
    k = min(n, 11)
    for metric in ("dot", "cosine"):
        ref = _float_ref(q, t, metric)
        s_ref, _ = _ref_topk(ref, k)
        for simd in ternhd.simd_paths():
            with ternhd.use_simd(simd):
                for index in (idx, view):
                    s, i = index.search(q, k, metric)
                    np.testing.assert_allclose(s, s_ref, rtol=1e-5, atol=1e-4)
                    np.testing.assert_allclose(np.take_along_axis(ref, i.astype(np.int64), 1), s_ref, rtol=1e-5,
                                               atol=1e-4)
                    assert (np.diff(s, axis=1) <= 0).all()  # best first


def test_asymmetric_topk_in_query_chunks():
    """300,000 rows and k = 256 put a query's candidate lists past 4 MiB, so float_topk runs the 40
    queries in chunks of 16 (16, 16, 8): int8 queries are exact, so the result equals the reference."""
    t, p = _data(300_000, 4, seed=21)
    idx = Index(p, dim=4)
    q = np.random.default_rng(22).integers(-127, 128, (40, 4)).astype(np.int8)
    s, i = idx.search(q, 256, "dot")
    s_ref, i_ref = _ref_topk(_float_ref(q, t, "dot"), 256)
    np.testing.assert_array_equal(s, s_ref)
    np.testing.assert_array_equal(i, i_ref)


def test_rescore_array_and_callable():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((400, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    codes = ternhd.quantize(x, packed=True)
    idx = Index(codes, dim=64, ids=np.arange(400) + 5)
    q = x[:8] + 0.05 * rng.standard_normal((8, 64)).astype(np.float32)
    exact = np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :10] + 5
    s, ids = idx.search(q, 10, rescore=x, oversample=8)
    s_exact = np.take_along_axis(q @ x.T, ids - 5, 1)
    np.testing.assert_allclose(s, s_exact, rtol=1e-5, atol=1e-5)
    assert (np.diff(s, axis=1) <= 0).all()
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact)])
    assert recall >= 0.9
    s2, ids2 = idx.search(q, 10, rescore=lambda c: (q[:, None, :] * x[c - 5]).sum(-1), oversample=8)
    np.testing.assert_array_equal(ids2, ids)
    with pytest.raises(ValueError, match="rescore_queries"):
        idx.search(codes[:2], 3, rescore=x)
    s3, ids3 = idx.search(codes[:2], 3, rescore=x, rescore_queries=x[:2])
    assert ids3[0, 0] == 5 and ids3[1, 0] == 6


def test_range_search():
    t, p = _data(150, 64, 5)
    idx = Index(p, ids=np.arange(150) * 2)
    q = p[:3]
    lims, s, ids = idx.range_search(q, 0.2)
    full = ternhd.cosine(q, p)
    for i in range(3):
        sel = np.flatnonzero(full[i] >= 0.2)
        assert lims[i + 1] - lims[i] == len(sel)
        assert set(ids[lims[i]:lims[i + 1]]) == set(sel * 2)
        assert (np.diff(s[lims[i]:lims[i + 1]]) <= 0).all()
    qf = np.random.default_rng(6).standard_normal((2, 64)).astype(np.float32)
    lims, s, ids = idx.range_search(qf, 1.0, "dot")
    ref = _float_ref(qf, t, "dot")
    assert lims[-1] == (ref >= 1.0 + 1e-4).sum() + ((np.abs(ref - 1.0) < 1e-4) & (ref >= 1.0)).sum() or \
        abs(lims[-1] - (ref >= 1.0).sum()) <= 2


def test_save_load_view_roundtrip(tmp_path):
    t, p = _data(100, 70, 7)
    idx = Index(p, dim=70, ids=np.arange(100) * 3 + 1)
    idx.remove([4])
    path = tmp_path / "db.tnhd"
    n = idx.save(path)
    assert os.path.getsize(path) == n
    assert [f for f in os.listdir(tmp_path) if f != "db.tnhd"] == []  # no temporary left
    pkt = ternhd.packet.load(path)  # the file is a plain packet
    assert pkt.dim == 70 and pkt.count == 99 and pkt.meta["ternhd_index"] == 1
    q = p[:4]
    qf = np.random.default_rng(8).standard_normal((3, 70)).astype(np.float32)
    want = idx.search(q, 7), idx.search(qf, 7, "dot")
    for other in (Index.load(path), Index.view(path), Index.view(path, verify=True)):
        assert len(other) == 99 and other.dim == 70
        np.testing.assert_array_equal(other.ids, idx.ids)
        for (s, i), qq, metric in zip(want, (q, qf), ("cosine", "dot")):
            s2, i2 = other.search(qq, 7, metric)
            np.testing.assert_allclose(s2, s, rtol=1e-6)
            np.testing.assert_array_equal(i2, i)
        np.testing.assert_array_equal(other.norms, idx.norms)
    loaded = Index.load(path)
    assert loaded.add(p[0])[0] == 299  # next free id survives the round trip
    view = Index.view(path)
    assert view.readonly
    with pytest.raises(ValueError, match="read-only"):
        view.add(p[0])
    with pytest.raises(ValueError, match="read-only"):
        view.remove([1])


def test_bad_files(tmp_path):
    t, p = _data(20, 64, 9)
    path = tmp_path / "db.tnhd"
    Index(p).save(path)
    blob = path.read_bytes()
    bad = tmp_path / "bad.tnhd"
    bad.write_bytes(blob[:-5])  # truncated
    for opener in (Index.load, Index.view):
        with pytest.raises(PacketError, match="truncated"):
            opener(bad)
    tampered = bytearray(blob)
    tampered[-200] ^= 0x01
    bad.write_bytes(bytes(tampered))
    with pytest.raises(PacketError, match="checksum"):
        Index.load(bad)
    with pytest.raises(PacketError, match="checksum"):
        Index.view(bad, verify=True)
    newer = tmp_path / "newer.tnhd"
    from ternhd.similarity import _write_index

    _write_index(newer, p, 64, np.arange(20), {"ternhd_index": INDEX_FORMAT + 1})
    for opener in (Index.load, Index.view):
        with pytest.raises(PacketError, match="newer"):
            opener(newer)
    plain = tmp_path / "plain.tnhd"
    ternhd.packet.save(plain, p, 64)
    with pytest.raises(PacketError, match="not a ternhd index"):
        Index.load(plain)
    future = bytearray(blob)
    future[4] = 9  # packet format version
    bad.write_bytes(bytes(future))
    with pytest.raises(PacketError, match="version"):
        Index.view(bad)


def test_save_failure_leaves_old_file(tmp_path, monkeypatch):
    t, p = _data(10, 64, 10)
    path = tmp_path / "db.tnhd"
    Index(p[:5]).save(path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        Index(p).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["db.tnhd"]


def test_bad_input():
    t, p = _data(30, 64, 11)
    idx = Index(p[:10], ids=np.arange(10))
    with pytest.raises(ValueError, match="duplicate id 5"):
        idx.add(p[10:12], ids=[5, 5])
    with pytest.raises(ValueError, match="already in the index"):
        idx.add(p[10:12], ids=[11, 3])
    with pytest.raises(ValueError, match="expected 2 ids"):
        idx.add(p[10:12], ids=[11])
    with pytest.raises(TypeError, match="integers"):
        idx.add(p[10:12], ids=[1.5, 2.5])
    with pytest.raises(ValueError, match="int64"):
        idx.add(p[10:11], ids=np.array([2**63], np.uint64))
    assert len(idx) == 10
    with pytest.raises(ValueError, match="width"):
        idx.add(np.zeros((1, 3), np.uint8))
    with pytest.raises(ValueError, match="0b11"):
        idx.add(np.full((1, 16), 0xFF, np.uint8))
    assert len(idx) == 10 and len(idx.ids) == 10
    with pytest.raises(ValueError, match="not in the index"):
        idx.remove([99])
    with pytest.raises(ValueError, match="exceeds the index size"):
        idx.search(p[:1], 11)
    with pytest.raises(ValueError, match="packed row width"):
        idx.search(np.zeros((1, 5), np.uint8), 1)
    with pytest.raises(ValueError, match="values per row"):
        idx.search(np.zeros((1, 63), np.float32), 1)
    with pytest.raises(TypeError, match="dtype int32"):
        idx.search(np.zeros((1, 64), np.int32), 1)
    with pytest.raises(ValueError, match="NaN"):
        idx.search(np.full((1, 64), np.nan, np.float32), 1)
    with pytest.raises(ValueError, match="dim"):
        Index()
    with pytest.raises(ValueError, match="padding"):
        Index(np.full((1, 1), 0x01, np.uint8), dim=3)  # trit 3 (padding) non-zero


def test_reference_oracle_agrees():
    t, p = _data(40, 33, 12)
    idx = Index(p, dim=33)
    q = np.random.default_rng(13).integers(-5, 6, (3, 33)).astype(np.int8)
    s = idx.search(q, 40, "dot")[0]
    np.testing.assert_array_equal(np.sort(s, axis=1), np.sort(q.astype(np.int64) @ t.astype(np.int64).T, axis=1))
    assert reference is not None


def test_gpu_index_same_semantics(monkeypatch):
    """The GPU index (ternhd.kernels.Index, rebuilt on add / remove) answers as the CPU one; without a
    GPU through the Triton interpreter on CPU tensors."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("triton")
    cuda = torch.cuda.is_available()
    if not cuda and os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("no CUDA device and TRITON_INTERPRET is not set")
    from ternhd import similarity
    from ternhd.kernels import dispatch

    if not cuda:  # route CPU tensors to the Triton side
        monkeypatch.setattr(similarity, "backend", lambda **a: dispatch if any(
            type(x).__module__.startswith("torch") for x in a.values()) else ternhd._cpu)
    device = "cuda" if cuda else "cpu"
    t, p = _data(40, 36, 14)
    ids = np.arange(40) * 5
    cpu = Index(p[:30], ids=ids[:30], dim=36)
    gpu = Index(torch.as_tensor(p[:30], device=device), ids=ids[:30], dim=36)
    assert type(gpu.impl).__module__ == "ternhd.kernels.index"
    for idx, conv in ((cpu, np.asarray), (gpu, lambda x: torch.as_tensor(x, device=device))):
        idx.add(conv(p[30:]), ids=ids[30:])
        idx.remove([5, 100])
    q = p[:3]
    qf = np.random.default_rng(15).standard_normal((2, 36)).astype(np.float32)
    s0, i0 = cpu.search(q, 6)
    s1, i1 = gpu.search(torch.as_tensor(q, device=device), 6)
    np.testing.assert_array_equal(s1.cpu().numpy(), s0)
    np.testing.assert_array_equal(i1.cpu().numpy(), i0)
    s0, i0 = cpu.search(qf, 6, "dot")
    s1, i1 = gpu.search(torch.as_tensor(qf, device=device), 6, "dot")
    np.testing.assert_allclose(s1.cpu().numpy(), s0, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(i1.cpu().numpy(), i0)
    assert len(gpu) == 38


def test_cpu_torch_queries():
    torch = pytest.importorskip("torch")
    t, p = _data(60, 64, 16)
    idx = Index(p)
    qf = np.random.default_rng(17).standard_normal((2, 64)).astype(np.float32)
    for q in (p[:2], qf):
        s, i = idx.search(torch.from_numpy(q), 5)
        s0, i0 = idx.search(q, 5)
        assert isinstance(s, torch.Tensor) and isinstance(i, torch.Tensor)
        np.testing.assert_array_equal(s.numpy(), s0)
        np.testing.assert_array_equal(i.numpy(), i0)
    lims, s, i = idx.range_search(torch.from_numpy(qf), 0.0)
    assert lims[-1] == len(i)
