"""The ``ternhd`` command line: ``ternhd bench`` prints the kernel table against its baselines."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def _add_bench(sub) -> None:
    from . import bench

    p = sub.add_parser("bench", help="time the kernels against their baselines on this machine")
    bench.add_arguments(p)
    p.set_defaults(func=bench.command)


def _add_info(sub) -> None:
    def info(args) -> int:
        import ternhd

        for key, value in ternhd.backend_info().items():
            print(f"{key}: {value}")
        return 0

    p = sub.add_parser("info", help="print the native backend in use (SIMD path, threads, version)")
    p.set_defaults(func=info)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ternhd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_bench, _add_info):
        add(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
