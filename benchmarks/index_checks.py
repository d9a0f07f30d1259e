"""Index product targets (issue 14), timed on this machine:

* ``add`` of 100,000 rows into an index of 1,000,000 rows (< 1 s);
* ``Index.view`` of a ~1 GB index file (< 50 ms, RSS growth < 10 MB before the first search);
* asymmetric (float32 query) search vs ternary x ternary search, same index (target >= 0.5x).

Usage: python benchmarks/index_checks.py [--dim 4096] [--rows 1000000] [--tmp DIR] [--skip-view]
"""
import argparse
import os
import resource
import tempfile
import time

import numpy as np

import ternhd
from ternhd.similarity import Index


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def random_packed(n, width, rng):
    b = rng.integers(0, 256, (n, width), dtype=np.uint8)
    return b & ~((b >> 1) & b & 0x55)  # code 11 -> 10


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--add", type=int, default=100_000)
    ap.add_argument("--tmp", default=tempfile.gettempdir())
    ap.add_argument("--skip-view", action="store_true")
    ap.add_argument("--search-rows", type=int, default=100_000)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    width = (a.dim + 3) // 4
    print(f"threads={ternhd._core.get_num_threads()} simd={ternhd._core.get_simd()}")

    # ---- add 100k into 1M
    base = random_packed(a.rows, width, rng)
    t0 = time.perf_counter()
    idx = Index(base, dim=a.dim)
    print(f"build {a.rows} x {a.dim} trits: {time.perf_counter() - t0:.2f} s")
    extra = random_packed(a.add, width, rng)
    t0 = time.perf_counter()
    idx.add(extra)
    t_add = time.perf_counter() - t0
    print(f"add {a.add} rows into {a.rows}: {t_add * 1e3:.0f} ms (target < 1000 ms)")
    t0 = time.perf_counter()
    idx.add(random_packed(a.add, width, rng))
    print(f"second add {a.add} rows: {(time.perf_counter() - t0) * 1e3:.0f} ms")

    if not a.skip_view:
        path = os.path.join(a.tmp, "ternhd-index-check.tnhd")
        t0 = time.perf_counter()
        nbytes = idx.save(path)
        print(f"save {nbytes / 2**30:.2f} GiB: {time.perf_counter() - t0:.2f} s")
        del idx, base, extra
        r0 = rss_mb()
        t0 = time.perf_counter()
        view = Index.view(path)
        t_view = time.perf_counter() - t0
        r1 = rss_mb()
        print(f"view {nbytes / 2**30:.2f} GiB ({len(view)} rows): {t_view * 1e3:.1f} ms, RSS growth "
              f"{r1 - r0:.1f} MB (targets < 50 ms, < 10 MB)")
        q = random_packed(1, width, rng)
        t0 = time.perf_counter()
        view.search(q, 10)
        print(f"first search on the view (reads the file): {(time.perf_counter() - t0) * 1e3:.0f} ms")
        del view
        os.unlink(path)
    else:
        del idx

    # ---- asymmetric vs ternary x ternary
    n = a.search_rows
    db = random_packed(n, width, rng)
    idx = Index(db, dim=a.dim)
    for m in (1, 16):
        qp = random_packed(m, width, rng)
        qf = rng.standard_normal((m, a.dim)).astype(np.float32)
        idx.search(qp, 10), idx.search(qf, 10)
        reps = 3
        t0 = time.perf_counter()
        for _ in range(reps):
            idx.search(qp, 10)
        tt = (time.perf_counter() - t0) / reps
        t0 = time.perf_counter()
        for _ in range(reps):
            idx.search(qf, 10)
        tf = (time.perf_counter() - t0) / reps
        print(f"top-10 over {n} x {a.dim}, {m} queries: ternary {tt * 1e3:.1f} ms, float32 query {tf * 1e3:.1f} ms "
              f"-> ratio {tt / tf:.2f}x (target >= 0.5x)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MB")


if __name__ == "__main__":
    main()
