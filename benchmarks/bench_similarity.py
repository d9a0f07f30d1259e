"""Packed cosine (all pairs, 256 x 20,000) and exact top-10 search (256 queries over 100,000 rows),
D = 4096 trits = 1,024 B a row, against baselines on the same data in the same run:

* cosine: torch float32 / int8 matmul on the unpacked vectors, faiss ``IndexBinaryFlat`` on the
  same bytes, numpy ``bitwise_count``;
* top10 (issue 14 targets: ternhd >= 2x faiss binary flat, >= 1.5x NumKong, ratios of this run):
  faiss ``IndexBinaryFlat``, NumKong ``hammings_packed`` + numpy argpartition, usearch exact
  ``b1x8`` search, all on the same 1,024 B rows read as 8,192 bits, and torch float32 matmul +
  topk on the first 20,000 rows;
* hnsw (reference, queries/s): faiss ``IndexBinaryHNSW`` and usearch HNSW on ``TERNHD_BENCH_HNSW_ROWS``
  rows (default 10,000; their build time and recall@10 against exact Hamming are in the note),
  beside the exact searches of ternhd and faiss on the same rows.

Threads: pinned by benchmarks/conftest.py (``TERNHD_BENCH_THREADS``, default all cores).
"""
import os

import pytest

from ternhd import bench

COSINE = {c.name: c for c in bench.similarity_cases()}
TOPK = {c.name: c for c in bench.topk_cases(256, 100_000)}
HNSW = {c.name: c for c in bench.hnsw_cases(256, int(os.environ.get("TERNHD_BENCH_HNSW_ROWS", "10000")))}


@pytest.mark.parametrize("name", list(COSINE))
def test_cosine(run_case, name):
    run_case(COSINE[name])


@pytest.mark.parametrize("name", list(TOPK))
def test_top10(run_case, name):
    run_case(TOPK[name])


@pytest.mark.parametrize("name", list(HNSW))
def test_hnsw(run_case, name):
    run_case(HNSW[name])
