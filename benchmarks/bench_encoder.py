"""Fused encode (projection + ternary threshold + 2-bit packing) at the paper's shape against its
baselines, in one run: in_dim = 768, dim = 4096, float32, N = 8192 (cases in ternhd.bench).

Targets, checked by the summary of benchmarks/conftest.py from this run's medians:
  ternhd gaussian encode >= 0.85x the bare torch.matmul(x, P) of the same shape,
  ternhd gaussian encode >= 2x the naive numpy pipeline (x @ P, std, compare, pack),
  ternhd srht encode     >= 8x the ternhd gaussian encode.
"""
import pytest

from ternhd import bench

CASES = {c.name: c for c in bench.encode_cases()}


@pytest.mark.parametrize("name", list(CASES))
def test_encode(run_case, name):
    run_case(CASES[name])
