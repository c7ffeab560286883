#!/usr/bin/env bash
# The web UI's tests in a real browser: Debian's chromium, driven by playwright-core (npm; no
# browser download), with axe-core for accessibility. Starts a Kurz of its own (the debug build).
# Screenshots of the main pages go to tests/browser/screenshots (KURZ_SCREENSHOTS to change).
set -euo pipefail
cd "$(dirname "$0")/.."

chromium="${KURZ_CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]] || ! command -v node >/dev/null; then
    if [[ "${KURZ_TEST_REQUIRE_SERVICES:-}" == 1 ]]; then
        echo "browser.sh: no chromium ($chromium) or node; install them (apt-get install chromium nodejs npm)" >&2
        exit 1
    fi
    echo "browser.sh: SKIPPED the browser tests: no chromium ($chromium) or node"
    exit 0
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --quiet --locked -p kurz
(cd tests/browser && npm ci --silent --no-audit --no-fund)
KURZ_CHROMIUM="$chromium" KURZ_BIN="$CARGO_TARGET_DIR/debug/kurz" node tests/browser/ui.test.mjs
