#!/usr/bin/env bash
# C++ kernel tests without Python: configure the kernel library and tests/cpp with CMake
# (TERNHD_BUILD_TESTS=ON, no pybind11 needed), build, and run CTest. Every SIMD variant of every
# kernel family is checked against the scalar reference; paths this CPU lacks are skipped.
# Usage: bash .ci/ctest.sh [extra cmake -D options, e.g. -DTERNHD_SANITIZE=ON]
set -euo pipefail
cd "$(dirname "$0")/.."
# A fresh build folder per run unless TERNHD_CTEST_BUILD names one: a CMake cache left by another checkout
# at a shared path makes CMake refuse to configure.
if [[ -n "${TERNHD_CTEST_BUILD:-}" ]]; then
  BUILD="$TERNHD_CTEST_BUILD"
else
  BUILD="$(mktemp -d "${TMPDIR:-/tmp}/ternhd-ctest.XXXXXX")"
  trap 'rm -rf "$BUILD"' EXIT
fi
cmake -S . -B "$BUILD" -DTERNHD_BUILD_TESTS=ON -DTERNHD_BUILD_PYTHON=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$BUILD" -j "${TERNHD_BUILD_JOBS:-2}"
ctest --test-dir "$BUILD" --output-on-failure
