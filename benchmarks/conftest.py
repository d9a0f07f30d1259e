"""pytest-benchmark plumbing: each benchmark is a ternhd.bench.Case; at the end the summary prints
throughput per group and the target ratios measured in this same run.

    pytest benchmarks --benchmark-autosave              # record a run
    pytest benchmarks --benchmark-compare               # compare with the last saved run
    TERNHD_BENCH_STRICT=1 pytest benchmarks             # fail the session when a target is missed
"""
import os

import pytest

from ternhd import bench

_RESULTS = []


@pytest.fixture
def run_case(benchmark):
    """Benchmarks one Case with pytest-benchmark and records its median for the ratio summary."""

    def _run(case: bench.Case, rounds: int = 5):
        benchmark.group = case.group
        benchmark.name = case.name
        benchmark.extra_info.update(units=case.units, unit=case.unit, role=case.role, note=case.note)
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
    session.config._ternhd_table = bench.format_table(rows, targets)
    if os.environ.get("TERNHD_BENCH_STRICT") == "1" and any(not t["ok"] for t in targets):
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, config):
    table = getattr(config, "_ternhd_table", None)
    if table:
        terminalreporter.write_sep("=", "ternhd throughput and targets")
        terminalreporter.write_line(table)
