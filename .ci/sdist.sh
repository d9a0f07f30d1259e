#!/usr/bin/env bash
# The sdist builds and installs from itself: build it (python -m build --sdist), build a wheel from
# the unpacked sdist alone (pip wheel), install that wheel into a fresh virtual environment and
# run a pack/dot smoke check and tests/test_backend.py against it.
# Usage: bash .ci/sdist.sh [OUT_DIR]   (installs `build` with pip)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${TMPDIR:-/tmp}/ternhd-sdist}"
rm -rf "$OUT" && mkdir -p "$OUT/dist" "$OUT/wheel"
python -m pip install -q build
python -m build -q --sdist -o "$OUT/dist" . > /dev/null
sdist="$(ls "$OUT"/dist/ternhd-*.tar.gz)"
echo "sdist: $sdist ($(tar tzf "$sdist" | wc -l) files)"
# Builds from the sdist only (a copy outside the checkout, so no file of the checkout leaks in).
tar xzf "$sdist" -C "$OUT"
python -m pip wheel -q --no-deps -w "$OUT/wheel" "$(ls -d "$OUT"/ternhd-*/)"
# A fresh virtual environment (no system packages) with the wheel, numpy and pytest only.
python -m venv "$OUT/venv"
"$OUT/venv/bin/python" -m pip install -q "$(ls "$OUT"/wheel/ternhd-*.whl)" "pytest>=7" "pytest-timeout>=2" "hypothesis>=6"
cd "$OUT"
venv/bin/python -c "import numpy as np, ternhd; print(ternhd.__file__, ternhd.backend_info()['simd']); \
assert '/venv/' in ternhd.__file__; t = np.array([[1, 0, -1, 1, 1]], np.int8); p = ternhd.pack_ternary(t); \
assert (ternhd.unpack_ternary(p, 5) == t).all() and ternhd.dot(p, p)[0, 0] == 4"
venv/bin/python -m pytest "$OLDPWD/tests/test_backend.py" -q -p no:cacheprovider
