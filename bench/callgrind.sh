#!/bin/sh
# Instructions per /metrics render (dcgm set, 8 simulated GPUs), ours vs the straightforward
# prom-client way, counted by callgrind: repeatable on a shared machine where wall time is not.
# Not part of npm run bench (valgrind runs node ~50× slower: about 2 minutes). Needs valgrind.
set -e
cd "$(dirname "$0")/.."
N=${N:-200}
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null node bench/scrape-instructions.mjs "$1" "$2" 2>&1 | sed -n 's/.*Collected : //p'; }
for kind in ours ours-via-prom-client straightforward; do
  a=$(ir "$kind" 0); b=$(ir "$kind" "$N")
  echo "$kind: $(( (b - a) / N )) instructions per scrape (N=$N; $a at 0, $b at $N)"
done
