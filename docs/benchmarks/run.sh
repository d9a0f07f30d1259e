#!/usr/bin/env bash
# Runs the CPU benchmark suites whose raw pytest-benchmark JSON sits in this folder, one suite
# after the other (never two at once: they would share the cores), each with its log, the command
# and the load average before and after. Then: python docs/benchmarks/make_tables.py
#   bash docs/benchmarks/run.sh                 # all suites, 2 threads for every library
#   bash docs/benchmarks/run.sh similarity      # one of: similarity pack_algebra quantize_encode
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=docs/benchmarks
export TERNHD_BENCH_THREADS=${TERNHD_BENCH_THREADS:-2}
declare -A SUITES=(
  [similarity]="benchmarks/bench_similarity.py"
  [pack_algebra]="benchmarks/bench_pack.py benchmarks/bench_algebra.py"
  [quantize_encode]="benchmarks/bench_quantize.py benchmarks/bench_encoder.py"
)
for name in "${@:-similarity pack_algebra quantize_encode}"; do
  for n in $name; do
    files=${SUITES[$n]}
    {
      echo "# $(date -u '+%Y-%m-%d %H:%M UTC'): TERNHD_BENCH_THREADS=$TERNHD_BENCH_THREADS python -m pytest $files -p no:cacheprovider -rs --benchmark-json $OUT/$n.json"
      echo "# load before: $(uptime)"
    } > "$OUT/$n.log"
    # shellcheck disable=SC2086
    python -m pytest $files -p no:cacheprovider -rs --benchmark-json "$OUT/$n.json" >> "$OUT/$n.log" 2>&1 || true
    echo "# load after: $(uptime)" >> "$OUT/$n.log"
  done
done
