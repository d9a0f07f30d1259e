"""Triton packed similarity (scan and int8 tl.dot kernels), top-k and the popcount forms, against
the C++ path. Both popcount / plane-decoding forms run on a real GPU; the interpreter runs the
portable (SWAR) form."""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
triton = pytest.importorskip("triton")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("no CUDA device and TRITON_INTERPRET is not set", allow_module_level=True)

import triton.language as tl  # noqa: E402

import ternhd  # noqa: E402
from ternhd import kernels as K  # noqa: E402
from ternhd.kernels._util import popcount32  # noqa: E402

COMPILED = DEVICE == "cuda" and not K.interpreting()
HW = [False, True] if COMPILED else [False]
METRICS = ["dot", "cosine", "hamming"]
METHODS = ["scan", "mma", "int8", "fp8"]


def need(method):
    if method == "fp8" and not K.similarity.fp8_supported(torch.device(DEVICE)):
        pytest.skip("float8 tensor-core products need compute capability 8.9+")


def packed(rng, n, dim, zero=0.3, zero_rows=(0,)):
    t = rng.integers(-1, 2, size=(n, dim)).astype(np.int8)
    t[rng.random((n, dim)) < zero] = 0
    for r in zero_rows:
        if r < n:
            t[r] = 0
    return ternhd.pack_ternary(t)


def dev(x):
    return torch.from_numpy(np.ascontiguousarray(x)).to(DEVICE)


@triton.jit
def _popc_kernel(x_ptr, out_ptr, n, HW: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=0)
    tl.store(out_ptr + offs, popcount32(x, HW), mask=offs < n)


@pytest.mark.parametrize("hw", HW)
def test_popcount_forms(hw):
    rng = np.random.default_rng(0)
    w = rng.integers(0, 2 ** 32, size=1000, dtype=np.uint64).astype(np.uint32)
    w[:4] = [0, 0xFFFFFFFF, 0x80000000, 0x55555555]
    ref = np.array([bin(int(v)).count("1") for v in w], dtype=np.int32)
    out = torch.empty(w.size, dtype=torch.int32, device=DEVICE)
    _popc_kernel[(triton.cdiv(w.size, 256),)](dev(w.view(np.int32)), out, w.size, HW=hw, BLOCK=256)
    np.testing.assert_array_equal(out.cpu().numpy(), ref)


SHAPES = [(1, 5, 1), (3, 37, 13), (2, 20, 130), (19, 37, 70), (17, 33, 515)]
if COMPILED:
    SHAPES += [(130, 300, 1000), (5, 5000, 4096), (300, 129, 4099)]


# (method, hw): the popcount / plane-decoding form only exists for the scan and mma kernels
METHOD_FORMS = [(m, hw) for m in METHODS for hw in HW if not (hw and m in ("int8", "fp8"))]


@pytest.mark.parametrize("m,n,dim", SHAPES)
@pytest.mark.parametrize("method,hw", METHOD_FORMS)
def test_pairwise_matches_cpp(m, n, dim, method, hw):
    need(method)
    rng = np.random.default_rng(m * 1000 + dim)
    a, b = packed(rng, m, dim), packed(rng, n, dim, zero_rows=(n - 1,))
    # on a GPU the portable form (hw=False) is checked on hamming, which uses every popcount / plane
    # decoding path, to keep the number of compiled variants (and the run time) down
    for metric in (METRICS if hw or not COMPILED else ["hamming"]):
        ref = ternhd.pairwise(a, b, metric)
        got = K.pairwise(dev(a), dev(b), metric, method=method, hw=hw)
        assert got.dtype == (torch.float32 if metric == "cosine" else torch.int32)
        got = got.cpu().numpy()
        if metric == "cosine":
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
            # equal in practice: the scan divides in float64 like the C++ path; the batched kernels
            # multiply by per-row float64 1/sqrt(norm), which differs only near a float32 rounding tie
            np.testing.assert_array_equal(got, ref)
        else:
            np.testing.assert_array_equal(got, ref)


def test_default_method_and_row_axes():
    rng = np.random.default_rng(7)
    a, b = packed(rng, 12, 50), packed(rng, 9, 50)  # 12 > SCAN_MAX_QUERIES: the mma kernel
    assert 12 > K.similarity.SCAN_MAX_QUERIES
    for metric in METRICS:
        np.testing.assert_array_equal(K.pairwise(dev(a), dev(b), metric).cpu().numpy(), ternhd.pairwise(a, b, metric))
        np.testing.assert_array_equal(K.pairwise(dev(a[3]), dev(b), metric).cpu().numpy(),
                                      ternhd.pairwise(a[3], b, metric))
        np.testing.assert_array_equal(K.pairwise(dev(a), dev(b[2]), metric).cpu().numpy(),
                                      ternhd.pairwise(a, b[2], metric))
        both = K.pairwise(dev(a[1]), dev(b[2]), metric)
        assert both.shape == () and both.item() == ternhd.pairwise(a[1], b[2], metric).item()
    big = packed(rng, K.similarity.INT8_MIN_QUERIES + 3, 20)  # the int8 method by default
    for metric in METRICS:
        np.testing.assert_array_equal(K.pairwise(dev(big), dev(b[:, :5]), metric).cpu().numpy(),
                                      ternhd.pairwise(big, b[:, :5], metric))
    np.testing.assert_array_equal(K.dot(dev(a), dev(b)).cpu().numpy(), ternhd.dot(a, b))
    np.testing.assert_array_equal(K.cosine(dev(a), dev(b)).cpu().numpy(), ternhd.cosine(a, b))
    np.testing.assert_array_equal(K.hamming(dev(a), dev(b)).cpu().numpy(), ternhd.hamming(a, b))


