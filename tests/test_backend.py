"""Run-time dispatch you can print, forced paths, thread settings, env variables."""
import os
import subprocess
import sys

import numpy as np
import pytest

import ternhd


def test_backend_info_fields():
    info = ternhd.backend_info()
    assert info["simd"] in ("scalar", "avx2", "avx512", "neon")
    # x86 paths and the NEON path never occur together (each is compiled only for its architecture)
    assert not ({"avx2", "avx512"} & set(info["simd_available"]) and "neon" in info["simd_available"])
    assert "scalar" in info["simd_available"] and info["simd"] in info["simd_available"]
    assert info["threads"] >= 1 and info["version"] == ternhd.__version__


def test_set_simd_roundtrip_and_errors():
    old = ternhd.get_simd()
    for path in ternhd.simd_paths():
        with ternhd.use_simd(path):
            assert ternhd.get_simd() == path
    assert ternhd.get_simd() == old
    # A known path of the other architecture is unsupported here (neon on x86, avx2 on aarch64).
    foreign = "avx2" if "neon" in ternhd.simd_paths() else "neon"
    with pytest.raises(ValueError, match="simd: this CPU does not support"):
        ternhd.set_simd(foreign)
    with pytest.raises(ValueError, match="simd: unknown SIMD path"):
        ternhd.set_simd("sse9")
    with pytest.raises(TypeError, match="^name:"):
        ternhd.set_simd(3)


def _run(env_extra, code):
    env = dict(os.environ, **env_extra)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_env_forces_simd_path():
    r = _run({"TERNHD_SIMD": "scalar"}, "import ternhd; print(ternhd.get_simd())")
    assert r.returncode == 0 and r.stdout.strip() == "scalar"


def test_env_unsupported_path_warns_and_falls_back():
    foreign = "avx2" if "neon" in ternhd.simd_paths() else "neon"
    r = _run({"TERNHD_SIMD": foreign}, "import ternhd; print(ternhd.get_simd())")
    assert r.returncode == 0 and "TERNHD_SIMD" in r.stderr and r.stdout.strip() == ternhd.backend_info()["simd_best"]


def test_env_unknown_path_warns_and_falls_back():
    r = _run({"TERNHD_SIMD": "sse9"}, "import ternhd; print(ternhd.get_simd())")
    assert r.returncode == 0 and "TERNHD_SIMD" in r.stderr and r.stdout.strip() in ternhd.simd_paths()


def test_threads_env_and_setter():
    r = _run({"TERNHD_NUM_THREADS": "3"}, "import ternhd; print(ternhd.get_num_threads())")
    assert r.stdout.strip() == "3"
    ternhd.set_num_threads(1)
    try:
        assert ternhd.get_num_threads() == 1
        a = ternhd.pack_ternary(np.ones((300, 64), np.int8))
        assert ternhd.dot(a, a)[0, 0] == 64
    finally:
        ternhd.set_num_threads(0)
    with pytest.raises(TypeError, match="^n:"):
        ternhd.set_num_threads(1.5)


def test_results_identical_across_threads_and_paths(rng):
    t = rng.integers(-1, 2, size=(100, 777)).astype(np.int8)
    p = ternhd.pack_ternary(t)
    outs = []
    for path in ternhd.simd_paths():
        for n in (1, 2, 3):
            ternhd.set_num_threads(n)
            with ternhd.use_simd(path):
                outs.append((ternhd.pack_ternary(t), ternhd.cosine(p, p), ternhd.topk(p, p, 5)[1]))
    ternhd.set_num_threads(0)
    for o in outs[1:]:
        for x, y in zip(o, outs[0]):
            assert np.array_equal(x, y)
