#!/usr/bin/env bash
# The test command: everything Kurz's tests need, then every test in the workspace.
#
# The embedded default needs no server. (Kafka, Redis and ScyllaDB suites arrive with their adapters;
# this script will start the broker and find or start Redis for them.)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --locked "$@"
