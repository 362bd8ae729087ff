#!/usr/bin/env bash
# Adds Debian's contrib and non-free components (where NVIDIA's packages are) for the same archive
# and suites as the machine's existing Debian entry. Idempotent.
set -euo pipefail
TARGET=/etc/apt/sources.list.d/gpu-telemetry-nonfree.sources
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if [ -f "$TARGET" ]; then
  echo "$TARGET already present"
  exit 0
fi

uris="" suites="" signed=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  # deb822: the first stanza whose URIs are not the security archive.
  read -r uris suites signed < <(awk '
    BEGIN { RS=""; FS="\n" }
    {
      u=""; s=""; k="";
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^URIs:/) { u = $i; sub(/^URIs:[ \t]*/, "", u) }
        if ($i ~ /^Suites:/) { s = $i; sub(/^Suites:[ \t]*/, "", s) }
        if ($i ~ /^Signed-By:/) { k = $i; sub(/^Signed-By:[ \t]*/, "", k) }
      }
      if (u != "" && u !~ /security/) { gsub(/ /, ",", s); print u, s, k; exit }
    }' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$uris" ] && [ -f /etc/apt/sources.list ]; then
  # one-line format: deb URI SUITE COMPONENTS...
  line=$(grep -E '^deb ' /etc/apt/sources.list | grep -v security | head -n1 || true)
  if [ -n "$line" ]; then
    uris=$(echo "$line" | awk '{print $2}')
    suites=$(grep -E "^deb ${uris} " /etc/apt/sources.list | awk '{print $3}' | sort -u | paste -sd, -)
  fi
fi
if [ -z "$uris" ]; then
  echo "no Debian sources entry found to copy; add contrib non-free by hand" >&2
  exit 1
fi
{
  echo "Types: deb"
  echo "URIs: ${uris}"
  echo "Suites: ${suites//,/ }"
  echo "Components: contrib non-free"
  if [ -n "$signed" ]; then echo "Signed-By: ${signed}"; fi
} | $SUDO tee "$TARGET" >/dev/null
echo "wrote $TARGET:"
cat "$TARGET"