@pytest.mark.parametrize("method", METHODS)
def test_invalid_code_raises(method):
    need(method)
    rng = np.random.default_rng(2)
    a, b = packed(rng, 2, 40), packed(rng, 6, 40)
    bad = b.copy()
    bad[4, 3] |= 0b11
    with pytest.raises(ValueError, match="^b:.*0b11"):
        K.pairwise(dev(a), dev(bad), "dot", method=method)
    with pytest.raises(ValueError, match="^a:.*0b11"):
        K.pairwise(dev(bad), dev(a), "dot", method=method)
    with pytest.raises(ValueError, match="^database:.*0b11"):
        K.topk(dev(a), dev(bad), 2, method=method)
    # both invalid: the first operand is reported, as by the C++ path
    with pytest.raises(ValueError, match="^a:.*0b11"):
        K.pairwise(dev(bad), dev(bad), "cosine", method=method)
    with pytest.raises(ValueError, match="^queries:.*0b11"):
        K.topk(dev(bad), dev(bad), 2, method=method)
    with pytest.raises(ValueError, match="^a:.*0b11"):
        ternhd.pairwise(bad, bad, "cosine")


def test_argument_errors():
    a = torch.zeros((2, 4), dtype=torch.uint8, device=DEVICE)
    with pytest.raises(ValueError, match="^metric:"):
        K.pairwise(a, a, "l2")
    with pytest.raises(ValueError, match="^b:"):
        K.pairwise(a, torch.zeros((2, 5), dtype=torch.uint8, device=DEVICE))
    with pytest.raises(TypeError, match="^a:"):
        K.pairwise(a.to(torch.int8), a)
    with pytest.raises(ValueError, match="^k:"):
        K.topk(a, a, 3)
    with pytest.raises(ValueError, match="^k:"):
        K.topk(a, a, 0)
    with pytest.raises(ValueError, match="^database:"):
        K.topk(a, a[0], 1)
    with pytest.raises(ValueError, match="^method:"):
        K.pairwise(a, a, method="fast")


TOPK = [(1, 40, 9, 3, None), (3, 50, 130, 7, 16), (11, 45, 70, 45, 20), (1, 33, 8, 10, None)]
if COMPILED:
    TOPK += [(64, 20000, 4096, 10, None), (3, 70000, 256, 100, 30000)]


@pytest.mark.parametrize("m,n,dim,k,chunk", TOPK)
@pytest.mark.parametrize("method", METHODS)
def test_topk_matches_cpp(m, n, dim, k, chunk, method):
    need(method)
    rng = np.random.default_rng(n + dim)
    q = packed(rng, m, dim)
    db = packed(rng, n, dim, zero_rows=(3, 4))
    db[10:14] = db[20]  # exact ties: the lower index comes first
    for metric in METRICS:
        rs, ri = ternhd.topk(q, db, k, metric)
        gs, gi = K.topk(dev(q), dev(db), k, metric, method=method, chunk=chunk)
        assert gi.dtype == torch.int64 and gs.dtype == (torch.float32 if metric == "cosine" else torch.int32)
        np.testing.assert_array_equal(gi.cpu().numpy(), ri)
        np.testing.assert_array_equal(gs.cpu().numpy(), rs)
    s1, i1 = K.topk(dev(q[0]), dev(db), k)
    r1, j1 = ternhd.topk(q[0], db, k)
    assert s1.shape == (k,)
    np.testing.assert_array_equal(i1.cpu().numpy(), j1)


@pytest.mark.parametrize("method", ["int8", "fp8"])
@pytest.mark.parametrize("split", [0, 2, 4])
@pytest.mark.parametrize("tma", [False, True])
def test_gemm_launch_configs(method, split, tma):
    """The GEMM kernels (pointer loads and TMA descriptors) with and without the split epilogue, on
    tiles that leave tails in M, N and K."""
    need(method)
    if tma and not K.similarity.tma_supported(torch.device(DEVICE)):
        pytest.skip("TMA descriptors need compute capability 9.0+")
    rng = np.random.default_rng(11)
    a, b = packed(rng, 37, 301), packed(rng, 45, 301, zero_rows=(44,))
    cfg = dict(BLOCK_M=32, BLOCK_N=32, BLOCK_K=64, GROUP_M=2, num_warps=4, SPLIT=split, TMA=tma)
    for metric in METRICS:
        got = K.pairwise(dev(a), dev(b), metric, method=method, config=cfg).cpu().numpy()
        np.testing.assert_array_equal(got, ternhd.pairwise(a, b, metric))
    gs, gi = K.topk(dev(a), dev(b), 5, method=method, config=cfg)
    rs, ri = ternhd.topk(a, b, 5)
    np.testing.assert_array_equal(gi.cpu().numpy(), ri)
    np.testing.assert_array_equal(gs.cpu().numpy(), rs)


@pytest.mark.parametrize("prefetch", [False, True])
def test_scan_launch_configs(prefetch):
    """The scan kernel with and without the prefetched next tile, with word and row tails."""
    rng = np.random.default_rng(12)
    a, b = packed(rng, 3, 203), packed(rng, 41, 203, zero_rows=(40,))  # 51 bytes = 13 words
    cfg = dict(BLOCK_N=16, BLOCK_W=8, num_warps=4, PREFETCH=prefetch)
    for metric in METRICS:
        got = K.pairwise(dev(a), dev(b), metric, method="scan", config=cfg).cpu().numpy()
        np.testing.assert_array_equal(got, ternhd.pairwise(a, b, metric))
    bad = b.copy()
    bad[7, 50] |= 0b11  # in the last, partial word
    with pytest.raises(ValueError, match="^b:.*0b11"):
        K.pairwise(dev(a), dev(bad), "cosine", method="scan", config=cfg)
