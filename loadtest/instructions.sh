#!/usr/bin/env bash
# Instructions per hot redirect, repeatable on a noisy machine: the release server under callgrind
# serves 2×10^4 and then 4×10^4 redirects (8 connections, 1,000 links, no unknown codes, no warm-up)
# in two fresh runs; the difference over 2×10^4 is its own cost per redirect (start-up and seeding
# cancel out). Usage: loadtest/instructions.sh [clicks on: true|false] [hot|cold]; cold keeps a cache
# of one entry, so every redirect reads the store.
set -euo pipefail
cd "$(dirname "$0")/.."
clicks="${1:-false}"
cache_bytes=268435456
[ "${2:-hot}" = cold ] && cache_bytes=1
# KURZ_BIN measures another build of the server (the load generator stays this checkout's).
if [ -z "${KURZ_BIN:-}" ]; then cargo build --release --quiet -p kurz -p kurz-loadtest; fi
kurz="${KURZ_BIN:-target/release/kurz}"
port=18190

total() { # redirects → total instructions of the server
  local data; data=$(mktemp -d)
  env KURZ_HTTP__LISTEN=127.0.0.1:$port KURZ_STORAGE__DATA_DIR="$data" RUST_LOG=warn \
    KURZ_LIMITS__WRITES_PER_KEY_PER_SECOND=10000000 KURZ_CLICKS__RECORD_REDIRECTS="$clicks" KURZ_CACHE__CAPACITY_BYTES="$cache_bytes" \
    valgrind --tool=callgrind --callgrind-out-file="$data/callgrind.out" "$kurz" 2>/dev/null &
  local pid=$!
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  target/release/kurz-loadtest run --target "http://127.0.0.1:$port" --key-file "$data/admin.key" \
    --scenario redirect --links 1000 --connections 8 --unknown-share 0 --warmup 0 --duration 600 \
    --requests "$1" --no-ceiling >/dev/null 2>&1
  kill -TERM "$pid"; wait "$pid" || true
  grep -E "^(summary|totals):" "$data/callgrind.out" | head -1 | awk '{print $2}'
  rm -rf "$data"
}

low=$(total 20000)
high=$(total 40000)
echo "{\"clicks\": $clicks, \"cache\": \"${2:-hot}\", \"instructions_per_redirect\": $(( (high - low) / 20000 )), \"total_20k\": $low, \"total_40k\": $high}"
