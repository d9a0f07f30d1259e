"""pytest-benchmark plumbing: each benchmark is a ternhd.bench.Case; at the end the summary prints
throughput per group and the target ratios measured in this same run.

    pytest benchmarks --benchmark-autosave              # record a run
    pytest benchmarks --benchmark-compare               # compare with the last saved run
    pytest benchmarks/bench_similarity.py --benchmark-json docs/benchmarks/similarity.json
    TERNHD_BENCH_STRICT=1 pytest benchmarks             # fail the session when a target is missed
    TERNHD_BENCH_THREADS=2 pytest benchmarks            # threads for every library (default: all cores)

Threads are pinned at session start to the same count for every library (ternhd, torch, faiss,
numpy's BLAS, and the worker threads that split NumKong calls; usearch gets ``threads=n`` in each
call), printed in the session header, and stored in the JSON: ``machine_info["ternhd_threads"]``
and every benchmark's ``extra_info["threads"]``.
"""
import os
import time

import pytest

from ternhd import bench

_RESULTS = []


def _threads(config) -> dict:
    counts = getattr(config, "_ternhd_threads", None)
    if counts is None:
        env = os.environ.get("TERNHD_BENCH_THREADS")
        counts = config._ternhd_threads = bench.pin_threads(int(env) if env else None)
    return counts


def pytest_configure(config):
    _threads(config)


def pytest_report_header(config):
    return [f"ternhd bench: {bench.machine()}", "ternhd bench " + bench.format_threads(_threads(config))]


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["ternhd_threads"] = _threads(config)
    machine_info["ternhd_machine"] = bench.machine()


@pytest.fixture
def run_case(benchmark, request):
    """Benchmarks one Case with pytest-benchmark and records its median for the ratio summary."""

    def _run(case: bench.Case, rounds: int = 5):
        benchmark.group = case.group
        benchmark.name = case.name
        if case.setup is not None:  # e.g. an HNSW graph: built once, not timed
            t0 = time.perf_counter()
            extra = case.setup()
            benchmark.extra_info["setup_s"] = time.perf_counter() - t0
            if extra:
                case.note = f"{case.note}; {extra}" if case.note else extra
        benchmark.extra_info.update(units=case.units, unit=case.unit, role=case.role, note=case.note,
                                    threads=_threads(request.config))
        benchmark.pedantic(case.fn, rounds=rounds, warmup_rounds=1, iterations=1)
        stats = getattr(benchmark, "stats", None)
        if stats is not None and getattr(stats, "stats", None) is not None:
            _RESULTS.append((case, stats.stats.median))

    return _run


def pytest_sessionfinish(session, exitstatus):
    if not _RESULTS:
        return
    rows = bench.throughput_table(_RESULTS)
    targets = bench.check_targets(rows)
    session.config._ternhd_table = bench.format_table(rows, targets, _threads(session.config))
    if os.environ.get("TERNHD_BENCH_STRICT") == "1" and any(t["ok"] is False for t in targets):
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, config):
    table = getattr(config, "_ternhd_table", None)
    if table:
        terminalreporter.write_sep("=", "ternhd throughput and targets")
        terminalreporter.write_line(table)
