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
corpus="$here/corpus/$name"
mkdir -p "$corpus" "$here/artifacts/$name"
# Seeds the fuzzer cannot easily find on its own: a small FAT filesystem with a kernel Image
# header and extlinux.conf, and an MBR and a GPT disk image holding it (the first byte of each
# seed picks the file name in the target: 8 = disk.img).
if [ "$name" = verify_bytes ] && [ ! -e "$corpus/seed-mbr" ] && command -v mkfs.vfat >/dev/null && command -v mcopy >/dev/null \
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
seeds=()
if [ -d "$here/seeds/$name" ]; then seeds=("$here/seeds/$name"); fi
exec "$bin" -max_total_time="$seconds" -max_len=131072 -timeout=10 \
  -artifact_prefix="$here/artifacts/$name/" "$@" "$corpus" "${seeds[@]}"
