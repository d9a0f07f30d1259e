"""pytest-benchmark plumbing: each benchmark is a ternhd.bench.Case; at the end the summary prints
throughput per group and the target ratios measured in this same run.

    pytest benchmarks --benchmark-autosave              # record a run
    pytest benchmarks --benchmark-compare               # compare with the last saved run
    pytest benchmarks/bench_similarity.py --benchmark-json docs/benchmarks/similarity.json
    TERNHD_BENCH_STRICT=1 pytest benchmarks             # fail the session when a target is missed
    TERNHD_BENCH_THREADS=2 pytest benchmarks            # threads for every library (default: all cores)
    TERNHD_BENCH_MAX_CALL_S=30                          # skip a baseline whose probed call would take longer

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
_SKIPPED = []  # rows of the cases skipped by their probe: kept in the JSON (``ternhd_skipped``)
MAX_CALL_S = float(os.environ.get("TERNHD_BENCH_MAX_CALL_S", "30"))
MAX_SETUP_S = float(os.environ.get("TERNHD_BENCH_MAX_SETUP_S", "300"))


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
        # the budget rule of ternhd bench, with larger limits: skip (with the reason) a baseline
        # whose setup would take longer than MAX_SETUP_S, or whose probe (run after the setup, so
        # that it searches what the setup built) says one call would take longer than MAX_CALL_S
        reason = ""
        if case.setup_estimate is not None:
            est, how = case.setup_estimate()
            if est > MAX_SETUP_S:
                reason = (f"its setup would take ~{est:.0f} s ({how}); "
                          f"TERNHD_BENCH_MAX_SETUP_S={MAX_SETUP_S:.0f}")
        if case.setup is not None and not reason:  # e.g. an HNSW graph: built once, not timed
            t0 = time.perf_counter()
            extra = case.setup()
            benchmark.extra_info["setup_s"] = time.perf_counter() - t0
            if extra:
                case.note = f"{case.note}; {extra}" if case.note else extra
        if case.probe is not None and not reason:
            t0 = time.perf_counter()
            case.probe()
            t = time.perf_counter() - t0
            est = t * case.units / case.probe_units
            benchmark.extra_info["probe_estimate_s"] = est
            if est > MAX_CALL_S:
                reason = (f"one call would take ~{est:.0f} s (a probe of {case.probe_units / case.units:.2%} "
                          f"of the work took {t:.2f} s); TERNHD_BENCH_MAX_CALL_S={MAX_CALL_S:.0f}")
        if reason:
            _SKIPPED.append(dict(group=case.group, name=case.name, role=case.role, unit=case.unit, note=case.note,
                                 skipped=reason))
            pytest.skip(f"{case.name}: {reason}")
        benchmark.extra_info.update(units=case.units, unit=case.unit, role=case.role, note=case.note,
                                    threads=_threads(request.config))
        benchmark.pedantic(case.fn, rounds=rounds, warmup_rounds=1, iterations=1)
        stats = getattr(benchmark, "stats", None)
        if stats is not None and getattr(stats, "stats", None) is not None:
            _RESULTS.append((case, stats.stats.median))

    return _run


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["ternhd_skipped"] = list(_SKIPPED)
    output_json["ternhd_threads"] = _threads(config)


def pytest_sessionfinish(session, exitstatus):
    if not _RESULTS:
        return
    rows = bench.throughput_table(_RESULTS) + [dict(r, seconds=None, rate=None, calls=0) for r in _SKIPPED]
    targets = bench.check_targets(rows)
    session.config._ternhd_table = bench.format_table(rows, targets, _threads(session.config))
    if os.environ.get("TERNHD_BENCH_STRICT") == "1" and any(t["ok"] is False for t in targets):
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, config):
    table = getattr(config, "_ternhd_table", None)
    if table:
        terminalreporter.write_sep("=", "ternhd throughput and targets")
        terminalreporter.write_line(table)
