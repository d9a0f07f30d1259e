"""The architecture's rules, checked on the source tree (they fail when a change breaks a layer):

* the device is chosen in one place: only ``ternhd/_device.py`` (and ``kernels/``) ask whether an
  array is a CUDA tensor, and no front module imports the Triton package itself;
* the Triton layer never imports from the public front;
* the C++ kernels are a plain library: only ``csrc/python/`` includes pybind11;
* no source file cites a document outside the repository (``../shared/data``, the offline datasets
  the CLI looks for beside its working directory, is data, not a citation).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "ternhd"
KERNELS = ROOT / "kernels"
CSRC = ROOT / "csrc"

if not PACKAGE.is_dir() or not KERNELS.is_dir():  # pragma: no cover - tests run from a checkout
    pytest.skip("needs the source tree beside the tests", allow_module_level=True)


def _code(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_device_choice_lives_in_the_seam():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_device.py":
            continue
        for no, line in enumerate(_code(path).splitlines(), 1):
            stmt = line.split("#", 1)[0]
            if re.search(r"\bis_cuda\s*\(", stmt) or re.search(r"from \.+kernels\b|import ternhd\.kernels", stmt):
                offenders.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    assert not offenders, "device branches outside ternhd/_device.py:\n" + "\n".join(offenders)


def test_kernels_do_not_import_the_front():
    offenders = []
    for path in sorted(KERNELS.rglob("*.py")):
        for no, line in enumerate(_code(path).splitlines(), 1):
            if re.match(r"\s*(from ternhd\b|import ternhd\b|from \.\.)", line):
                offenders.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    assert not offenders, "kernels/ imports from the front:\n" + "\n".join(offenders)


def test_only_the_bindings_include_pybind11():
    offenders = [str(p.relative_to(ROOT)) for p in sorted(CSRC.rglob("*.[ch]pp"))
                 if "pybind11" in p.read_text(encoding="utf-8") and (CSRC / "python") not in p.parents]
    assert not offenders, f"pybind11 outside csrc/python/: {offenders}"


def test_no_source_cites_outside_the_repository():
    offenders = []
    for folder in (PACKAGE, KERNELS, CSRC, ROOT / "tests", ROOT / "benchmarks"):
        for path in sorted(folder.rglob("*")):
            if path.suffix in (".py", ".cpp", ".hpp", ".h", ".sh") and path != Path(__file__).resolve():
                text = path.read_text(encoding="utf-8")
                # the offline data directory (../shared/data, from the CLI's working directory) is data, not a citation
                if "DESIGN.md" in text or re.search(r"\.\./shared(?!/data)", text):
                    offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"cite docs/FORMAT.md instead of ../shared: {offenders}"
