"""Shared fixtures: every native test runs on each SIMD path this CPU supports."""
import numpy as np
import pytest

import ternhd


@pytest.fixture(params=ternhd.simd_paths())
def simd(request):
    """Runs the test body on one SIMD path (scalar, avx2, avx512 as available)."""
    with ternhd.use_simd(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def random_trits(rng, shape, p_zero=1 / 3):
    """int8 trits with a given fraction of zeros."""
    p = (1 - p_zero) / 2
    return rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=shape, p=[p, p_zero, p])
