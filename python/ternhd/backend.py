"""Which native code path runs: SIMD selection (run-time dispatch you can print) and threads.

``TERNHD_SIMD=scalar|avx2|avx512`` (x86-64) or ``TERNHD_SIMD=scalar|neon`` (aarch64) forces a path at
import; ``TERNHD_NUM_THREADS`` sets the default thread count. :func:`backend_info` reports what is in use.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from typing import Dict, Iterator, List

from . import _core

__all__ = ["backend_info", "simd_paths", "get_simd", "set_simd", "use_simd", "get_num_threads", "set_num_threads"]


def simd_paths() -> List[str]:
    """SIMD paths this CPU supports (always includes ``"scalar"``)."""
    return list(_core.simd_paths())


def get_simd() -> str:
    """The SIMD path the kernels use now."""
    return _core.get_simd()


def set_simd(name: str) -> None:
    """Force a SIMD path; ``ValueError`` if unknown or unsupported by this CPU."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a string, got {type(name).__name__}")
    _core.set_simd(name)


@contextlib.contextmanager
def use_simd(name: str) -> Iterator[None]:
    """Context manager that runs its body on SIMD path ``name`` and restores the previous one."""
    old = get_simd()
    set_simd(name)
    try:
        yield
    finally:
        set_simd(old)


def get_num_threads() -> int:
    """Threads the native kernels use."""
    return int(_core.get_num_threads())


def set_num_threads(n: int) -> None:
    """Threads the native kernels use; ``n <= 0`` restores the default (all cores or TERNHD_NUM_THREADS)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an integer, got {type(n).__name__}")
    _core.set_num_threads(n)


def backend_info() -> Dict[str, object]:
    """SIMD path in use, paths available, threads, versions and GPU availability."""
    info: Dict[str, object] = {
        "version": _core.__version__,
        "simd": get_simd(),
        "simd_best": _core.best_simd(),
        "simd_available": simd_paths(),
        "threads": get_num_threads(),
        "kernel_families": list(_core.families),
    }
    try:
        import torch  # noqa: F401

        info["cuda"] = bool(torch.cuda.is_available())
    except ImportError:
        info["cuda"] = False
    return info


def _apply_env() -> None:
    forced = os.environ.get("TERNHD_SIMD")
    if forced:
        try:
            _core.set_simd(forced.strip().lower())
        except ValueError as exc:
            warnings.warn(f"TERNHD_SIMD={forced!r} ignored: {exc}; using {get_simd()}", RuntimeWarning, stacklevel=3)
