#!/bin/sh
# Run on a native riscv64/arm64 builder (a VisionFive 2, a Raspberry Pi, the VMs of
# scripts/builder-vm.sh) to make its own root the userland of the host provider's target-system
# derivations (nix/host/README.md):
#
#   sh userland-adopt.sh STAMP DEBIAN-ARCH
#
# STAMP is the build machine's `<root>/userland-<arch>/.rvbuild-userland` (copied over). Every
# package it lists must be installed here at the same version; then
# /var/lib/rvbuild/userland-<arch> becomes a link to / and the stamp is written there, so this
# builder offers the same userland (same identity) as the build machine. Exit 1 with the list
# of packages that differ otherwise (upgrade or downgrade them, or remake the build machine's
# userland from the same suite).
set -eu
stamp=${1:?usage: userland-adopt.sh STAMP DEBIAN-ARCH}
arch=${2:?usage: userland-adopt.sh STAMP DEBIAN-ARCH}
root=${RVBUILD_USERLAND_ROOT:-/var/lib/rvbuild}
head -n1 "$stamp" | grep -q "^rvbuild-userland 1 $arch " || {
  echo "userland-adopt: $stamp is not an rvbuild userland stamp for $arch" >&2; exit 2; }
[ "$(dpkg --print-architecture)" = "$arch" ] || {
  echo "userland-adopt: this machine is $(dpkg --print-architecture), the stamp is for $arch" >&2; exit 2; }
bad=0 n=0
tail -n +2 "$stamp" | while read -r pkg version parch; do
  have=$(dpkg-query -W -f '${Version} ${Architecture}' "$pkg" 2>/dev/null || echo "not installed")
  if [ "$have" != "$version $parch" ]; then
    echo "userland-adopt: $pkg: the build machine has $version $parch, this one $have" >&2
    echo x
  fi
done > /tmp/userland-adopt.$$
bad=$(wc -l < /tmp/userland-adopt.$$); rm -f /tmp/userland-adopt.$$
n=$(($(wc -l < "$stamp") - 1))
[ "$n" -gt 0 ] || { echo "userland-adopt: $stamp lists no packages" >&2; exit 2; }
[ "$bad" -eq 0 ] || { echo "userland-adopt: $bad of $n packages differ; nothing changed" >&2; exit 1; }
for t in /usr/bin/bash /usr/bin/gcc /usr/bin/make /usr/bin/sha256sum; do
  [ -x "$t" ] || { echo "userland-adopt: $t is missing" >&2; exit 1; }
done
dir="$root/userland-$arch"
if [ -e "$dir" ] && [ ! -L "$dir" ]; then
  echo "userland-adopt: $dir exists and is not a link; move it away first" >&2; exit 1
fi
mkdir -p "$root"
ln -sfn / "$dir"
cp "$stamp" "$dir/.rvbuild-userland"
chmod 0644 "$dir/.rvbuild-userland"
echo "userland-adopt: $dir -> / with the build machine's stamp ($n packages checked)"
