#!/usr/bin/env bash
# Runs every fuzz target in crates/fuzz for a bounded time each (default 30 s): coverage-guided
# libFuzzer on the stable toolchain, built with the instrumentation `cargo fuzz --sanitizer none`
# uses. Corpora are kept under the target directory so later runs start where earlier ones ended.
#
#   scripts/fuzz.sh [seconds per target] [target …]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
shift || true
host="$(rustc -vV | sed -n 's/^host: //p')"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=(target_url codes_and_names timestamps request_bodies avro_records spool_files stored_rows)
fi

# Instrumented for libFuzzer (an explicit --target keeps the flags off build scripts and macros).
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
cargo build --manifest-path crates/fuzz/Cargo.toml --release --bins --target "$host" --target-dir "$target_dir"

failed=0
for name in "${targets[@]}"; do
    corpus="$target_dir/corpus/$name"
    mkdir -p "$corpus" "$target_dir/artifacts/$name"
    log="$target_dir/$name.log"
    if "$target_dir/$host/release/$name" "$corpus" -max_total_time="$seconds" -max_len=8192 -rss_limit_mb=2048 \
        -artifact_prefix="$target_dir/artifacts/$name/" -print_final_stats=1 >"$log" 2>&1; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
        echo "fuzz $name: ${runs:-?} inputs in ${seconds} s, no crash"
    else
        failed=1
        echo "fuzz $name: FAILED (log $log, crashing input in $target_dir/artifacts/$name/)"
        tail -n 40 "$log"
    fi
done
exit "$failed"
