"""Reliability of the native core: concurrent callers, GIL release, determinism across SIMD paths,
thread counts and processes, and the sanitizer log scanner used by CI."""
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import ternhd

ROOT = Path(__file__).resolve().parents[1]


def _kernels(rng):
    """(name, fn(seed) -> result) for every native kernel family."""

    def data(seed, rows=60, dim=1001):
        r = np.random.default_rng(seed)
        t = r.integers(-1, 2, size=(rows, dim), dtype=np.int8)
        return t, ternhd.pack_ternary(t), r.standard_normal((rows, dim)).astype(np.float32)

    return {
        "pack_ternary": lambda s: ternhd.pack_ternary(data(s)[0]),
        "unpack_ternary": lambda s: ternhd.unpack_ternary(data(s)[1], 1001),
        "quantize": lambda s: ternhd.quantize(data(s)[2], packed=True),
        "cosine": lambda s: ternhd.cosine(data(s)[1], data(s + 1)[1]),
        "hamming": lambda s: ternhd.hamming(data(s)[1], data(s + 1)[1]),
        "topk": lambda s: ternhd.topk(data(s)[1], data(s + 1)[1], 7)[1],
        "Index.topk": lambda s: ternhd.Index(data(s + 1)[1]).topk(data(s)[1], 7, "dot")[1],
        "HDCEncoder.encode": lambda s: ternhd.HDCEncoder(1001, dim=500, seed=s % 3).encode(data(s)[2]),
        "HDCEncoder.encode(srht)": lambda s: ternhd.HDCEncoder(1001, dim=500, projection="srht").encode(data(s)[2]),
        "bind": lambda s: ternhd.bind(data(s)[1], data(s + 1)[1]),
        "bundle": lambda s: ternhd.bundle(data(s)[1]),
        "permute": lambda s: ternhd.permute(data(s)[1], s - 11, 1001),
        "packet base3": lambda s: ternhd.packet.base3_encode(data(s)[1], 1001),
    }


@pytest.mark.parametrize("name", list(_kernels(None)))
def test_eight_python_threads_match_serial(name):
    fn = _kernels(None)[name]
    seeds = list(range(24))
    serial = [fn(s) for s in seeds]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(fn, seeds))
    for a, b in zip(serial, concurrent):
        assert np.array_equal(a, b)


def test_concurrent_calls_on_different_simd_paths_and_threads():
    # set_simd / set_num_threads from other threads never corrupt a call in flight
    fn = _kernels(None)["cosine"]
    want = fn(3)
    stop = threading.Event()

    def flipper():
        paths = ternhd.simd_paths()
        i = 0
        while not stop.is_set():
            ternhd.set_simd(paths[i % len(paths)])
            ternhd.set_num_threads(1 + i % 3)
            i += 1

    old = ternhd.get_simd()
    t = threading.Thread(target=flipper)
    t.start()
    try:
        for _ in range(20):
            assert np.array_equal(fn(3), want)
    finally:
        stop.set()
        t.join()
        ternhd.set_simd(old)
        ternhd.set_num_threads(0)


def test_gil_is_released_during_long_kernels():
    rng = np.random.default_rng(0)
    a = ternhd.pack_ternary(rng.integers(-1, 2, size=(64, 4096), dtype=np.int8))
    b = ternhd.pack_ternary(rng.integers(-1, 2, size=(20000, 4096), dtype=np.int8))
    ternhd.set_num_threads(1)
    try:
        with ternhd.use_simd("scalar"):  # slow path: about a second of native work
            t0 = time.perf_counter()
            ternhd.cosine(a, b)
            kernel = time.perf_counter() - t0
            done = threading.Event()

            def work():
                ternhd.cosine(a, b)
                done.set()

            t = threading.Thread(target=work)
            ticks, last, gap = 0, time.perf_counter(), 0.0
            t.start()
            while not done.is_set():
                now = time.perf_counter()
                gap = max(gap, now - last)
                last = now
                ticks += 1
                time.sleep(0.001)
            t.join()
    finally:
        ternhd.set_num_threads(0)
    # Holding the GIL would freeze this loop for the whole kernel; released, it keeps ticking.
    assert ticks > 10 and gap < 0.5 * kernel, (ticks, gap, kernel)


def test_identical_results_across_simd_paths_and_thread_counts():
    fns = _kernels(None)
    ref = {k: f(5) for k, f in fns.items()}
    for path in ternhd.simd_paths():
        for n in (1, 2, 5):
            ternhd.set_num_threads(n)
            with ternhd.use_simd(path):
                for k, f in fns.items():
                    assert np.array_equal(f(5), ref[k]), (k, path, n)
    ternhd.set_num_threads(0)


def _digest_in_subprocess(simd):
    code = (
        "import hashlib, numpy as np, ternhd\n"
        "r = np.random.default_rng(7)\n"
        "x = r.standard_normal((50, 384)).astype(np.float32)\n"
        "e = ternhd.HDCEncoder(384, dim=1000, seed=3)\n"
        "p = e.encode(x)\n"
        "c = ternhd.cosine(p, p)\n"
        "print(hashlib.sha256(p.tobytes() + c.tobytes()).hexdigest())\n"
    )
    env = {"TERNHD_SIMD": simd, "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, **env})
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_encoder_output_identical_across_processes_and_paths():
    digests = {_digest_in_subprocess(s) for s in ternhd.simd_paths()}
    digests.add(_digest_in_subprocess(ternhd.simd_paths()[-1]))
    assert len(digests) == 1


def test_row_width_guard():
    # rows wider than the int32 counters allow are refused before any work
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape=(1, 1 << 30), strides=(0, 0))
    with pytest.raises(ValueError, match="^a: packed rows of"):
        ternhd.cosine(huge, huge)
    with pytest.raises(ValueError, match="^database: packed rows of"):
        ternhd.Index(huge)


def test_sanitizer_scanner_flags_our_leaks_and_errors(tmp_path):
    scanner = ROOT / ".ci" / "scan_sanitizer_logs.py"
    (tmp_path / "asan.1").write_text(
        "Direct leak of 16 byte(s) in 1 object(s) allocated from:\n    #0 0x1 in malloc\n"
        "    #1 0x2 in PyObject_Malloc Objects/obmalloc.c:1\n")
    ok = subprocess.run([sys.executable, str(scanner), str(tmp_path)], capture_output=True, text=True)
    assert ok.returncode == 0 and "1 leak report(s) elsewhere" in ok.stdout
    (tmp_path / "asan.2").write_text(
        "Direct leak of 64 byte(s) in 1 object(s) allocated from:\n    #0 0x1 in operator new\n"
        "    #1 0x2 in ternhd::to_planes(...) csrc/similarity.cpp:40\n")
    bad = subprocess.run([sys.executable, str(scanner), str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 1 and "1 leak(s) through ternhd code" in bad.stdout
    (tmp_path / "asan.2").write_text("==1==ERROR: AddressSanitizer: heap-buffer-overflow on address\n")
    assert subprocess.run([sys.executable, str(scanner), str(tmp_path)]).returncode == 1
