#!/usr/bin/env bash
# Runs the whole test suite: sets the machine up (idempotent), checks formatting and lints,
# runs every test with cargo-nextest (QEMU, Nix-build and serial tests in their groups), then
# every benchmark in quick mode (RVBUILD_SKIP_BENCHES=1 skips them). Arguments go to nextest.
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
status=0
cargo nextest run --profile "$profile" --no-fail-fast "$@" || status=$?

# Every [[bench]] of Cargo.toml in quick mode (RVBUILD_BENCH_QUICK=1: small sizes, one
# repetition), so that no benchmark rots. Built in the test profile to share the tests' build;
# a bench fails CI only by erring (non-zero exit), never by its timings.
if [ "${RVBUILD_SKIP_BENCHES:-}" != 1 ]; then
  benches=$(awk '/^\[\[bench\]\]/ { b = 1; next } b && /^name *=/ { gsub(/^name *= *"|".*$/, ""); print; b = 0 }' Cargo.toml)
  failed=""
  all_start=$SECONDS
  for b in $benches; do
    echo "[test] bench $b (quick mode)"
    start=$SECONDS
    if RVBUILD_BENCH_QUICK=1 cargo test --bench "$b"; then
      echo "[test] bench $b ran in $((SECONDS - start)) s"
    else
      echo "[test] bench $b FAILED (after $((SECONDS - start)) s)"
      failed="$failed $b"
    fi
  done
  echo "[test] quick benches: $(echo $benches | wc -w) in $((SECONDS - all_start)) s${failed:+, failed:$failed}"
  if [ -n "$failed" ]; then status=1; fi
fi
exit "$status"
