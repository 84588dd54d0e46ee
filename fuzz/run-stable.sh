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
corpus="$here/corpus/verify_bytes"
mkdir -p "$corpus" "$here/artifacts/verify_bytes"
# Seeds the fuzzer cannot easily find on its own: a small FAT filesystem with a kernel Image
# header and extlinux.conf, and an MBR and a GPT disk image holding it (the first byte of each
# seed picks the file name in the target: 8 = disk.img).
if [ ! -e "$corpus/seed-mbr" ] && command -v mkfs.vfat >/dev/null && command -v mcopy >/dev/null \
    && command -v sfdisk >/dev/null; then
  seeds=$(mktemp -d)
  printf 'label x\n kernel /Image\n initrd /initrd\n' > "$seeds/extlinux.conf"
  head -c 64 /dev/zero > "$seeds/Image"
  printf 'RSC\005' | dd of="$seeds/Image" bs=1 seek=56 conv=notrunc status=none
  mkfs.vfat -C "$seeds/fat" 64 >/dev/null
  mmd -i "$seeds/fat" ::/extlinux
  mcopy -i "$seeds/fat" "$seeds/extlinux.conf" ::/extlinux/extlinux.conf
  mcopy -i "$seeds/fat" "$seeds/Image" ::/Image
  for label in dos gpt; do
    truncate -s 100K "$seeds/$label"
    printf 'label: %s\nstart=34, size=128, type=%s\n' "$label" \
      "$([ $label = dos ] && echo c || echo EBD0A0A2-B9E5-4433-87C0-68B6B72699C7)" | sfdisk --quiet "$seeds/$label"
    dd if="$seeds/fat" of="$seeds/$label" bs=512 seek=34 conv=notrunc status=none
  done
  { printf '\010'; cat "$seeds/dos"; } > "$corpus/seed-mbr"
  { printf '\010'; cat "$seeds/gpt"; } > "$corpus/seed-gpt"
  { printf '\010'; cat "$seeds/fat"; } > "$corpus/seed-fat"
  rm -rf "$seeds"
fi
exec "$bin" -max_total_time="$seconds" -max_len=131072 -timeout=10 \
  -artifact_prefix="$here/artifacts/verify_bytes/" "$@" "$here/corpus/verify_bytes"
