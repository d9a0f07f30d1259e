"""2-bit packing and unpacking of 64 MiB of int8 trits against the numpy reference."""
import pytest

from ternhd import bench

CASES = {f"{c.group}:{c.name}": c for c in bench.pack_cases()}


@pytest.mark.parametrize("name", list(CASES))
def test_pack(run_case, name):
    run_case(CASES[name])
