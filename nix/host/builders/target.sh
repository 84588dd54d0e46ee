# Prelude of target-system derivations (run by the target's bash, under qemu-user on an
# emulating host): checks that the userland on this builder is the one the derivation was
# instantiated against (the hash of its stamp file), then runs the component's builder ($1).
stamp="$userlandDir/.rvbuild-userland"
have=$("$userlandDir/usr/bin/sha256sum" < "$stamp" 2>/dev/null) || have=""
if [ "${have%% *}" != "$userlandId" ]; then
  printf 'rvbuild: the userland %s on this builder is missing or differs from the one this derivation was made for (stamp %s); run scripts/setup-host.sh here and on the machine that instantiated it\n' "$userlandDir" "$stamp" >&2
  exit 1
fi
source "$1"
