#!/usr/bin/env bash
# Issue 14 targets A and B on the kernel2 branch, three rounds, each round the top-10 comparison
# then the asymmetric check, one after the other (never two at once), with the load average before
# and after each. Logs and raw JSON land in this folder.
#   bash docs/benchmarks/kernel2/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=docs/benchmarks/kernel2
: > "$OUT/top10.log"
: > "$OUT/asym.log"
for i in 1 2 3; do
  {
    echo "# run $i, $(date -u '+%Y-%m-%d %H:%M UTC'): ternhd bench --group top10 --repeat 9 --json $OUT/top10_$i.json"
    echo "# load before: $(uptime)"
    ternhd bench --group top10 --repeat 9 --json "$OUT/top10_$i.json" 2>&1
    echo "# load after: $(uptime)"
  } >> "$OUT/top10.log" 2>&1
  {
    echo "# run $i, $(date -u '+%Y-%m-%d %H:%M UTC'): python benchmarks/index_checks.py --asym-only --threads 2 --reps 5 --json $OUT/asym_$i.json"
    echo "# load before: $(uptime)"
    python benchmarks/index_checks.py --asym-only --threads 2 --reps 5 --json "$OUT/asym_$i.json" 2>&1
    echo "# load after: $(uptime)"
  } >> "$OUT/asym.log" 2>&1
done
