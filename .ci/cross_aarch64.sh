#!/usr/bin/env bash
# aarch64 (NEON) check on an x86-64 machine: cross-compile the kernel library and the C++ test
# executable with Debian's g++-aarch64-linux-gnu (toolchain file cmake/aarch64-linux-gnu.cmake) and
# run it under qemu-aarch64 (Debian qemu-user): every NEON variant against the scalar
# reference on odd widths, 0 and 1 rows (tests/cpp/test_kernels.cpp). Installs the two Debian
# packages when missing and apt-get is available (CI runs as root).
# Usage: bash .ci/cross_aarch64.sh [extra cmake -D options]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v aarch64-linux-gnu-g++ > /dev/null || ! command -v qemu-aarch64 > /dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++-aarch64-linux-gnu \
      qemu-user > /dev/null
  else
    echo "cross_aarch64.sh: needs g++-aarch64-linux-gnu and qemu-user (apt-get install)" >&2
    exit 1
  fi
fi
# A fresh build folder per run unless TERNHD_CROSS_BUILD names one: a CMake cache left by another checkout
# at a shared path makes CMake refuse to configure.
if [[ -n "${TERNHD_CROSS_BUILD:-}" ]]; then
  BUILD="$TERNHD_CROSS_BUILD"
else
  BUILD="$(mktemp -d "${TMPDIR:-/tmp}/ternhd-aarch64.XXXXXX")"
  trap 'rm -rf "$BUILD"' EXIT
fi
cmake -S . -B "$BUILD" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" -DTERNHD_BUILD_TESTS=ON \
  -DTERNHD_BUILD_PYTHON=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$BUILD" -j "${TERNHD_BUILD_JOBS:-2}"
# The test executable under qemu (CTest would run the same command through
# CMAKE_CROSSCOMPILING_EMULATOR); the NEON path must be the one selected and no family may skip it.
# One kernel thread: under emulation the 3-thread default's thread hand-offs made the run take 90 s
# (12 s with one thread); the threaded drivers are portable code, run natively by ctest.sh.
LOG="$BUILD/test_kernels.log"
TERNHD_TEST_THREADS=1 qemu-aarch64 -L /usr/aarch64-linux-gnu "$BUILD/test_kernels" > "$LOG" || {
  cat "$LOG"
  exit 1
}
grep -v '^  skip' "$LOG"
grep -q 'best SIMD path of this CPU = neon' "$LOG" || { echo "cross_aarch64.sh: neon not selected" >&2; exit 1; }
if grep -q 'skip .*/neon' "$LOG"; then
  echo "cross_aarch64.sh: a NEON variant was skipped" >&2
  exit 1
fi
