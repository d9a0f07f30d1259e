"""ternhd.vsa against torchhd in the same run, D = 10,000 (MAP, and BSC where it corresponds).

Groups (throughput in hypervectors, similarity pairs or queries per second):

* ``vsa-random``: 1,000 random hypervectors (ternhd packed vs torchhd MAP float32 and BSC bool);
* ``vsa-bind``: 1,000 bindings;
* ``vsa-bundle``: multiset bundle of 1,000 vectors into one (re-quantized: ternhd's majority vote;
  torchhd MAP multiset + hard_quantize, BSC multibundle);
* ``vsa-sim``: 1 query x 100,000 hypervectors (ternhd Index cosine / dot vs torchhd
  cosine_similarity / dot_similarity, BSC hamming), and the memory floor of a one-query scan: a
  torch sum over as many bytes as the Index's bit planes (256 MB);
* ``vsa-cleanup``: 100 noisy queries cleaned up against an item memory of 1,000 items
  (``ItemMemory.cleanup`` vs torchhd's ``cleanup`` per query and a batched torchhd argmax).

Every case first checks that ternhd's result equals torchhd's on the unpacked trits (for the
bundle: equal wherever the vote is not tied; torchhd's hard_quantize maps ties to -1, ternhd to 0).
Threads are pinned (``TERNHD_BENCH_THREADS``, default 2) for both libraries and printed, and kept
with the 1/5/15-minute load averages before and after each case in the JSON's ``extra_info``.
``TERNHD_VSA_BENCH_N`` sets the similarity database size (default 100,000; 10,000 when
``--benchmark-disable``, as on CI, where the point is that the cases run, not their timings).

    pytest benchmarks/bench_vsa.py -p no:cacheprovider --benchmark-json docs/results/vsa_torchhd.json
"""
import os

import numpy as np
import pytest

import ternhd
from ternhd import bench, vsa

torch = pytest.importorskip("torch")
torchhd = pytest.importorskip("torchhd")

D = 10_000
THREADS = int(os.environ.get("TERNHD_BENCH_THREADS", "2"))
torch.set_num_threads(THREADS)
ternhd.set_num_threads(THREADS)

bench.TARGETS.update({
    ("vsa-random", "ternhd vsa.random", "torchhd.random MAP"): 10.0,
    ("vsa-bind", "ternhd vsa.bind", "torchhd.bind MAP"): 10.0,
    ("vsa-bundle", "ternhd vsa.multiset packed", "torchhd.multiset+normalize"): 10.0,
    ("vsa-sim", "ternhd Index.pairwise", "torchhd.cosine_similarity"): 10.0,
    ("vsa-sim", "ternhd Index.pairwise dot", "torchhd.dot_similarity"): 10.0,
    ("vsa-cleanup", "ternhd ItemMemory.cleanup", "torchhd cos+argmax batched"): 10.0,
})

_CACHE = {}


def _map(t):
    return torch.from_numpy(np.asarray(t, np.float32)).as_subclass(torchhd.MAPTensor)


def _bsc(t):
    return torch.from_numpy(np.asarray(t) > 0).as_subclass(torchhd.BSCTensor)


def _data(n_db):
    key = ("db", n_db)
    if key not in _CACHE:
        _CACHE.clear()
        db = vsa.random(n_db, D, 3)
        q = db[5:6].copy()
        flip = np.random.default_rng(0).random(D) < 0.3
        tq = ternhd.unpack_ternary(q, D)
        tq[0, flip] = -tq[0, flip]
        q = ternhd.pack_ternary(tq)
        tdb = ternhd.unpack_ternary(db, D)
        _CACHE[key] = dict(db=db, q=q, index=ternhd.Index(db), tq=tq, DB=_map(tdb), Q=_map(tq),
                           DBb=_bsc(tdb), Qb=_bsc(tq))
        del tdb
    return _CACHE[key]


@pytest.fixture(scope="module", autouse=True)
def _print_threads(request):
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    line = (f"\nbench_vsa: D={D}, torch threads {torch.get_num_threads()}, ternhd threads "
            f"{ternhd.get_num_threads()}, ternhd {ternhd.backend_info()['simd']}, torchhd "
            f"{torchhd.__version__}, torch {torch.__version__}, load average {load}")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:  # printed past pytest's capture, so it reaches a redirected log too
        with capture.global_and_fixture_disabled():
            print(line, flush=True)
    else:
        print(line, flush=True)
    yield


def _cases_random():
    n = 1000
    return [
        bench.Case("vsa-random", "ternhd vsa.random", lambda: vsa.random(n, D, 1), n, "vec", "ternhd"),
        bench.Case("vsa-random", "torchhd.random MAP", lambda: torchhd.random(n, D, "MAP"), n, "vec"),
        bench.Case("vsa-random", "torchhd.random BSC", lambda: torchhd.random(n, D, "BSC"), n, "vec"),
    ]


