"""HDC algebra on packed rows (dim = 4096 trits, 1024 bytes per row) against the numpy reference
(ternhd.reference: unpack, compute, pack) and, for bind, a numpy version of the same bit formula
(cases in ternhd.bench). Throughput is in packed input bytes per second; the reference runs on a
slice, which compares because the throughput is per byte."""
import pytest

from ternhd import bench

CASES = {c.name + "|" + c.group: c for c in bench.algebra_cases()}


@pytest.mark.parametrize("key", list(CASES))
def test_algebra(run_case, key):
    run_case(CASES[key])
