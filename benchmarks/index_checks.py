"""Index product targets (issue 14), timed on this machine:

* ``add`` of 100,000 rows into an index of 1,000,000 rows (< 1 s);
* ``Index.view`` of a ~1 GB index file (< 50 ms, RSS growth < 10 MB before the first search);
* asymmetric (float32 query) search vs ternary x ternary search, same index (target >= 0.5x).

Usage: python benchmarks/index_checks.py [--dim 4096] [--rows 1000000] [--tmp DIR] [--skip-view]
       python benchmarks/index_checks.py --asym-only [--threads N] [--search-rows 100000] [--batch 256] [--json F]

``--asym-only`` runs only the asymmetric check: ``Index.search`` of float32 queries, int8 queries and
packed ternary queries against the same index, same k, same number of queries, a fixed thread count,
timed alternately (the best of ``--reps`` each), for a batch and for one query, and prints
asym / ternary-x-ternary throughput ratios.
"""
import argparse
import json
import os
import resource
import sys
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
    ap.add_argument("--asym-only", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="kernel threads (0: all cores)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", default=None, help="--asym-only: also write the timings and ratios to this file")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    width = (a.dim + 3) // 4
    if a.threads:
        ternhd.set_num_threads(a.threads)
    print(f"threads={ternhd._core.get_num_threads()} simd={ternhd._core.get_simd()} cpus={os.cpu_count()} "
          f"load={' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if a.asym_only:
        asym_check(a, rng, width)
        return

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


def asym_check(a, rng, width):
    """Float32 / int8 query search vs packed ternary query search on one index (issue 14: >= 0.5x)."""
    n = a.search_rows
    idx = Index(random_packed(n, width, rng), dim=a.dim)
    rows = []
    for m in (a.batch, 1):
        queries = {
            "ternary": random_packed(m, width, rng),
            "float32": rng.standard_normal((m, a.dim)).astype(np.float32),
            "int8": rng.integers(-127, 128, (m, a.dim)).astype(np.int8),
        }
        for metric in ("cosine", "dot"):
            best = {}
            for q in queries.values():  # warm-up
                idx.search(q, a.k, metric)
            for _ in range(a.reps):  # alternate, so a load change hits every kind alike
                for name, q in queries.items():
                    t0 = time.perf_counter()
                    idx.search(q, a.k, metric)
                    best[name] = min(best.get(name, np.inf), time.perf_counter() - t0)
            tt = best["ternary"]
            parts = [f"ternary {tt * 1e3:.1f} ms ({m * n / tt / 1e6:.2f} M pairs/s)"]
            for name in ("float32", "int8"):
                parts.append(f"{name} {best[name] * 1e3:.1f} ms ({m * n / best[name] / 1e6:.2f} M pairs/s, "
                             f"ratio {tt / best[name]:.2f}x)")
            print(f"search k={a.k} {metric}, {m} quer{'y' if m == 1 else 'ies'} x {n} rows x {a.dim} trits "
                  f"(best of {a.reps}): " + "; ".join(parts) + " (target >= 0.5x)", flush=True)
            rows.append({"metric": metric, "queries": m, "rows": n, "dim": a.dim, "k": a.k,
                         "seconds": {name: best[name] for name in best},
                         "ratio": {name: tt / best[name] for name in ("float32", "int8")}})
    load = os.getloadavg()
    print(f"load after: {' '.join(f'{x:.2f}' for x in load)}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"command": "python " + " ".join(sys.argv), "threads": ternhd._core.get_num_threads(),
                       "simd": ternhd._core.get_simd(), "cpus": os.cpu_count(), "load_after": list(load),
                       "target": ">= 0.5x (asymmetric / ternary x ternary throughput)", "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