def _cases_bind():
    n = 1000
    a, b = vsa.random(n, D, 1), vsa.random(n, D, 2)
    ta, tb = ternhd.unpack_ternary(a, D), ternhd.unpack_ternary(b, D)
    A, B, Ab, Bb = _map(ta), _map(tb), _bsc(ta), _bsc(tb)
    assert np.array_equal(ternhd.unpack_ternary(vsa.bind(a, b), D), torchhd.bind(A, B).numpy())
    # BSC: XOR of the sign bits is the MAP product's sign bit
    assert np.array_equal(torchhd.bind(Ab, Bb).numpy(), ~(ternhd.unpack_ternary(vsa.bind(a, b), D) > 0))
    return [
        bench.Case("vsa-bind", "ternhd vsa.bind", lambda: vsa.bind(a, b), n, "vec", "ternhd"),
        bench.Case("vsa-bind", "torchhd.bind MAP", lambda: torchhd.bind(A, B), n, "vec"),
        bench.Case("vsa-bind", "torchhd.bind BSC", lambda: torchhd.bind(Ab, Bb), n, "vec"),
    ]


def _cases_bundle():
    n = 1000
    a = vsa.random(n, D, 4)
    ta = ternhd.unpack_ternary(a, D)
    A, Ab = _map(ta), _bsc(ta)
    sums = torchhd.multiset(A).numpy()
    ours = ternhd.unpack_ternary(vsa.multiset(a, packed=True), D)
    tie = sums == 0
    assert np.array_equal(ours[~tie], torchhd.normalize(torchhd.multiset(A)).numpy()[~tie])
    assert np.all(ours[tie] == 0) and np.array_equal(vsa.multiset(a), sums)
    return [
        bench.Case("vsa-bundle", "ternhd vsa.multiset packed", lambda: vsa.multiset(a, packed=True), n, "vec",
                   "ternhd"),
        bench.Case("vsa-bundle", "ternhd vsa.multiset int32", lambda: vsa.multiset(a), n, "vec", "ternhd"),
        bench.Case("vsa-bundle", "torchhd.multiset+normalize",
                   lambda: torchhd.normalize(torchhd.multiset(A)), n, "vec"),
        bench.Case("vsa-bundle", "torchhd.multiset MAP", lambda: torchhd.multiset(A), n, "vec"),
        bench.Case("vsa-bundle", "torchhd.multibundle BSC", lambda: torchhd.multibundle(Ab), n, "vec"),
    ]


