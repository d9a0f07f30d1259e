"""ternhd.bench: the time budget (probe, extrapolate, skip with a reason), thread pinning, and the
vectorized numpy baselines checked against ternhd's kernels and the reference on random inputs."""
import json
import time

import numpy as np
import pytest

import ternhd
from ternhd import bench, cli, reference


# ----------------------------------------------------------------------------- budget and probes
class Counter:
    def __init__(self, seconds: float):
        self.seconds, self.calls = seconds, 0

    def __call__(self):
        self.calls += 1
        time.sleep(self.seconds)


def _budget(left: float, max_call: float) -> "bench._Budget":
    return bench._Budget(time.perf_counter() + left, max_call, max_call)


def test_slow_baseline_is_skipped_from_its_probe_without_a_full_call():
    slow = Counter(3.0)  # one full call: 3 s; its probe does 1/100 of the work in 0.03 s
    probe = Counter(0.03)
    fast = Counter(0.0)
    cases = [bench.Case("g", "fast", fast, 1000.0, "pairs", "ternhd"),
             bench.Case("g", "slow-baseline", slow, 1000.0, "pairs", probe=probe, probe_units=10.0)]
    lines = []
    rows = bench.run_cases(cases, repeat=3, budget=_budget(60.0, 0.5), log=lines.append)
    assert probe.calls == 1 and slow.calls == 0
    assert rows[1]["rate"] is None and rows[1]["seconds"] is None
    assert "one call would take ~3" in rows[1]["skipped"] and "limit 0.5 s" in rows[1]["skipped"]
    assert any("slow-baseline: SKIPPED" in line for line in lines)
    assert fast.calls == 1 + 3 and rows[0]["calls"] == 3 and rows[0]["rate"] > 0 and not rows[0]["skipped"]


def test_probe_within_the_limit_runs_the_case():
    case = bench.Case("g", "ok", Counter(0.01), 100.0, "B", probe=Counter(0.001), probe_units=10.0)
    row = bench.run_cases([case], repeat=2, budget=_budget(60.0, 1.0), log=lambda s: None)[0]
    assert not row["skipped"] and row["calls"] == 2 and 0.005 < row["seconds"] < 1.0


def test_a_call_over_the_limit_without_probe_is_kept_as_one_call():
    slow = Counter(0.3)
    row = bench.run_cases([bench.Case("g", "no-probe", slow, 1.0, "B")], repeat=5, budget=_budget(60.0, 0.1),
                          log=lambda s: None)[0]
    assert slow.calls == 1 and row["calls"] == 1 and row["seconds"] >= 0.3 and "1 call only" in row["note"]


def test_spent_budget_skips_and_short_budget_cuts_rounds():
    a, b = Counter(0.05), Counter(0.0)
    rows = bench.run_cases([bench.Case("g", "a", a, 1.0, "B", "ternhd")], repeat=50, budget=_budget(0.4, 10.0),
                           log=lambda s: None)
    assert 1 <= rows[0]["calls"] < 50  # 0.4 s cannot hold 50 rounds of 0.05 s
    rows = bench.run_cases([bench.Case("g", "b", b, 1.0, "B")], budget=_budget(-1.0, 10.0), log=lambda s: None)
    assert b.calls == 0 and rows[0]["skipped"] == "the time budget is spent"


def test_setup_estimate_over_the_limit_skips_before_building():
    built = Counter(0.0)
    case = bench.Case("g", "graph", Counter(0.0), 1.0, "queries", setup=built,
                      setup_estimate=lambda: (500.0, "a 1000-row build took 5 s"))
    row = bench.run_cases([case], budget=_budget(60.0, 1.0), log=lambda s: None)[0]
    assert built.calls == 0 and "setup would take ~500 s" in row["skipped"]


def test_hnsw_cases_build_before_their_probe_and_report_recall():
    cases = bench.hnsw_cases(4, 300, 64, k=5)
    rows = bench.run_cases(cases, repeat=1, budget=_budget(120.0, 30.0), log=lambda s: None)
    assert all(not r["skipped"] and r["rate"] > 0 for r in rows), rows
    graphs = [r for r in rows if "HNSW" in r["name"]]
    assert len(graphs) == sum(bench._optional(m) is not None for m in ("faiss", "usearch.index"))
    for r in graphs:
        recall = float(r["note"].split("recall@5 ")[1].split()[0])
        assert 0.0 <= recall <= 1.0 and "built in" in r["note"] and r["remark"].startswith("built in")
    text = bench.format_table(rows, [], {"ternhd": "2"})
    assert all(f"hnsw / {r['name']}: built in" in text for r in graphs)


