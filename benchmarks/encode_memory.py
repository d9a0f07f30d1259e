"""Peak memory of encoding N = 1,000,000 rows (in_dim 384, dim 4096, float32) with HDCEncoder.

Target: peak memory <= inputs + packed output + 128 MiB. The script allocates and fills
the inputs first (in chunks, so no float64 temporary) and loads the libraries (torch when the GEMM
backend is oneDNN or torch), then resets the kernel's peak-RSS counter (``/proc/self/clear_refs``,
Linux) and encodes with a fresh encoder (no warm-up: generating the projection matrix, the GEMM
library's buffers and the block buffers all count). It reports the peak resident set during encode
against the process size before it (which already holds the inputs, the interpreter and the loaded
libraries), so the overhead line is what the encoder adds beyond its packed output.

    python benchmarks/encode_memory.py                 # 1,000,000 rows, gaussian
    python benchmarks/encode_memory.py --rows 200000 --projection srht
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

MIB = 1 << 20


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--in-dim", type=int, default=384)
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--projection", default="gaussian", choices=["gaussian", "sparse", "srht"])
    ap.add_argument("--budget-mib", type=float, default=128.0)
    args = ap.parse_args(argv)

    import ternhd
    from ternhd.encoder import HDCEncoder
    from ternhd.gemm import gemm_backend

    enc = HDCEncoder(args.in_dim, args.dim, projection=args.projection)
    x = np.empty((args.rows, args.in_dim), np.float32)
    rng = np.random.default_rng(0)
    for r in range(0, args.rows, 65536):
        x[r:r + 65536] = rng.standard_normal((min(65536, args.rows - r), args.in_dim), dtype=np.float32)
    backend = gemm_backend() if args.projection == "gaussian" else "native"  # loads torch when it is used
    if not _reset_peak():
        print("cannot reset the peak RSS counter (/proc/self/clear_refs); numbers would include setup")
        return 2
    base = _status("VmRSS")
    t0 = time.perf_counter()
    out = enc.encode(x)
    sec = time.perf_counter() - t0
    peak = _status("VmHWM")
    inputs, output = x.nbytes, out.nbytes
    extra = peak - base - output
    ok = extra <= args.budget_mib * MIB
    print(f"ternhd {ternhd.__version__}, {ternhd.backend_info()['simd']}, {args.projection} (GEMM: {backend}), "
          f"{args.rows} x {args.in_dim} -> {args.dim}: {sec:.1f} s ({args.rows / sec:,.0f} rows/s)")
    print(f"inputs {inputs / MIB:,.0f} MiB, packed output {output / MIB:,.0f} MiB")
    print(f"RSS before encode {base / MIB:,.0f} MiB (inputs + interpreter + libraries), peak during encode "
          f"{peak / MIB:,.0f} MiB")
    print(f"peak - before - output = {extra / MIB:,.1f} MiB (budget {args.budget_mib:.0f} MiB): "
          f"{'ok' if ok else 'OVER'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
