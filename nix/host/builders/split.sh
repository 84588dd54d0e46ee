# Split compile (sourced by builders that compile many C files, after `$jobs` is set): when
# rvbuild gives this very output helpers (a runtime directory outside the derivation, keyed by
# the hash of $out; see src/build/split.rs), puts a wrapper that calls distcc in front of
# the cross gcc on PATH and raises `jobs` to the pool's slots. distcc's SSH mode then runs the
# `connect` script below for each job, which
# connects to the Unix socket that rvbuild bridges to `distccd --inetd` on a helper over its own
# SSH connection. The compiler is the same everywhere and distcc preprocesses here, so the
# objects are the same; a job a helper fails is compiled here (distcc's fallback). Without the
# directory nothing changes.
split=/nix/var/rvbuild/split/$(basename "$out" | cut -d- -f1)
if [ -r "$split/hosts" ] && command -v distcc >/dev/null && command -v socat >/dev/null; then
  hosts="localhost/$jobs"; total=$jobs
  while read -r name slots; do
    case "$name" in h[0-9]|h[0-9][0-9]) ;; *) continue ;; esac
    case "$slots" in [1-9]|[1-9][0-9]) ;; *) continue ;; esac
    [ -S "$split/$name.sock" ] || continue
    hosts="$hosts @$name/$slots"; total=$((total + slots))
  done < "$split/hosts"
  mkdir -p "$TMPDIR/distcc"
  {
    echo '#!/bin/sh'
    echo '# Called as: connect [-l USER] HOST distccd ...; the remote command is rvbuild'"'"'s to choose.'
    echo 'while [ "$1" = -l ]; do shift 2; done'
    echo 'case "$1" in h[0-9]|h[0-9][0-9]) ;; *) exit 1 ;; esac'
    echo "exec socat - \"UNIX-CONNECT:$split/\$1.sock\""
  } > "$TMPDIR/distcc/connect"
  chmod +x "$TMPDIR/distcc/connect"
  export DISTCC_HOSTS="$hosts" DISTCC_SSH="$TMPDIR/distcc/connect" DISTCC_DIR="$TMPDIR/distcc"
  # A slow helper must not stall the build: a job gets 60 s, then it is compiled here.
  export DISTCC_IO_TIMEOUT=60
  # A wrapper named like the compiler, first on PATH: CC and every command line the build
  # records stay as they are. `-S` runs here: its output (the kernel's *-offsets.s, kept in the
  # dev tree) carries the source lines that -fverbose-asm reads from the .c file, and a remote
  # compile of preprocessed input has no .c file, so its .s would differ.
  mkdir -p "$TMPDIR/distcc/bin"
  {
    echo '#!/bin/sh'
    echo "PATH='$PATH'; export PATH"
    echo 'for a in "$@"; do [ "$a" = -S ] && exec '"${crossPrefix}gcc"' "$@"; done'
    echo 'exec distcc '"${crossPrefix}gcc"' "$@"'
  } > "$TMPDIR/distcc/bin/${crossPrefix}gcc"
  chmod +x "$TMPDIR/distcc/bin/${crossPrefix}gcc"
  export PATH="$TMPDIR/distcc/bin:$PATH"
  jobs=$total
  log "compiling with distcc: $hosts"
fi
