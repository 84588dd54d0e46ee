#!/usr/bin/env bash
# Builds the corpus for the verify benchmark: real ELF files of many architectures, taken from
# Debian packages of foreign architectures plus RISC-V files from the host's cross compiler in
# two float ABIs. Packages come through a private apt configuration (its own sources list, state
# and cache under the corpus directory) so the machine's dpkg architectures are never touched.
# The mirror is the one the machine already uses. Usage: bench-verify-corpus.sh DIR
set -euo pipefail

dir=${1:?usage: bench-verify-corpus.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ -f "$dir/.complete" ]; then
  echo "corpus already built in $dir"
  exit 0
fi

archs="amd64 arm64 armhf armel i386 ppc64el s390x mips64el"
pkgs="libc6 libstdc++6 libgcc-s1 zlib1g coreutils busybox-static"

# shellcheck source=lib/debian.sh
source "$(dirname "$0")/lib/debian.sh"
archlist=$(echo $archs | tr ' ' ',')
want=()
for a in $archs; do
  for p in $pkgs; do want+=("$p:$a"); done
done
echo "[corpus] downloading ${want[*]} (private apt configuration)"
private_apt_download "$dir/apt" "$archlist" bookworm main "$dir/debs" "${want[@]}"

rm -rf "$dir/files"
for deb in "$dir"/debs/*.deb; do
  a=$(dpkg-deb -f "$deb" Architecture)
  mkdir -p "$dir/files/$a"
  dpkg-deb -x "$deb" "$dir/files/$a"
done
# Documentation is not what the benchmark is about.
find "$dir/files" -path '*/usr/share/*' -delete 2>/dev/null || true

# RISC-V: the cross toolchain's libraries (lp64d) and freshly compiled objects in two float ABIs.
rv="$dir/files/riscv64"
mkdir -p "$rv/lib" "$rv/obj"
sysroot=$(riscv64-linux-gnu-gcc -print-sysroot 2>/dev/null || true)
for d in "$sysroot/lib" /usr/riscv64-linux-gnu/lib; do
  [ -d "$d" ] && find "$d" -maxdepth 1 -type f -name '*.so*' -exec cp -n {} "$rv/lib/" \;
done
for i in $(seq 1 40); do
  printf 'double f%d(double x) { return x * %d.5; }\nint g%d(int a) { return a + %d; }\n' "$i" "$i" "$i" "$i" >"$rv/obj/m$i.c"
  riscv64-linux-gnu-gcc -O1 -march=rv64gc -mabi=lp64d -c "$rv/obj/m$i.c" -o "$rv/obj/m$i-lp64d.o"
  riscv64-linux-gnu-gcc -O1 -march=rv64imac -mabi=lp64 -c "$rv/obj/m$i.c" -o "$rv/obj/m$i-lp64.o"
  rm "$rv/obj/m$i.c"
done
printf 'int main(void) { return 0; }\n' >"$rv/obj/main.c"
riscv64-linux-gnu-gcc -O1 -march=rv64gc -mabi=lp64d "$rv/obj/main.c" -o "$rv/obj/main-lp64d"
rm "$rv/obj/main.c"

touch "$dir/.complete"
echo "[corpus] $(find "$dir/files" -type f | wc -l) files in $dir/files"
