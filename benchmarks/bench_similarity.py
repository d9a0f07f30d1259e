"""Packed cosine (all pairs) and top-10 search, D = 4096, 256 x 20,000, against torch float32 /
int8 matmul on the unpacked vectors, faiss IndexBinaryFlat on the same bytes, and numpy."""
import pytest

from ternhd import bench

COSINE = {c.name: c for c in bench.similarity_cases()}
TOPK = {c.name: c for c in bench.topk_cases()}


@pytest.mark.parametrize("name", list(COSINE))
def test_cosine(run_case, name):
    run_case(COSINE[name])


@pytest.mark.parametrize("name", list(TOPK))
def test_top10(run_case, name):
    run_case(TOPK[name])
