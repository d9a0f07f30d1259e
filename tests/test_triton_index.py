"""ternhd.kernels.Index (a packed database kept on the device) against the C++ ternhd.Index, and
ternhd.Index's dispatch of CUDA databases to it. Without a GPU the kernels run on CPU tensors
through the interpreter."""
import importlib
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("no CUDA device and TRITON_INTERPRET is not set", allow_module_level=True)

from test_triton_similarity import dev, need, packed  # noqa: E402

import ternhd  # noqa: E402
from ternhd import kernels as K  # noqa: E402

COMPILED = DEVICE == "cuda" and not K.interpreting()
METRICS = ["dot", "cosine", "hamming"]
METHODS = [None, "scan", "mma", "int8", "fp8"]


SHAPES = [(1, 40, 9, 3), (12, 45, 130, 7), (9, 33, 301, 33)]
if COMPILED:
    SHAPES += [(300, 5000, 4096, 10)]


@pytest.mark.parametrize("m,n,dim,k", SHAPES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("keep", [False, True])
def test_index_matches_cpp_index(m, n, dim, k, method, keep):
    need(method)
    rng = np.random.default_rng(n * dim + m)
    q = packed(rng, m, dim)
    db = packed(rng, n, dim, zero_rows=(2, 5))
    db[10:13] = db[20]  # exact ties: the lower index first
    ref = ternhd.Index(db)
    index = K.Index(dev(db), keep_unpacked=keep)
    assert len(index) == n and index.nbytes == db.shape[1] and index.device.type == DEVICE
    np.testing.assert_array_equal(index.norms.cpu().numpy(), ref.norms)
    for metric in METRICS:
        rs, ri = ref.topk(q, k, metric)
        for _ in range(2):  # the second call uses the kept unpacked database
            gs, gi = index.topk(dev(q), k, metric, method=method, chunk=16)
            np.testing.assert_array_equal(gi.cpu().numpy(), ri)
            np.testing.assert_array_equal(gs.cpu().numpy(), rs)
        np.testing.assert_array_equal(index.pairwise(dev(q), metric, method=method).cpu().numpy(),
                                      ref.pairwise(q, metric))
    s1, i1 = index.topk(dev(q[0]), k, method=method)
    r1, j1 = ref.topk(q[0], k)
    assert s1.shape == (k,)
    np.testing.assert_array_equal(i1.cpu().numpy(), j1)
    np.testing.assert_array_equal(s1.cpu().numpy(), r1)
    p1 = index.pairwise(dev(q[0]), method=method)
    assert p1.shape == (n,)
    np.testing.assert_array_equal(p1.cpu().numpy(), ref.pairwise(q[0]))
    kept = sorted(index._unpacked)
    assert kept == ([method == "fp8"] if keep and method in ("int8", "fp8") else [])


def test_kept_unpacked_database_is_made_once(monkeypatch):
    rng = np.random.default_rng(3)
    db, q = packed(rng, 40, 77), packed(rng, 5, 77)
    index = K.Index(dev(db), keep_unpacked=True)
    calls = []
    real = K.index._unpacked

    def counting(p, fp8=False):
        calls.append(p.shape[0])
        return real(p, fp8)

    monkeypatch.setattr(K.index, "_unpacked", counting)
    monkeypatch.setattr(K.similarity, "_unpacked", counting)
    for _ in range(3):
        index.pairwise(dev(q), method="int8")
        index.topk(dev(q), 4, method="int8")
    # the database once (kept), the queries once per call
    assert calls.count(40) == 1 and calls.count(5) == 6
    calls.clear()
    K.topk(dev(q), dev(db), 4, method="int8")
    assert 40 in calls  # the function path unpacks the database every call


def test_index_owns_a_copy():
    rng = np.random.default_rng(4)
    db, q = packed(rng, 20, 64), packed(rng, 3, 64)
    src = dev(db)
    index = K.Index(src)
    shared = K.Index(src, copy=False)
    before = index.pairwise(dev(q)).cpu().numpy()
    src.zero_()
    np.testing.assert_array_equal(index.pairwise(dev(q)).cpu().numpy(), before)
    assert shared.database.data_ptr() == src.data_ptr()


def test_index_errors():
    rng = np.random.default_rng(5)
    db = packed(rng, 6, 40)
    bad = db.copy()
    bad[4, 3] |= 0b11
    with pytest.raises(ValueError, match="^database:.*0b11"):
        K.Index(dev(bad))
    index = K.Index(dev(db))
    with pytest.raises(ValueError, match="^queries:.*0b11"):
        index.topk(dev(bad), 2)
    with pytest.raises(ValueError, match="^queries:.*0b11"):
        index.pairwise(dev(bad), method="mma")
    with pytest.raises(ValueError, match="^k:"):
        index.topk(dev(db), 7)
    with pytest.raises(ValueError, match="^k:"):
        index.topk(dev(db), 0)
    with pytest.raises(TypeError, match="^k:"):
        index.topk(dev(db), 2.0)
    with pytest.raises(ValueError, match="^metric:"):
        index.pairwise(dev(db), "l2")
    with pytest.raises(ValueError, match="^queries: packed row width"):
        index.topk(dev(db[:, :5]), 2)
    with pytest.raises(TypeError, match="^queries:"):
        index.topk(dev(db).to(torch.int8), 2)
    with pytest.raises(TypeError, match="^queries:"):
        index.topk(db, 2)  # a numpy array
    with pytest.raises(ValueError, match="^database:"):
        K.Index(dev(db[0]))
    with pytest.raises(ValueError, match="^method:"):
        index.pairwise(dev(db), method="fast")
    if COMPILED:  # CPU queries against a GPU index
        with pytest.raises(TypeError, match="^queries: Triton kernels need a CUDA tensor"):
            index.topk(torch.from_numpy(db), 2)


def test_empty_and_zero_width():
    index = K.Index(torch.zeros((5, 0), dtype=torch.uint8, device=DEVICE), keep_unpacked=True)
    q = torch.zeros((2, 0), dtype=torch.uint8, device=DEVICE)
    s, i = index.topk(q, 3, method="int8")
    np.testing.assert_array_equal(i.cpu().numpy(), [[0, 1, 2]] * 2)
    assert index.pairwise(q, "dot").shape == (2, 5)
    empty = K.Index(torch.zeros((0, 4), dtype=torch.uint8, device=DEVICE))
    assert len(empty) == 0 and empty.pairwise(torch.zeros((2, 4), dtype=torch.uint8, device=DEVICE)).shape == (2, 0)


@pytest.fixture
def cuda_branch(monkeypatch):
    """Without a GPU, ternhd.Index treats every torch tensor as a device tensor."""
    if DEVICE == "cpu":
        monkeypatch.setattr(importlib.import_module("ternhd._device"), "is_cuda", lambda x: isinstance(x, torch.Tensor))


def test_public_index_dispatches(cuda_branch):
    rng = np.random.default_rng(6)
    db, q = packed(rng, 30, 77), packed(rng, 4, 77)
    ref = ternhd.Index(db)
    index = ternhd.Index(dev(db), keep_unpacked=True)
    assert isinstance(index.impl, K.Index) and len(index) == 30 and index.nbytes == db.shape[1]
    assert isinstance(index.norms, torch.Tensor)
    np.testing.assert_array_equal(index.norms.cpu().numpy(), ref.norms)
    for metric in METRICS:
        s, i = index.topk(dev(q), 5, metric)
        rs, ri = ref.topk(q, 5, metric)
        assert i.device.type == DEVICE
        np.testing.assert_array_equal(i.cpu().numpy(), ri)
        np.testing.assert_array_equal(s.cpu().numpy(), rs)
        np.testing.assert_array_equal(index.pairwise(dev(q), metric).cpu().numpy(), ref.pairwise(q, metric))
    with pytest.raises(ValueError, match="^queries: a CUDA tensor"):
        ref.topk(dev(q), 2)
    with pytest.raises(ValueError, match="^keep_unpacked:"):
        ternhd.Index(db, keep_unpacked=True)
