#!/usr/bin/env bash
# The C++ core built with clang (not only GCC): configure the kernel library and tests/cpp with
# clang++, build and
# run CTest. Installs Debian's clang when it is missing and apt-get is available (CI runs as root).
# Usage: bash .ci/clang.sh [extra cmake -D options]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang++ > /dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang > /dev/null
  else
    echo "clang.sh: clang++ not found (apt-get install clang)" >&2
    exit 1
  fi
fi
clang++ --version | head -1
# A fresh build folder per run unless TERNHD_CLANG_BUILD names one: a CMake cache left by another checkout
# at a shared path makes CMake refuse to configure.
if [[ -n "${TERNHD_CLANG_BUILD:-}" ]]; then
  BUILD="$TERNHD_CLANG_BUILD"
else
  BUILD="$(mktemp -d "${TMPDIR:-/tmp}/ternhd-clang.XXXXXX")"
  trap 'rm -rf "$BUILD"' EXIT
fi
cmake -S . -B "$BUILD" -DCMAKE_CXX_COMPILER=clang++ -DTERNHD_BUILD_TESTS=ON -DTERNHD_BUILD_PYTHON=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$BUILD" -j "${TERNHD_BUILD_JOBS:-2}"
ctest --test-dir "$BUILD" --output-on-failure
# The portable (non-GCC, non-clang) branches of csrc/bits.hpp, as MSVC and other compilers take them.
for std in c++17 c++20; do
  clang++ -std=$std -O2 -U__GNUC__ -U__clang__ -Wno-builtin-macro-redefined -Icsrc tests/cpp/test_bits_fallback.cpp \
    -o "$BUILD/test_bits_fallback"
  "$BUILD/test_bits_fallback"
done
