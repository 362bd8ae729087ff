#!/usr/bin/env bash
# npm run test:asan — the native-touching tests against an AddressSanitizer + UndefinedBehavior-
# Sanitizer build of the addon and the simulator.
#
# The sanitized build goes to its own directory (.asan/build, from the same binding.gyp and
# sources through symlinks), so the normal build/ is never touched. The tests load it through
# node-gyp-build's GPU_TELEMETRY_PREBUILD override, GPU_TELEMETRY_SIM_LIB_DIR and
# GPU_TELEMETRY_INJECT_LIB_DIR (the injection library the fake CUDA processes load), with the ASan
# and UBSan runtimes preloaded into Node (Node itself is not built with them).
#
# Fails when a test fails, or when any sanitizer wrote a report (every process of the run, the
# vitest workers and the CLI processes they spawn, logs to .asan/reports/). UBSan findings are
# fatal (-fno-sanitize-recover=all). Leak detection is off: Node itself is not leak-clean (our
# leaks are checked with valgrind, scripts/leak-check.mjs --valgrind).
#
# Usage: scripts/test-asan.sh [vitest file filters…]   (default: every native-touching test file)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STAGE=$ROOT/.asan
REPORTS=$STAGE/reports

if [ -d /usr/include/node ] && [ -z "${npm_config_nodedir:-}" ]; then
  export npm_config_nodedir=/usr
fi

# npm's own node-gyp (what `npm ci` builds with), unless the environment names one.
NODE_GYP=${npm_config_node_gyp:-$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js}
[ -f "$NODE_GYP" ] || { echo "node-gyp not found at $NODE_GYP (set npm_config_node_gyp)" >&2; exit 1; }

mkdir -p "$STAGE"
ln -sfn ../binding.gyp "$STAGE/binding.gyp"
ln -sfn ../native "$STAGE/native"
# node-gyp-build reads the package name from here (GPU_TELEMETRY_PREBUILD names a package dir).
printf '{ "name": "gpu-telemetry-asan", "private": true }\n' >"$STAGE/package.json"

# float-cast-overflow is not part of GCC's -fsanitize=undefined: ask for it too.
SAN="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer"
echo "== building the sanitized addon and simulator in .asan/build"
(
  cd "$STAGE"
  CXXFLAGS="$SAN -g -O1" CFLAGS="$SAN -g -O1" LDFLAGS="-fsanitize=address,undefined" \
    nice -n 10 node "$ROOT/scripts/with-node-headers.mjs" node "$NODE_GYP" rebuild --loglevel=warn
)

ASAN_LIB=$(g++ -print-file-name=libasan.so)
UBSAN_LIB=$(g++ -print-file-name=libubsan.so)
for lib in "$ASAN_LIB" "$UBSAN_LIB"; do
  [ -f "$lib" ] || { echo "sanitizer runtime not found: $lib (install g++'s libasan/libubsan)" >&2; exit 1; }
done

# dist/ is what the CLI tests run.
npx tsc -p tsconfig.build.json

# Native-touching test files (no Prometheus / promtool: those are Go programs, and they would get
# the preloaded runtimes too).
FILES=("$@")
if [ ${#FILES[@]} -eq 0 ]; then
  FILES=(test/lifecycle.test.ts test/options.test.ts test/simulator-roundtrip.test.ts test/simulator-faults.test.ts
    test/unified-memory.test.ts test/xid.test.ts test/server.test.ts test/prometheus.test.ts test/otel.test.ts
    test/cli.test.ts test/real-nvml.test.ts test/serve-faults.test.ts test/serve-dcgm.test.ts
    test/service-capture-faults.test.ts test/hostile-input.test.ts test/gpm.test.ts test/mig.test.ts test/process-util.test.ts)
  for f in test/capture*.test.ts test/dcgm*.test.ts test/inject*.test.ts; do [ -f "$f" ] && FILES+=("$f"); done
fi

rm -rf "$REPORTS"
mkdir -p "$REPORTS"
echo "== running ${#FILES[@]} test file(s) with ASan + UBSan preloaded"
set +e
env \
  LD_PRELOAD="$ASAN_LIB:$UBSAN_LIB" \
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1:log_path=$REPORTS/asan" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$REPORTS/ubsan" \
  GPU_TELEMETRY_PREBUILD="$STAGE" \
  GPU_TELEMETRY_SIM_LIB_DIR="$STAGE/build/Release" \
  GPU_TELEMETRY_INJECT_LIB_DIR="$STAGE/build/Release" \
  GPU_TELEMETRY_SANITIZED=1 \
  npx vitest run "${FILES[@]}"
status=$?
set -e

shopt -s nullglob
reports=("$REPORTS"/*)
if [ ${#reports[@]} -gt 0 ]; then
  echo "== sanitizer reports (${#reports[@]}):" >&2
  for r in "${reports[@]}"; do
    echo "---- $r" >&2
    head -60 "$r" >&2
  done
  exit 1
fi
if [ $status -ne 0 ]; then
  echo "== tests failed under the sanitizers (exit $status)" >&2
  exit $status
fi
echo "== ASan + UBSan: clean (${#FILES[@]} test files, no sanitizer reports)"
