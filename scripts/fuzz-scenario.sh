#!/usr/bin/env bash
# libFuzzer over the simulator's scenario loader (native/sim/json.cc + scenario.cc), with ASan and
# UBSan. Not part of CI (the same code is fuzzed through the `simulate` option by fast-check in
# test/hostile-input.test.ts, under the sanitizers in npm run test:asan); run it when touching the
# parser. Needs clang 14 and libclang-rt-14-dev (Debian): apt-get install clang-14 libclang-rt-14-dev
#
# Usage: scripts/fuzz-scenario.sh [seconds (default 60)] [extra libFuzzer flags…]
# The corpus starts from scenarios/*.json and is kept in .fuzz/corpus between runs; a crashing
# input is written to .fuzz/ and makes the script exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}
shift || true
CLANG=${CLANG:-$(command -v clang++-14 || command -v clang++ || true)}
[ -n "$CLANG" ] || { echo "clang++ not found: apt-get install clang-14 libclang-rt-14-dev" >&2; exit 1; }
mkdir -p .fuzz/corpus
cp -n scenarios/*.json .fuzz/corpus/ 2>/dev/null || true
"$CLANG" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined,float-cast-overflow -fno-sanitize-recover=all \
  fuzz/scenario_fuzz.cc native/sim/json.cc native/sim/scenario.cc -o .fuzz/scenario_fuzz
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
  .fuzz/scenario_fuzz -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -timeout=5 -rss_limit_mb=2048 \
  -artifact_prefix=.fuzz/ "$@" .fuzz/corpus
