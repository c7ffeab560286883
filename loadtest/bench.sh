#!/usr/bin/env bash
# Runs every measurement behind BENCHMARKS.md on this machine and writes the results to
# loadtest/results/ (JSON, one file per scenario). Each server run is bounded; the whole script takes
# about five minutes. Usage: loadtest/bench.sh [seconds-per-scenario]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-8}"
out=loadtest/results
mkdir -p "$out"
# Two invocations: built together, cargo unifies their dependencies' features, and the kurz binary
# then measured 0.57-0.60 of the ceiling where one built alone measured 0.65-0.87 (BENCHMARKS.md).
cargo build --release --quiet -p kurz
cargo build --release --quiet -p kurz-loadtest
lt=target/release/kurz-loadtest
port=18180

# Kurz as it would face the internet: keys, limits and an operator blocklist of 10,000 domains in
# place. The limits are raised, not switched off, so their checks run: one generator address sends
# 5% unknown codes and creates at full speed, which the defaults would (rightly) refuse.
blocklist=$(mktemp)
for i in $(seq 10000); do echo "blocked-$i.example"; done >"$blocklist"
limits=(KURZ_LIMITS__UNKNOWN_CODES_PER_ADDRESS_PER_MINUTE=1000000000 KURZ_LIMITS__WRITES_PER_KEY_PER_SECOND=10000000
  KURZ_TARGETS__BLOCKLIST_FILE="$blocklist")

# Starts a fresh kurz with the given settings (environment assignments), waits until it answers.
start_kurz() {
  data=$(mktemp -d)
  env KURZ_HTTP__LISTEN=127.0.0.1:$port KURZ_STORAGE__DATA_DIR="$data" RUST_LOG=warn "${limits[@]}" "$@" target/release/kurz &
  kurz_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && return; sleep 0.1; done
  echo "kurz did not start" >&2; exit 1
}
stop_kurz() { kill "$kurz_pid"; wait "$kurz_pid" || true; rm -rf "$data"; }

run() { # name, kurz settings..., -- loadtest arguments...
  local name=$1; shift
  local settings=()
  while [ "$1" != "--" ]; do settings+=("$1"); shift; done; shift
  echo "== $name"
  start_kurz "${settings[@]}"
  "$lt" run --target "http://127.0.0.1:$port" --key-file "$data/admin.key" --duration "$seconds" \
    --output "$out/$name.json" "$@" 2>/dev/null | tail -3
  stop_kurz
}

run redirect-hot            KURZ_CLICKS__RECORD_REDIRECTS=true  -- --scenario redirect
run redirect-hot-no-clicks  KURZ_CLICKS__RECORD_REDIRECTS=false -- --scenario redirect
sat=$(python3 -c "import json; print(int(json.load(open('$out/redirect-hot.json'))['kurz']['rps'] / 2))")
run redirect-half-load      KURZ_CLICKS__RECORD_REDIRECTS=true  -- --scenario redirect --rate "$sat"
run redirect-cold           KURZ_CACHE__CAPACITY_BYTES=1           -- --scenario redirect --zipf-exponent 0 --unknown-share 0
run create                  KURZ_CLICKS__RECORD_REDIRECTS=true  -- --scenario create --connections 32 --links 1000
run mixed                   KURZ_CLICKS__RECORD_REDIRECTS=true  -- --scenario mixed

# Projector: each log is written once, then rebuilt by a fresh process (as after a restart), so the
# figure is the rebuild's own, not shared with the writing of the log.
rebuild() { # events, links, name
  local dir; dir=$(mktemp -d)
  echo "== projector rebuild ($1 events)"
  "$lt" projector --events "$1" --links "$2" --dir "$dir" >/dev/null
  "$lt" projector --links "$2" --dir "$dir" --reuse-log | tee "$out/$3.json"
  rm -rf "$dir"
}
rebuild 1000000 10000 projector-1e6
rebuild 10000000 100000 projector-1e7
# Lists at 10^6 links of one owner: a log of 10^6 creations (one a millisecond), folded by the
# projector into every read model, then pages and searches read from the directory it built.
echo "== directory (10^6 links of one owner)"
dir=$(mktemp -d)
"$lt" projector --events 1000000 --links 1000000 --dir "$dir" | tee "$out/projector-1e6-links.json"
"$lt" directory --dir "$dir" --links 1000000 | tee "$out/directory-1e6.json"
rm -rf "$dir"

# Import and export of 10^5 links through the client, against a running kurz (limits raised as above).
echo "== import and export (10^5 links)"
start_kurz
transfer=$(mktemp -d)
python3 - "$transfer/links.csv" <<'PY'
import csv, sys
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["code", "target_url", "tags", "metadata"])
    for i in range(100_000):
        w.writerow([f"imp{i:06d}", f"https://shop.example.com/products/{i}?utm_source=kurz",
                    f'["import","t{i % 10}"]', f'{{"row":"{i}"}}'])
PY
client=(target/release/kurz --url "http://127.0.0.1:$port" --key-file "$data/admin.key")
t0=$(date +%s.%N); "${client[@]}" import "$transfer/links.csv"; t1=$(date +%s.%N)
# Export once the directory shows every imported link.
for _ in $(seq 200); do
  n=$(curl -s "http://127.0.0.1:$port/v1/links?limit=1&q=imp099999" -H "Authorization: Bearer $(cat "$data/admin.key")" | grep -c imp099999 || true)
  [ "$n" -gt 0 ] && break; sleep 0.1
done
t2=$(date +%s.%N); "${client[@]}" export --format csv --output "$transfer/out.csv"; t3=$(date +%s.%N)
"${client[@]}" export --format ndjson --output "$transfer/out.ndjson"; t4=$(date +%s.%N)
python3 - "$t0" "$t1" "$t2" "$t3" "$t4" "$transfer" <<'PY' | tee "$out/import-export-1e5.json"
import json, os, sys
t0, t1, t2, t3, t4 = map(float, sys.argv[1:6])
d = sys.argv[6]
rows = sum(1 for _ in open(f"{d}/out.csv")) - 1
print(json.dumps({"links": 100000, "import_seconds": t1 - t0, "import_links_per_second": 100000 / (t1 - t0),
                  "export_csv_seconds": t3 - t2, "export_csv_links": rows, "export_csv_bytes": os.path.getsize(f"{d}/out.csv"),
                  "export_ndjson_seconds": t4 - t3, "export_ndjson_bytes": os.path.getsize(f"{d}/out.ndjson")}))
PY
stop_kurz
rm -rf "$transfer"

echo "== cache memory (10^6 links)"
"$lt" cache-memory --links 1000000 | tee "$out/cache-memory.json"
rm -f "$blocklist"
