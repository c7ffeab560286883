#!/usr/bin/env bash
# The API contract: starts Kurz on a fresh data directory and runs schemathesis (PyPI) against its
# /openapi.json with the admin key: every operation, every check. Fails on a server error or an
# answer the document does not describe. Usage: scripts/contract.sh [max examples per operation]
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-200}"

if ! command -v schemathesis >/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
cargo build --quiet --locked --bin kurz
binary="${CARGO_TARGET_DIR:-target}/debug/kurz"

data="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# The limits are raised: the fuzzer sends thousands of requests from one address with one key.
KURZ_STORAGE__DATA_DIR="$data" KURZ_HTTP__LISTEN="127.0.0.1:$port" \
    KURZ_LIMITS__GLOBAL_PER_SECOND=1000000 KURZ_LIMITS__WRITES_PER_KEY_PER_SECOND=1000000 \
    KURZ_LIMITS__FAILED_KEYS_PER_ADDRESS_PER_MINUTE=1000000 KURZ_LIMITS__UNKNOWN_CODES_PER_ADDRESS_PER_MINUTE=1000000 \
    "$binary" >"$data/kurz.log" 2>&1 &
kurz=$!
trap 'kill $kurz 2>/dev/null; wait $kurz 2>/dev/null; rm -rf "$data"' EXIT

for _ in $(seq 300); do
    if [ -s "$data/admin.key" ] && curl -sf "http://127.0.0.1:$port/ready" >/dev/null; then break; fi
    kill -0 $kurz 2>/dev/null || { cat "$data/kurz.log"; exit 1; }
    sleep 0.1
done
curl -sf "http://127.0.0.1:$port/ready" >/dev/null || { echo "kurz did not get ready"; cat "$data/kurz.log"; exit 1; }

schemathesis --config-file tests/contract/schemathesis.toml run "http://127.0.0.1:$port/openapi.json" \
    --header "Authorization: Bearer $(cat "$data/admin.key")" \
    --max-examples "$examples" --no-color
# A panic would have been answered as a dropped connection (a check failure above) and logged.
if grep -q "panicked" "$data/kurz.log"; then
    echo "kurz panicked during the contract run:"; grep -A5 "panicked" "$data/kurz.log"; exit 1
fi
