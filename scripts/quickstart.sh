#!/usr/bin/env bash
# Sets a fresh Debian 12 machine up, builds rvbuild, builds the default board (qemu-riscv64)
# and boots it in QEMU to the init marker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
cargo build --release --locked
./target/release/rvbuild board qemu-riscv64 "$@"
./target/release/rvbuild qemu qemu-riscv64 --no-build
