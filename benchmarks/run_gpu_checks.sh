#!/usr/bin/env bash
# GPU checks of the Triton kernels, for a lent GPU machine (no network): build + install ternhd,
# run the Triton tests on the real GPU, run the benchmark (with first-use launch tuning of the
# target kernels). Bounded to finish in under 7.5 minutes (GPU_CHECKS_BUDGET seconds).
#
#   bash benchmarks/run_gpu_checks.sh            # from the repository root; results in $OUT
#
# Needs python3 with torch (CUDA), triton, numpy, pybind11, scikit-build-core, cmake, ninja, pytest.
# Writes to $OUT (default /tmp/ternhd-gpu): install.log, tests.log, junit.xml, bench.log,
# gpu_results.md (the benchmark table, written row by row), summary.txt.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/ternhd-gpu}"
export OUT
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
T0=$(date +%s)
TOTAL=${GPU_CHECKS_BUDGET:-450}   # seconds for everything
elapsed() { echo $(( $(date +%s) - T0 )); }
left() { echo $(( TOTAL - $(date +%s) + T0 )); }
log() { echo "[$(elapsed)s] $*" | tee -a "$OUT/summary.txt"; }
: > "$OUT/summary.txt"

log "machine: $(nvidia-smi -L 2>/dev/null | head -1)"
"$PY" - <<'PYEOF' 2>&1 | tee -a "$OUT/summary.txt"
import numpy, torch, triton
print(f"python ok: numpy {numpy.__version__}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"triton {triton.__version__}, device {torch.cuda.get_device_name() if torch.cuda.is_available() else 'NONE'}")
PYEOF

# 1. build + install (fresh build directory: never reuse a CMake cache from another machine)
log "install"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-16}
if ! timeout 170 "$PY" -m pip install --no-build-isolation --no-deps --no-index \
      --config-settings=build-dir=/tmp/ternhd-build . > "$OUT/install.log" 2>&1; then
  tail -40 "$OUT/install.log"
  log "install FAILED (see install.log)"
  exit 1
fi
log "installed: $(cd /tmp && "$PY" -c 'import ternhd, ternhd.kernels as k; print(ternhd.__version__, k.__file__)')"

# 2. the Triton tests on the GPU (compiled kernels, both popcount / decode forms)
log "tests"
unset TRITON_INTERPRET
TEST_BUDGET=$(( $(left) - 200 ))
[ "$TEST_BUDGET" -gt 170 ] && TEST_BUDGET=170
# default launch configs in the tests (tuning is checked by the benchmark against the defaults)
TERNHD_AUTOTUNE=0 timeout "$TEST_BUDGET" "$PY" -m pytest -v --tb=short --durations=10 -p no:cacheprovider -o addopts="" \
    --junitxml="$OUT/junit.xml" tests/test_triton_*.py > "$OUT/tests.log" 2>&1
rc=$?
tail -25 "$OUT/tests.log"
log "tests exit code $rc ($( [ $rc = 124 ] && echo 'TIMED OUT' || grep -E '(passed|failed|error)' "$OUT/tests.log" | tail -1 ))"

# 3. the benchmark (rows land in $OUT/gpu_results.md as they are measured)
BENCH_LEFT=$(( $(left) - 5 ))
if [ "$BENCH_LEFT" -lt 30 ]; then
  log "bench skipped: only ${BENCH_LEFT}s left"
  exit 0
fi
log "bench (${BENCH_LEFT}s)"
timeout "$BENCH_LEFT" "$PY" benchmarks/gpu_bench.py --sweep --budget $(( BENCH_LEFT - 60 )) > "$OUT/bench.log" 2>&1
brc=$?
log "bench exit code $brc$( [ $brc = 124 ] && echo ' (TIMED OUT: the table holds the rows measured so far)')"
cat "$OUT/gpu_results.md" 2>/dev/null || tail -30 "$OUT/bench.log"
log "done"
