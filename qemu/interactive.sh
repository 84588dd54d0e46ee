#!/usr/bin/env bash
# Boots a built board in QEMU with its console on this terminal: the same command line as the
# boot test (`rvbuild qemu --print-command`), with QEMU's monitor multiplexed on stdio so that
# Ctrl-A X quits and Ctrl-A C reaches the monitor.
set -euo pipefail
board=${1:?usage: qemu/interactive.sh BOARD [OUT_DIR]}
out=${2:-result-$board}
rvbuild=${RVBUILD:-rvbuild}
cmd=$("$rvbuild" qemu "$board" --no-build --out "$out" --print-command)
# shellcheck disable=SC2086 # the printed command is split into words on purpose
set -- $cmd
args=()
skip=0
for a in "$@"; do
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  case "$a" in
    -serial|-monitor) skip=1 ;;       # replaced below
    *) args+=("$a") ;;
  esac
done
exec "${args[@]}" -serial mon:stdio
