#!/usr/bin/env bash
# Runs the whole test suite: sets the machine up (idempotent), checks formatting and lints,
# then runs every test with cargo-nextest (QEMU, Nix-build and serial tests in their groups).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "[test] installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
echo "[test] cargo fmt --check"
cargo fmt --check
echo "[test] cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
# The library builds without the CLI's dependencies (the `cli` feature), warning-free.
echo "[test] cargo clippy --no-default-features --lib -- -D warnings"
cargo clippy --no-default-features --lib --quiet -- -D warnings
profile=default
if [ "${CI:-}" = "true" ]; then profile=ci; fi
echo "[test] cargo nextest run --profile $profile"
cargo nextest run --profile "$profile" --no-fail-fast "$@"
