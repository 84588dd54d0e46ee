#!/usr/bin/env bash
# Builds the verify fuzz target with libFuzzer's coverage instrumentation on a stable Rust
# toolchain (the flags cargo-fuzz passes when no sanitizer is asked for) and runs it.
# With nightly and cargo-fuzz installed, `cargo fuzz run verify_bytes` does the same.
# Usage: fuzz/run-stable.sh [SECONDS] [extra libFuzzer options...]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
seconds=${1:-300}
shift || true
target=$(rustc -vV | awk '/^host:/ {print $2}')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions"
# Overflow checks come with -Cdebug-assertions (except where fuzz/Cargo.toml turns them off).
# --target keeps the instrumentation out of build scripts, which are not linked with libFuzzer.
(cd "$here" && cargo build --release --target "$target" --bin verify_bytes)
bin="${CARGO_TARGET_DIR:-$here/target}/$target/release/verify_bytes"
mkdir -p "$here/corpus/verify_bytes" "$here/artifacts/verify_bytes"
exec "$bin" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
  -artifact_prefix="$here/artifacts/verify_bytes/" "$@" "$here/corpus/verify_bytes"
