"""HDC algebra on packed rows (dim = 4096 trits, 1024 bytes per row) against the numpy reference
(ternhd.reference: unpack, compute, pack) and, for bind, a numpy version of the same bit formula.
Throughput is in packed input bytes per second; the reference runs on a slice (it is slower), which
compares because the throughput is per byte."""
from __future__ import annotations

from typing import List

import numpy as np
import pytest

import ternhd
from ternhd import bench
from ternhd import reference as ref

DIM = 4096


def _packed(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return ternhd.pack_ternary(rng.integers(-1, 2, size=shape + (DIM,), dtype=np.int8))


def numpy_bitwise_bind(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """bind with numpy on the packed words: the same formula as the native kernel."""
    m = np.uint64(0x5555555555555555)
    one = np.uint64(1)
    wa, wb = a.view(np.uint64), b.view(np.uint64)
    sb = ((wb >> one) & m) | ((wb & m) << one)
    x, y = wa & wb, wa & sb
    return ((((x | (x >> one)) & m) | (((y | (y >> one)) & m) << one))).view(np.uint8)


def algebra_cases(rows: int = 8192, seed: int = 4) -> List[bench.Case]:
    rng = np.random.default_rng(seed)
    a, b = _packed(rng, (rows,)), _packed(rng, (rows,))
    groups = _packed(rng, (rows // 64, 64))  # 128 bundles of 64 vectors
    s = rows // 16
    nbytes = float(a.nbytes)
    return [
        bench.Case("bind", "ternhd.bind", lambda: ternhd.bind(a, b), 2 * nbytes, "B", "ternhd"),
        bench.Case("bind", "numpy-bitwise", lambda: numpy_bitwise_bind(a, b), 2 * nbytes, "B",
                   note="the same bit formula on uint64 words"),
        bench.Case("bind", "numpy-reference", lambda: ref.bind(a[:s], b[:s]), 2 * nbytes / 16, "B",
                   note="ternhd.reference.bind (unpack, multiply, pack; 1/16 slice)"),
        bench.Case("bundle", "ternhd.bundle", lambda: ternhd.bundle(groups), float(groups.nbytes), "B", "ternhd",
                   "128 groups x 64 vectors, majority"),
        bench.Case("bundle", "numpy-reference", lambda: ref.bundle(groups[: len(groups) // 16]),
                   float(groups.nbytes) / 16, "B", note="ternhd.reference.bundle (1/16 slice)"),
        bench.Case("permute", "ternhd.permute", lambda: ternhd.permute(a, 1234567, DIM), nbytes, "B", "ternhd",
                   "k = 1234567 (not a multiple of 4)"),
        bench.Case("permute", "numpy-reference", lambda: ref.permute(a[:s], 1234567, DIM), nbytes / 16, "B",
                   note="ternhd.reference.permute (unpack, roll, pack; 1/16 slice)"),
    ]


CASES = {c.name + "|" + c.group: c for c in algebra_cases()}


@pytest.mark.parametrize("key", list(CASES))
def test_algebra(run_case, key):
    run_case(CASES[key])