def test_targets_with_a_skipped_side_are_not_measured():
    rows = [dict(group="top10", name="ternhd.Index.topk", role="ternhd", rate=10.0, seconds=1.0, unit="pairs",
                 note="", calls=3, skipped=""),
            dict(group="top10", name="faiss.IndexBinaryFlat", role="baseline", rate=None, seconds=None, unit="pairs",
                 note="", calls=0, skipped="one call would take ~99 s"),
            dict(group="top10", name="numkong.hammings_packed+argpartition", role="baseline", rate=8.0, seconds=1.0,
                 unit="pairs", note="", calls=3, skipped="")]
    t = {x["what"].split(" / ")[1]: x for x in bench.check_targets(rows)}
    assert t["faiss.IndexBinaryFlat"]["ok"] is None and "99 s" in t["faiss.IndexBinaryFlat"]["note"]
    assert t["numkong.hammings_packed+argpartition"]["ok"] is False  # 1.25 < 1.5
    text = bench.format_table(rows, bench.check_targets(rows), {"ternhd": "2"})
    assert "skipped: one call would take ~99 s" in text and "[skip]" in text and "[MISS]" in text
    assert "threads: ternhd 2" in text


def test_cli_bench_prints_skips_threads_and_json(monkeypatch, tmp_path, capsys):
    slow, probe = Counter(5.0), Counter(0.05)

    def cases():
        return [bench.Case("pack", "ternhd.pack_ternary", Counter(0.0), 1e6, "B", "ternhd"),
                bench.Case("pack", "slow-numpy", slow, 1e6, "B", probe=probe, probe_units=1e4)]

    monkeypatch.setattr(bench, "FAMILIES", [bench.Family("fake", ("pack",), cases, cases)])
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--budget", "12", "--threads", "1", "--json", str(out)]) == 0  # 1 s a call
    captured = capsys.readouterr()
    assert slow.calls == 0 and "slow-numpy: SKIPPED" in captured.err and "[1/1] fake" in captured.err
    assert "skipped: one call would take ~5" in captured.out and "threads: ternhd 1" in captured.out
    data = json.loads(out.read_text())
    assert data["threads"]["ternhd"] == "1" and data["budget_s"] == 12
    assert [r["skipped"] != "" for r in data["rows"]] == [False, True]
    ternhd.set_num_threads(0)


# ----------------------------------------------------------------------------- threads
def test_pin_threads_sets_every_library():
    try:
        counts = bench.pin_threads(1)
        assert counts["ternhd"] == "1" and ternhd.get_num_threads() == 1
        torch = pytest.importorskip("torch")
        assert torch.get_num_threads() == 1 and counts["torch"].startswith("1")
        faiss = pytest.importorskip("faiss")
        assert faiss.omp_get_max_threads() == 1 and counts["faiss"].startswith("1")
        assert bench.pin_threads(2)["ternhd"] == "2" and torch.get_num_threads() == 2
    finally:
        bench.pin_threads(None)
    with pytest.raises(ValueError, match="n: threads"):
        bench.pin_threads(0)


# ----------------------------------------------------------------------------- numpy baselines
@pytest.mark.parametrize("shape", [(1, 4), (3, 64), (7, 4096), (2, 5, 36)])
def test_numpy_pack_unpack_match_ternhd(shape):
    rng = np.random.default_rng(sum(shape))
    t = rng.integers(-1, 2, size=shape, dtype=np.int8)
    p = ternhd.pack_ternary(t)
    np.testing.assert_array_equal(bench.numpy_pack(t), p)
    np.testing.assert_array_equal(bench.numpy_unpack(p, shape[-1]), t)
    np.testing.assert_array_equal(bench.numpy_unpack(p, shape[-1] - 3), t[..., :-3])
    with pytest.raises(ValueError, match="t: the last axis"):
        bench.numpy_pack(t[..., :-1])


@pytest.mark.parametrize("dim", [32, 96, 4096])
def test_numpy_permutes_match_ternhd(dim):
    rng = np.random.default_rng(dim)
    a = bench.random_packed(rng, 5, dim)
    for k in (0, 1, 3, 4, 31, 32, 33, dim - 1, dim, dim + 7, -5, 1234567):
        want = ternhd.permute(a, k, dim)
        np.testing.assert_array_equal(want, reference.permute(a, k, dim))
        np.testing.assert_array_equal(bench.numpy_shift_permute(a, k, dim), want, err_msg=f"k={k}")
        np.testing.assert_array_equal(bench.numpy_roll_permute(a, k, dim), want, err_msg=f"k={k}")
    with pytest.raises(ValueError, match="dim: the word rotation"):
        bench.numpy_shift_permute(bench.random_packed(rng, 2, 36), 1, 36)


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_numpy_bundle_and_bind_match_ternhd(n):
    rng = np.random.default_rng(n)
    g = bench.random_packed(rng, 3 * n, 256).reshape(3, n, 64)
    np.testing.assert_array_equal(bench.numpy_bundle(g), ternhd.bundle(g))
    np.testing.assert_array_equal(bench.numpy_bundle(g), reference.bundle(g))
    a, b = bench.random_packed(rng, n, 256), bench.random_packed(rng, n, 256)
    np.testing.assert_array_equal(bench.numpy_bitwise_bind(a, b), ternhd.bind(a, b))


