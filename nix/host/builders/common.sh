# Shared shell helpers for the host provider's builders (sourced, bash).
set -euo pipefail
export PATH="${hostPath:-/usr/bin:/bin}"
export LC_ALL=C
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1}"
export KBUILD_BUILD_TIMESTAMP="${KBUILD_BUILD_TIMESTAMP:-Thu Jan  1 00:00:01 UTC 1970}"
export KBUILD_BUILD_USER=rvbuild KBUILD_BUILD_HOST=rvbuild
jobs="${NIX_BUILD_CORES:-1}"
[ "$jobs" -gt 0 ] 2>/dev/null || jobs=$(nproc)
log() { printf 'rvbuild: %s\n' "$*" >&2; }
