"""Memory check: 100,000 calls of each native kernel on small inputs must leave RSS flat.

    python benchmarks/rss_flat.py [--calls 100000]

Prints, per kernel, RSS after a warm-up and after the calls (MiB) and the growth; exits 1 if any
kernel grows RSS by more than --limit MiB (default 8).
"""
import argparse
import resource
import sys
import time

import numpy as np

import ternhd


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def kernels():
    rng = np.random.default_rng(0)
    t = rng.integers(-1, 2, size=(8, 130), dtype=np.int8)
    p = ternhd.pack_ternary(t)
    x = rng.standard_normal((8, 130)).astype(np.float32)
    bad = p.copy()
    bad[0, 0] = 0xFF
    index = ternhd.Index(p)

    def failing():
        try:
            ternhd.unpack_ternary(bad, 130)
        except ValueError:
            pass

    out = {
        "pack_ternary": lambda: ternhd.pack_ternary(t),
        "unpack_ternary": lambda: ternhd.unpack_ternary(p, 130),
        "quantize(packed)": lambda: ternhd.quantize(x, packed=True),
        "cosine": lambda: ternhd.cosine(p, p),
        "topk": lambda: ternhd.topk(p, p, 3),
        "Index.topk": lambda: index.topk(p, 3),
        "unpack error path": failing,
    }
    for name in ("bind", "permute"):
        if hasattr(ternhd, name):
            out[name] = (lambda: ternhd.bind(p, p)) if name == "bind" else (lambda: ternhd.permute(p, 5, 130))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--limit", type=float, default=8.0, help="allowed growth in MiB")
    args = ap.parse_args(argv)
    ternhd.set_num_threads(1)
    worst = 0.0
    print("| kernel | calls | RSS after warm-up (MiB) | RSS after (MiB) | growth (MiB) | time (s) |")
    print("|---|---|---|---|---|---|")
    for name, fn in kernels().items():
        for _ in range(1000):
            fn()
        before = rss_mib()
        t0 = time.perf_counter()
        for _ in range(args.calls):
            fn()
        after = rss_mib()
        worst = max(worst, after - before)
        print(f"| {name} | {args.calls} | {before:.1f} | {after:.1f} | {after - before:+.2f} | "
              f"{time.perf_counter() - t0:.1f} |")
    print(f"\nworst growth {worst:+.2f} MiB (limit {args.limit} MiB)")
    return 0 if worst <= args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