def test_random_packed_is_valid_and_uniform():
    p = bench.random_packed(np.random.default_rng(0), 200, 400)
    t = ternhd.unpack_ternary(p, 400)  # raises on the code 0b11
    counts = np.bincount((t + 1).ravel(), minlength=3) / t.size
    np.testing.assert_allclose(counts, 1 / 3, atol=0.01)
    with pytest.raises(ValueError, match="dim: must be a multiple of 4"):
        bench.random_packed(np.random.default_rng(0), 2, 5)


def _hamming(q: np.ndarray, db: np.ndarray) -> np.ndarray:
    return np.stack([np.unpackbits(row[None] ^ db, axis=1).sum(1) for row in q])


def test_numkong_topk_is_exact_hamming():
    nk = pytest.importorskip("numkong")
    rng = np.random.default_rng(3)
    db, q = rng.integers(0, 256, (1500, 40), dtype=np.uint8), rng.integers(0, 256, (9, 40), dtype=np.uint8)
    ref = _hamming(q, db)
    for threads in (1, 2):
        bench.pin_threads(threads)
        dist, idx = bench.numkong_topk(nk.hammings_pack(db, dtype="uint1"), q, 10, chunk=4)
        np.testing.assert_array_equal(dist, np.sort(ref, axis=1)[:, :10])
        np.testing.assert_array_equal(np.take_along_axis(ref, idx, 1), dist)
    bench.pin_threads(None)


def test_topk_baselines_find_the_exact_hamming_neighbours():
    """The top10 group at a small size: every exact baseline returns the true k-th distances."""
    cases = {c.name: c for c in bench.topk_cases(6, 700, 64, k=5)}
    # rebuild the same rows the cases hold (same seed and generator calls)
    rng = np.random.default_rng(1)
    q, db = bench.random_packed(rng, 6, 64), bench.random_packed(rng, 700, 64)
    want = np.sort(_hamming(q, db), axis=1)[:, :5]
    if "faiss.IndexBinaryFlat" in cases:
        np.testing.assert_array_equal(cases["faiss.IndexBinaryFlat"].fn()[0], want)
    if "numkong.hammings_packed+argpartition" in cases:
        np.testing.assert_array_equal(cases["numkong.hammings_packed+argpartition"].fn()[0], want)
    if "usearch.search(exact, b1x8)" in cases:
        np.testing.assert_array_equal(cases["usearch.search(exact, b1x8)"].fn().distances, want)
    s, i = cases["ternhd.Index.topk"].fn()
    np.testing.assert_array_equal(s, ternhd.topk(q, db, 5)[0])


# ----------------------------------------------------------------------------- docs/BENCHMARKS.md
def _tables_module():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "make_tables.py"
    if not script.exists():
        pytest.skip("docs/ not in this checkout")
    spec = importlib.util.spec_from_file_location("bench_make_tables", script)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def test_benchmark_tables_match_their_json():
    m = _tables_module()
    text = m.DOC.read_text()
    present = [name for name in m.TABLES if f"<!-- table:{name} -->" in text]
    assert present, "docs/BENCHMARKS.md has no generated table"
    for name in present:
        assert f"<!-- /table:{name} -->" in text, name
    assert m.render(text) == text, "docs/BENCHMARKS.md is stale: run python docs/benchmarks/make_tables.py"


def test_every_benchmark_json_named_in_the_doc_exists():
    import re

    m = _tables_module()
    text = m.DOC.read_text()
    names = set(re.findall(r"docs/benchmarks/([\w.-]+\.(?:json|log))", text))
    assert names
    for name in names:
        assert (m.HERE / name).exists(), name


def test_missing_optional_baselines_are_left_out(monkeypatch):
    import sys

    for name in ("numkong", "usearch", "usearch.index", "faiss"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    names = {c.name for c in bench.topk_cases(4, 300, 64)} | {c.name for c in bench.hnsw_cases(4, 300, 64)}
    assert not any(n.startswith(("numkong", "usearch", "faiss")) for n in names)
    assert {"ternhd.Index.topk", "ternhd.Index.topk (exact)"} <= names
    counts = bench.thread_counts()
    assert counts["numkong"] == counts["usearch"] == counts["faiss"] == "not installed"
