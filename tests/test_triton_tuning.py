"""The launch-config tuner of the Triton kernels (``ternhd.kernels._util.tune``): picks the fastest
candidate, caches the choice per key, skips candidates the GPU cannot run. Timings are faked, so
this checks the selection logic on any machine; the GPU benchmark exercises real tuning."""
import pytest

pytest.importorskip("torch")
triton = pytest.importorskip("triton")

from ternhd.kernels import _util  # noqa: E402


@pytest.fixture
def fake_bench(monkeypatch):
    from triton.runtime.errors import OutOfResources

    calls = []

    def do_bench(fn, warmup=None, rep=None, return_mode=None):
        cfg = fn()
        calls.append(cfg["X"])
        if cfg["X"] == 99:
            raise OutOfResources(10 ** 6, 232448, "shared memory")
        if cfg["X"] == 98:
            raise RuntimeError("PTX assembly failed")
        return {1: 3.0, 2: 1.0, 3: 2.0, 99: 0.1}[cfg["X"]]

    monkeypatch.setattr(triton.testing, "do_bench", do_bench)
    monkeypatch.setattr(_util, "_TUNED", {})
    return calls


def test_tune_picks_fastest_and_caches(fake_bench):
    cands = [dict(X=1), dict(X=99), dict(X=2), dict(X=3)]
    run = lambda cfg: cfg  # noqa: E731
    assert _util.tune("k", (4, 8), cands, run) == dict(X=2)
    assert fake_bench == [1, 99, 2, 3]  # X=99 ran out of resources and was skipped
    assert _util.tune("k", (4, 8), cands, run) == dict(X=2)
    assert len(fake_bench) == 4  # cached: no new timings
    (name, key, chosen, timings), = _util.tuning_table()
    assert (name, key, chosen) == ("k", (4, 8), dict(X=2))
    assert [t[0] for t in timings] == [1.0, 2.0, 3.0]
    assert _util.tune("k", (4, 16), cands[:1], run) == dict(X=1)  # another key: tuned again
    assert len(_util.tuning_table()) == 2


def test_tune_skips_a_failing_candidate_with_a_warning(fake_bench):
    with pytest.warns(RuntimeWarning, match="PTX assembly failed"):
        assert _util.tune("k", (2,), [dict(X=98), dict(X=3)], lambda cfg: cfg) == dict(X=3)


def test_tune_with_no_runnable_candidate(fake_bench):
    with pytest.raises(RuntimeError, match="no launch configuration.*PTX assembly failed"):
        with pytest.warns(RuntimeWarning):
            _util.tune("k", (1,), [dict(X=99), dict(X=98)], lambda cfg: cfg)


def test_size_class_and_switch(monkeypatch):
    assert [_util.size_class(n) for n in (1, 2, 3, 64, 65, 1000)] == [1, 2, 4, 64, 128, 1024]
    monkeypatch.setenv("TERNHD_AUTOTUNE", "0")
    assert not _util.autotune_enabled()
    monkeypatch.setenv("TERNHD_AUTOTUNE", "1")
    assert _util.autotune_enabled()
