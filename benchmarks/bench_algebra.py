"""HDC algebra on packed rows (dim = 4096 trits, 1024 bytes per row): ternhd against what a numpy
user would write (bind: the same bit formula on uint64 words; bundle: table unpack, int16 column
sums, sign, vectorized pack; permute: a rotation of the packed rows as big-endian uint64 words, and
table unpack + np.roll + vectorized pack) and against the clarity-first reference (ternhd.reference:
unpack, compute, pack, on a 1/16 slice). Throughput is in packed input bytes per second, so slices
compare. Cases in ternhd.bench."""
import pytest

from ternhd import bench

CASES = {c.name + "|" + c.group: c for c in bench.algebra_cases()}


@pytest.mark.parametrize("key", list(CASES))
def test_algebra(run_case, key):
    run_case(CASES[key])
