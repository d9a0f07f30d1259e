"""Per-row std ternary quantization of 8192 x 4096 float32 rows against the numpy reference."""
import pytest

from ternhd import bench

CASES = {c.name: c for c in bench.quantize_cases()}


@pytest.mark.parametrize("name", list(CASES))
def test_quantize(run_case, name):
    run_case(CASES[name])
