#!/usr/bin/env bash
# Runs one fuzz target for a bounded time:
#   run.sh <fuzzer binary> <seconds> <seed corpus dir> <work dir> [more libFuzzer flags...]
# New inputs go to <work dir>/corpus (kept between runs), a crashing input to <work dir>/artifacts/;
# the exit status is the fuzzer's (non-zero on a crash, a leak, an input taking over 25 s or running
# out of memory).
set -euo pipefail
fuzzer=$1 seconds=$2 seeds=$3 work=$4
shift 4
mkdir -p "$work/corpus" "$work/artifacts"
status=0
"$fuzzer" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" "$seeds" || status=$?
if ((status != 0)); then
  echo "$(basename "$fuzzer"): failed (exit $status); reproduce with: $fuzzer <artifact> (in $work/artifacts/)" >&2
fi
exit "$status"
