"""2-bit packing and unpacking of 64 MiB of int8 trits against what a numpy user would write
(vectorized: the int8 bytes masked into codes and four shifted together per uint32 to pack; a
256-entry table of 4 trits per byte to unpack) and against the clarity-first numpy reference
(ternhd.reference, on a 1/16 slice; throughput is per byte, so the rows compare)."""
import pytest

from ternhd import bench

CASES = {f"{c.group}:{c.name}": c for c in bench.pack_cases()}


@pytest.mark.parametrize("name", list(CASES))
def test_pack(run_case, name):
    run_case(CASES[name])