def _cases_sim(n_db):
    d = _data(n_db)
    db, q, index = d["db"], d["q"], d["index"]
    Q, DB, Qb, DBb = d["Q"], d["DB"], d["Qb"], d["DBb"]
    theirs = torchhd.cosine_similarity(Q, DB).numpy()
    assert np.allclose(index.pairwise(q), theirs, atol=1e-6)
    assert np.array_equal(ternhd.dot(q, db), torchhd.dot_similarity(Q, DB).numpy().astype(np.int32))
    # The memory floor of a one-query scan: read as many bytes as the Index's bit planes hold (mask
    # and sign planes of `words` 64-bit words a row, csrc/similarity.cpp plane_words) with torch's sum.
    words = max(8, ((db.shape[1] + 15) // 16 + 7) // 8 * 8)
    planes_bytes = torch.ones(n_db * 2 * words, dtype=torch.int64)
    return [
        bench.Case("vsa-sim", "ternhd Index.pairwise", lambda: index.pairwise(q), n_db, "pairs", "ternhd"),
        bench.Case("vsa-sim", "ternhd Index.pairwise dot", lambda: index.pairwise(q, "dot"), n_db, "pairs",
                   "ternhd"),
        bench.Case("vsa-sim", "ternhd Index.topk k=10", lambda: index.topk(q, 10), n_db, "pairs", "ternhd"),
        bench.Case("vsa-sim", "ternhd.cosine (no Index)", lambda: ternhd.cosine(q, db), n_db, "pairs", "ternhd"),
        bench.Case("vsa-sim", "torchhd.dot_similarity", lambda: torchhd.dot_similarity(Q, DB), n_db, "pairs"),
        bench.Case("vsa-sim", "torchhd.cosine_similarity", lambda: torchhd.cosine_similarity(Q, DB), n_db, "pairs"),
        bench.Case("vsa-sim", "torchhd.hamming BSC", lambda: torchhd.hamming_similarity(Qb, DBb), n_db, "pairs"),
        bench.Case("vsa-sim", "stream Index bytes (sum)", lambda: planes_bytes.sum(), n_db, "pairs",
                   note=f"torch int64 sum of {planes_bytes.numel() * 8} bytes: the Index's planes, read once"),
    ]


def _cases_cleanup():
    n_items, n_q = 1000, 100
    mem = vsa.ItemMemory(D, seed=7)
    mem.add_many(range(n_items))
    rng = np.random.default_rng(1)
    truth = rng.integers(0, n_items, n_q)
    tq = ternhd.unpack_ternary(mem.vectors[truth], D).copy()
    flip = rng.random(tq.shape) < 0.4
    tq[flip] = -tq[flip]
    q = ternhd.pack_ternary(tq)
    M, Q = _map(ternhd.unpack_ternary(mem.vectors, D)), _map(tq)
    mem.cleanup(q)  # builds the Index once, as a long-lived item memory has it

    n_loop = 10  # torchhd.cleanup takes one query at a time (about 0.2 s each here): time 10 of them

    def torchhd_loop():
        return [torchhd.cleanup(Q[i], M) for i in range(n_loop)]

    def torchhd_batched():
        return M[torchhd.cosine_similarity(Q, M).argmax(-1)]

    assert mem.cleanup(q) == list(truth)
    assert np.array_equal(torchhd_batched().numpy(), ternhd.unpack_ternary(mem.vectors[truth], D))
    assert np.array_equal(torchhd.cleanup(Q[3], M).numpy()[0], ternhd.unpack_ternary(mem.vectors[truth[3]], D))
    return [
        bench.Case("vsa-cleanup", "ternhd ItemMemory.cleanup", lambda: mem.cleanup(q), n_q, "queries", "ternhd"),
        bench.Case("vsa-cleanup", "torchhd.cleanup per query", torchhd_loop, n_loop, "queries"),
        bench.Case("vsa-cleanup", "torchhd cos+argmax batched", torchhd_batched, n_q, "queries"),
    ]


GROUPS = {
    "vsa-random": ["ternhd vsa.random", "torchhd.random MAP", "torchhd.random BSC"],
    "vsa-bind": ["ternhd vsa.bind", "torchhd.bind MAP", "torchhd.bind BSC"],
    "vsa-bundle": ["ternhd vsa.multiset packed", "ternhd vsa.multiset int32", "torchhd.multiset+normalize",
                   "torchhd.multiset MAP", "torchhd.multibundle BSC"],
    # the memory floor right after the ternhd scans it bounds, before torchhd's multi-second cases
    "vsa-sim": ["ternhd Index.pairwise", "ternhd Index.pairwise dot", "stream Index bytes (sum)",
                "ternhd Index.topk k=10", "ternhd.cosine (no Index)", "torchhd.dot_similarity",
                "torchhd.cosine_similarity", "torchhd.hamming BSC"],
    "vsa-cleanup": ["ternhd ItemMemory.cleanup", "torchhd.cleanup per query", "torchhd cos+argmax batched"],
}
_BUILD = {"vsa-random": _cases_random, "vsa-bind": _cases_bind, "vsa-bundle": _cases_bundle,
          "vsa-sim": _cases_sim, "vsa-cleanup": _cases_cleanup}
_GROUP_CASES = {}


def _case(group, name, benchmark):
    if group not in _GROUP_CASES:
        _GROUP_CASES.clear()  # one group's data in memory at a time
        if group == "vsa-sim":
            n_db = int(os.environ.get("TERNHD_VSA_BENCH_N", "10000" if benchmark.disabled else "100000"))
            cases = _cases_sim(n_db)
        else:
            cases = _BUILD[group]()
        _GROUP_CASES[group] = {c.name: c for c in cases}
    return _GROUP_CASES[group][name]


@pytest.mark.parametrize("key", [f"{g}|{n}" for g, names in GROUPS.items() for n in names])
def test_vsa(benchmark, run_case, key):
    group, name = key.split("|")
    case = _case(group, name, benchmark)
    slow = name.startswith("torchhd") and group in ("vsa-sim", "vsa-cleanup")  # seconds per call
    # Millisecond calls get 25 rounds on both sides: on a shared machine one preempted round in 5
    # moves a median of a 1 ms case by several ms.
    rounds = 2 if slow else 25 if group in ("vsa-bind", "vsa-bundle") else 5
    # the JSON (--benchmark-json) keeps the threads and the machine's load around each case
    benchmark.extra_info.update(threads_torch=torch.get_num_threads(), threads_ternhd=ternhd.get_num_threads(),
                                loadavg_before=list(os.getloadavg()))
    run_case(case, rounds=rounds)
    benchmark.extra_info["loadavg_after"] = list(os.getloadavg())


def test_vsa_memory_per_vector():
    m = vsa.memory_per_vector(D)
    p = vsa.random(10, D, 0)
    assert p.nbytes // 10 == m["ternhd_packed"] == 2500
    assert torchhd.random(10, D, "MAP").element_size() * D == m["float32"] == 16 * 2500
    assert torchhd.random(10, D, "MAP", dtype=torch.int8).element_size() * D == m["int8"] == 4 * 2500
    assert torchhd.random(10, D, "BSC").element_size() * D == m["bool_bsc"] == 4 * 2500
