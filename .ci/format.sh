#!/usr/bin/env bash
# clang-format check of the C++ sources (style in .clang-format). Skips with a note when
# clang-format is not installed (pip install clang-format provides it).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format > /dev/null; then
  echo "format.sh: clang-format not found; skipped (pip install clang-format)"
  exit 0
fi
clang-format --version
find csrc tests/cpp -name '*.cpp' -o -name '*.hpp' | sort | xargs clang-format --dry-run --Werror
