#!/usr/bin/env bash
# Runs the CPU benchmark suites whose raw pytest-benchmark JSON sits in this folder, one suite
# after the other (never two at once: they would share the cores), each with its log, the command
# and the load average before and after. Then: python docs/benchmarks/make_tables.py
#   bash docs/benchmarks/run.sh                 # all suites, 2 threads for every library
#   bash docs/benchmarks/run.sh similarity      # one of: similarity pack_algebra quantize_encode
#                                               #   ternhd_bench ternhd_bench_quick (the command, timed)
#                                               #   top10_repeats (ternhd bench --group top10, 3 runs)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=docs/benchmarks
export TERNHD_BENCH_THREADS=${TERNHD_BENCH_THREADS:-2}
declare -A SUITES=(
  [similarity]="benchmarks/bench_similarity.py"
  [pack_algebra]="benchmarks/bench_pack.py benchmarks/bench_algebra.py"
  [quantize_encode]="benchmarks/bench_quantize.py benchmarks/bench_encoder.py"
)
cli() {  # ternhd bench as a user runs it, under `time`, with its JSON
  local n=$1; shift
  {
    echo "# $(date -u '+%Y-%m-%d %H:%M UTC'): time ternhd bench $* --json $OUT/$n.json"
    echo "# load before: $(uptime)"
    { time ternhd bench "$@" --json "$OUT/$n.json"; } 2>&1
    echo "# load after: $(uptime)"
  } > "$OUT/$n.log" 2>&1
}
for name in "${@:-similarity pack_algebra quantize_encode ternhd_bench ternhd_bench_quick}"; do
  for n in $name; do
    case $n in
      ternhd_bench) cli "$n"; continue ;;
      ternhd_bench_quick) cli "$n" --quick; continue ;;
      top10_repeats)  # the top-10 comparison alone, three times in a row: how much the ratios move
        : > "$OUT/$n.log"
        for i in 1 2 3; do
          {
            echo "# run $i, $(date -u '+%Y-%m-%d %H:%M UTC'): ternhd bench --group top10 --repeat 9 --json $OUT/${n}_$i.json"
            echo "# load before: $(uptime)"
            ternhd bench --group top10 --repeat 9 --json "$OUT/${n}_$i.json" 2>&1
            echo "# load after: $(uptime)"
          } >> "$OUT/$n.log" 2>&1
        done
        continue ;;
    esac
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
