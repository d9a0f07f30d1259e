"""Shared fixtures: every native test runs on each SIMD path this CPU supports; the Triton
kernels run through the interpreter when there is no GPU."""
# --- Triton interpreter (tests/test_triton_*.py) ---------------------------------------------
# Without a GPU, the Triton kernels run on CPU tensors through the interpreter. The variable is
# read when ternhd.kernels is imported, so it is set here, before any test module imports it.
import importlib.util
import os

if "TRITON_INTERPRET" not in os.environ and importlib.util.find_spec("triton") is not None:
    try:
        import torch

        if not torch.cuda.is_available():
            os.environ["TRITON_INTERPRET"] = "1"
    except ImportError:
        pass


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
