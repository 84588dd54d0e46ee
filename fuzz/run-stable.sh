#!/usr/bin/env bash
# Builds a fuzz target (default verify_bytes; the list is the [[bin]] entries of
# fuzz/Cargo.toml) with libFuzzer's coverage instrumentation on a stable Rust toolchain (the
# flags cargo-fuzz passes when no sanitizer is asked for) and runs it. Checked-in seeds
# (fuzz/seeds/TARGET) start the corpus. With nightly and cargo-fuzz installed,
# `cargo fuzz run TARGET` does the same.
# Usage: fuzz/run-stable.sh [TARGET] [SECONDS] [extra libFuzzer options...]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
name=verify_bytes
if [ $# -gt 0 ] && [[ "$1" != [0-9]* ]] && [[ "$1" != -* ]]; then
  name=$1
  shift
fi
seconds=${1:-300}
shift || true
target=$(rustc -vV | awk '/^host:/ {print $2}')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions"
# Overflow checks come with -Cdebug-assertions (except where fuzz/Cargo.toml turns them off).
# --target keeps the instrumentation out of build scripts, which are not linked with libFuzzer.
(cd "$here" && cargo build --release --target "$target" --bin "$name")
bin="${CARGO_TARGET_DIR:-$here/target}/$target/release/$name"
mkdir -p "$here/corpus/$name" "$here/artifacts/$name"
seeds=()
if [ -d "$here/seeds/$name" ]; then seeds=("$here/seeds/$name"); fi
exec "$bin" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
  -artifact_prefix="$here/artifacts/$name/" "$@" "$here/corpus/$name" "${seeds[@]}"
