# Split compile (sourced by builders that compile many C files, after `$jobs` is set; they call
# `split_begin` in the source tree right before the main make): when
# rvbuild gives this very output helpers (a runtime directory outside the derivation, keyed by
# the hash of $out; see src/build/split.rs), sets `jobs` to the pool's slots, and
# `split_begin` puts a wrapper that calls distcc in front of the cross gcc on PATH. distcc's
# SSH mode then runs the `connect` script below for each job, which connects to the Unix
# socket that rvbuild bridges to `distccd --inetd` on a helper over its own SSH connection.
# The compiler is the same everywhere and every header comes from here, so the objects are
# the same; a job a helper fails is compiled here (distcc's fallback). Without the directory
# nothing changes.
#
# The `hosts` file: one `hN SLOTS` line per helper socket, and optionally `local SLOTS`, the
# compile slots of this host (default `$jobs`; 0: it only preprocesses and links). Helpers come
# first in DISTCC_HOSTS because distcc fills hosts in list order: this host, which already
# prepares every job, compiles only when every helper slot is busy.
#
# Pump mode: when distcc's include server runs here (distcc-pump, python3-lzo; see
# pump-server.py), `split_begin` starts it and the helpers preprocess too: this host only
# finds each job's headers and sends them (compressed once), which at 0.5 CPU a host was the
# bottleneck of plain mode. distcc compiles a job whose include analysis fails here, as in
# plain mode. The include server assumes files do not change during the build; the headers
# the build generates do, so a change under the generated include directories resets its
# caches.
split_begin() { :; }
split_stop() { :; }
split=/nix/var/rvbuild/split/$(basename "$out" | cut -d- -f1)
if [ -r "$split/hosts" ] && command -v distcc >/dev/null && command -v socat >/dev/null; then
  hosts=""; remote=0; here=$jobs; here_set=""
  while read -r name slots; do
    case "$slots" in [0-9]|[1-9][0-9]) ;; *) continue ;; esac
    case "$name" in
      local) here=$slots; here_set=1; continue ;;
      h[0-9]|h[0-9][0-9]) ;;
      *) continue ;;
    esac
    [ "$slots" -gt 0 ] && [ -S "$split/$name.sock" ] || continue
    hosts="$hosts @$name/$slots"; remote=$((remote + slots))
  done < "$split/hosts"
fi
if [ "${remote:-0}" -gt 0 ]; then
  if [ "$here" -gt 0 ]; then hosts="$hosts localhost/$here"; fi
  mkdir -p "$TMPDIR/distcc"
  {
    echo '#!/bin/sh'
    echo '# Called as: connect [-l USER] HOST distccd ...; the remote command is rvbuild'"'"'s to choose.'
    echo 'while [ "$1" = -l ]; do shift 2; done'
    echo 'case "$1" in h[0-9]|h[0-9][0-9]) ;; *) exit 1 ;; esac'
    echo "exec socat - \"UNIX-CONNECT:$split/\$1.sock\""
  } > "$TMPDIR/distcc/connect"
  chmod +x "$TMPDIR/distcc/connect"
  export DISTCC_HOSTS="${hosts# }" DISTCC_SSH="$TMPDIR/distcc/connect" DISTCC_DIR="$TMPDIR/distcc"
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
    echo "PATH='$TMPDIR/distcc/local':\$PATH exec distcc ${crossPrefix}gcc \"\$@\""
  } > "$TMPDIR/distcc/bin/${crossPrefix}gcc"
  chmod +x "$TMPDIR/distcc/bin/${crossPrefix}gcc"
  # The compiler distcc runs here (its local jobs and its fallbacks) compiles at the lowest
  # priority: this host's first job is to prepare the helpers' jobs, and a compile beside that
  # work took 60 % of this host's CPU and left the helpers waiting (`kernel_split` bench,
  # profiled with `perf`). Preprocessing (-E, and the -M family) keeps its priority.
  mkdir -p "$TMPDIR/distcc/local"
  real_cc=$(command -v "${crossPrefix}gcc")
  {
    echo '#!/bin/sh'
    echo 'for a in "$@"; do case "$a" in -E|-M|-MM) exec '"'$real_cc'"' "$@" ;; esac; done'
    echo 'exec nice -n 19 '"'$real_cc'"' "$@"'
  } > "$TMPDIR/distcc/local/${crossPrefix}gcc"
  chmod +x "$TMPDIR/distcc/local/${crossPrefix}gcc"
  plain_path=$PATH
  jobs=$((remote + here))
  log "compiling with distcc: $DISTCC_HOSTS"
  # `split_stop` (the builder calls it when its compiling is done) stops the include server;
  # on the way out `split_end` waits while it deletes its copies of the headers (in /dev/shm:
  # killed with the build, it left them there) and says how often it started over (each
  # change to a generated header costs a new analysis of every header).
  split_stop() {
    local pid
    pid=$(cat "$TMPDIR/distcc/pump/pid" 2>/dev/null) && kill "$pid" 2>/dev/null || true
  }
  split_end() {
    local pid i
    pid=$(cat "$1/pid" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || true
    # It removes its socket after its copies (an exited server may stay a zombie a while).
    for i in $(seq 50); do [ -S "$1/socket" ] || break; sleep 0.1; done
    log "distcc pump mode: the include server cleared its caches $(grep -c "Clearing caches" "$1/log" || true) times"
  }
  # The wrapper goes on PATH only for the main make: the config steps before it run the
  # compiler a hundred times one after the other (Kconfig's cc-option tests), each of which
  # distcc would only pass back to this host.
  split_begin() {
    local dir="$TMPDIR/distcc/pump" i
    export PATH="$TMPDIR/distcc/bin:$plain_path"
    [ -n "${splitPump:-}" ] && [ -x /usr/bin/python3 ] && [ -d /usr/lib/python3/dist-packages/include_server ] || {
      log "distcc plain mode: no include server here (Debian packages distcc-pump, python3-lzo)"
      return 0
    }
    mkdir -p "$dir"
    if ! PATH=$plain_path PYTHONOPTIMIZE=1 /usr/bin/python3 "$splitPump" --port "$dir/socket" \
      --pid_file "$dir/pid" -d1 \
      --stat_reset_triggers='include/generated/*:include/generated/*/*:arch/*/include/generated/*/*' \
      </dev/null >"$dir/log" 2>&1; then
      log "distcc plain mode: the include server did not start: $(tail -n 1 "$dir/log")"
      return 0
    fi
    for i in $(seq 100); do [ -S "$dir/socket" ] && break; sleep 0.1; done
    if ! [ -S "$dir/socket" ] || ! [ -s "$dir/pid" ]; then
      log "distcc plain mode: the include server did not start: $(tail -n 1 "$dir/log")"
      return 0
    fi
    trap "split_end '$dir'" EXIT
    export INCLUDE_SERVER_PORT="$dir/socket"
    # Preparing jobs for the helpers is this host's main work now: unless the hosts file says
    # otherwise it compiles on half its cores (a saturated owner left the helpers idle).
    if [ -z "$here_set" ] && [ "$here" -gt 1 ]; then
      jobs=$((jobs - here + (here + 1) / 2)); here=$(((here + 1) / 2))
    fi
    DISTCC_HOSTS=$(for h in $DISTCC_HOSTS; do
      case "$h" in @*) echo "$h,cpp,lzo" ;; localhost/*) echo "localhost/$here" ;; *) echo "$h" ;; esac
    done | tr '\n' ' ')
    export DISTCC_HOSTS="${DISTCC_HOSTS% }"
    log "distcc pump mode: $DISTCC_HOSTS"
  }
fi
