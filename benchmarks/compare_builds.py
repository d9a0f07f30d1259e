"""The same public kernel calls timed under several installed builds of ternhd, interleaved.

A refactoring that must leave kernel speed unchanged (say, moving files) is checked by timing the
old and the new build on the same machine in the same minutes: each round runs every build once, in
a fresh subprocess, on the same seeded data, and the rounds alternate the builds so that a load
change on a shared machine hits them alike. Reported: the median over rounds of each case's time
(each a best-of-``--inner`` inside its subprocess), and the new/old ratio of those medians.

    python benchmarks/compare_builds.py --build pre=/path/venv-a/bin/python \\
        --build post=/path/venv-b/bin/python --rounds 5 --json out.json

Only API that every build since the first landing has (``pack_ternary``, ``unpack_ternary``,
``pairwise``, ``topk``, ``Index``, ``quantize``, ``bind``, ``bundle``, ``permute``,
``HDCEncoder``) is called. Threads are pinned (``--threads``) in every build.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

# Runs inside each build's interpreter: times every case, prints one JSON object.
CHILD = r"""
import json, sys, time
import numpy as np
import ternhd
threads, inner = int(sys.argv[1]), int(sys.argv[2])
ternhd.set_num_threads(threads)
rng = np.random.default_rng(0)
D = 4096
def trits(n, d=D):
    return rng.integers(-1, 2, size=(n, d), dtype=np.int8)
t_big = trits(20000)
p_big = ternhd.pack_ternary(t_big)
q = ternhd.pack_ternary(trits(64))
db = ternhd.pack_ternary(trits(100000))
index = ternhd.Index(db)
a256 = ternhd.pack_ternary(trits(256))
b4k = ternhd.pack_ternary(trits(4096))
x = rng.standard_normal((4096, 1024)).astype(np.float32)
e = rng.standard_normal((2048, 384)).astype(np.float32)
enc = ternhd.HDCEncoder(384, dim=D, seed=0)
bund = ternhd.pack_ternary(trits(1000))
cases = {
    "pack 20000x4096": lambda: ternhd.pack_ternary(t_big),
    "unpack 20000x4096": lambda: ternhd.unpack_ternary(p_big, D),
    "topk k=10, 64 x 100000 (function)": lambda: ternhd.topk(q, db, 10),
    "Index.topk k=10, 64 x 100000": lambda: index.topk(q, 10),
    "pairwise cosine 256 x 4096": lambda: ternhd.pairwise(a256, b4k, "cosine"),
    "quantize 4096x1024 (std)": lambda: ternhd.quantize(x),
    "bind 20000x4096": lambda: ternhd.bind(p_big, p_big),
    "bundle 1000 rows": lambda: ternhd.bundle(bund),
    "permute 20000x4096": lambda: ternhd.permute(p_big, 7, D),
    "HDCEncoder.encode 2048x384 -> 4096": lambda: enc.encode(e),
}
out = {"ternhd": ternhd.__file__, "simd": ternhd.backend_info().get("simd"), "times": {}}
for name, f in cases.items():
    f()
    best = float("inf")
    for _ in range(inner):
        t0 = time.perf_counter(); f(); best = min(best, time.perf_counter() - t0)
    out["times"][name] = best
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", action="append", required=True, metavar="NAME=PYTHON",
                    help="a build: a name and the interpreter that imports it (repeat; the first is the reference)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--inner", type=int, default=3, help="best of this many calls per case per round")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    builds = [b.split("=", 1) for b in args.build]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads), TERNHD_NUM_THREADS=str(args.threads))
    runs = {name: [] for name, _ in builds}
    info = {}
    load = [os.getloadavg()]
    for r in range(args.rounds):
        order = builds if r % 2 == 0 else builds[::-1]
        for name, py in order:
            t0 = time.time()
            res = subprocess.run([py, "-c", CHILD, str(args.threads), str(args.inner)], env=env, cwd="/",
                                 capture_output=True, text=True, check=True)
            o = json.loads(res.stdout.strip().splitlines()[-1])
            info[name] = {"ternhd": o["ternhd"], "simd": o["simd"]}
            runs[name].append(o["times"])
            print(f"round {r + 1} {name}: {time.time() - t0:.1f} s, load {os.getloadavg()[0]:.2f}", flush=True)
        load.append(os.getloadavg())
    ref = builds[0][0]
    cases = list(runs[ref][0])
    med = {n: {c: statistics.median(t[c] for t in runs[n]) for c in cases} for n in runs}
    names = [n for n, _ in builds]
    head = "| case | " + " | ".join(f"{n} (ms)" for n in names) + " | " + " | ".join(
        f"{n} / {ref}" for n in names[1:]) + " |"
    print(f"\n{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"threads {args.threads}, {args.rounds} rounds, best of {args.inner} per round, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load {load[0]} -> {load[-1]}")
    print(head)
    print("|---|" + "---:|" * (2 * len(names) - 1))
    for c in cases:
        cells = [f"{med[n][c] * 1e3:.2f}" for n in names] + [f"{med[n][c] / med[ref][c]:.3f}" for n in names[1:]]
        print(f"| {c} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"builds": dict(builds), "info": info, "threads": args.threads, "rounds": args.rounds,
                       "inner": args.inner, "load": load, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "cpu": platform.processor(), "runs": runs, "median_seconds": med}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
