#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer into build-fuzz/, then fuzzes.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]  fuzz each target (default: all) for SECONDS (default 300)
#                                          in turn, from its seed corpus and what earlier runs found
#   scripts/fuzz.sh --test                 the bounded run of the test command: every target for
#                                          CLUSTERGOV_FUZZ_SECONDS (10) through CTest, two at a time
#   scripts/fuzz.sh --build                build only
#
# A crash, leak, timeout or out-of-memory stops with a non-zero status; the input is saved in
# <fuzz build dir>/tests/fuzz/findings/<target>/artifacts/ (in the repository, ignored by git).
# Environment: FUZZ_BUILD_DIR (default build-fuzz),
# JOBS (build jobs, default nproc), FUZZ_JOBS (parallel CTest fuzzers for --test, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${JOBS:-$(nproc)}

mode="fuzz"
case "${1:-}" in
  --test) mode="test"; shift ;;
  --build) mode="build"; shift ;;
  -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
esac

if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCLUSTERGOV_FUZZ=ON \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
fi
cmake --build "$BUILD_DIR" -j "$JOBS"

case "$mode" in
  build) exit 0 ;;
  test) exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${FUZZ_JOBS:-2}" ;;
esac

seconds=300
if (($# > 0)) && [[ $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
if ((${#targets[@]} == 0)); then
  for dir in tests/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi
for t in "${targets[@]}"; do
  if [[ ! -x "$BUILD_DIR/tests/fuzz/$t" ]]; then
    echo "fuzz.sh: no fuzz target $t (targets: $(cd tests/fuzz/corpus && echo *))" >&2
    exit 2
  fi
  echo "fuzz.sh: $t for $seconds s"
  tests/fuzz/run.sh "$BUILD_DIR/tests/fuzz/$t" "$seconds" "tests/fuzz/corpus/$t" "$BUILD_DIR/tests/fuzz/findings/$t"
done
echo "fuzz.sh: ${#targets[@]} targets fuzzed for $seconds s each, no crash"
