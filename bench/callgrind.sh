#!/bin/sh
# Instructions per /metrics render (dcgm set, 8 simulated GPUs), ours vs the straightforward
# prom-client way, counted by callgrind: repeatable on a shared machine where wall time is not.
# Steady state: the difference between N and 3N renders, so start-up and the JIT's first compiles
# (which dominate a count from 0) cancel out. Not part of npm run bench (valgrind runs node ~50×
# slower: several minutes). Needs valgrind.
set -e
cd "$(dirname "$0")/.."
N=${N:-500}
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null node bench/scrape-instructions.mjs "$1" "$2" 2>&1 | sed -n 's/.*Collected : //p'; }
for kind in ${KINDS:-ours ours-via-prom-client straightforward}; do
  a=$(ir "$kind" "$N"); b=$(ir "$kind" $((3 * N)))
  echo "$kind: $(( (b - a) / (2 * N) )) instructions per scrape (between N=$N and $((3 * N)) renders)"
done
