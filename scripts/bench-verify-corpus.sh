#!/usr/bin/env bash
# Builds the corpus for the verify benchmark: real ELF files of many architectures, taken from
# Debian packages of foreign architectures plus RISC-V files from the host's cross compiler in
# two float ABIs. Packages come through a private apt configuration (its own sources list, state
# and cache under the corpus directory) so the machine's dpkg architectures are never touched.
# The mirror is the one the machine already uses. With --quick (the benchmark's quick mode) it
# downloads nothing: the files come from this machine's own and cross-toolchain libraries
# (x86_64, aarch64, riscv64). Usage: bench-verify-corpus.sh [--quick] DIR
set -euo pipefail

quick=false
if [ "${1:-}" = "--quick" ]; then quick=true; shift; fi
dir=${1:?usage: bench-verify-corpus.sh [--quick] DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ -f "$dir/.complete" ]; then
  echo "corpus already built in $dir"
  exit 0
fi

# A few hundred files, no network: the host's and the cross toolchains' shared libraries and
# start files. Each architecture directory holds only that architecture's ELF files (plus
# linker scripts that are not ELF).
copy_libs() { # copy_libs DEST MAX DIR...
  local dest=$1 max=$2; shift 2
  mkdir -p "$dest"
  find "$@" -maxdepth 1 -type f \( -name '*.so*' -o -name '*.o' \) 2>/dev/null | sort | awk -v m="$max" 'NR <= m' |
    while read -r f; do cp -n "$f" "$dest/"; done
}

archs="amd64 arm64 armhf armel i386 ppc64el s390x mips64el"
pkgs="libc6 libstdc++6 libgcc-s1 zlib1g coreutils busybox-static"

# shellcheck source=lib/debian.sh
source "$(dirname "$0")/lib/debian.sh"
archlist=$(echo $archs | tr ' ' ',')
want=()
for a in $archs; do
  for p in $pkgs; do want+=("$p:$a"); done
done
rm -rf "$dir/files"
if $quick; then
  copy_libs "$dir/files/amd64" 200 /usr/lib/x86_64-linux-gnu
  copy_libs "$dir/files/arm64" 200 /usr/aarch64-linux-gnu/lib
  objects=4
else
  echo "[corpus] downloading ${want[*]} (private apt configuration)"
  private_apt_download "$dir/apt" "$archlist" bookworm main "$dir/debs" "${want[@]}"
  for deb in "$dir"/debs/*.deb; do
    a=$(dpkg-deb -f "$deb" Architecture)
    mkdir -p "$dir/files/$a"
    dpkg-deb -x "$deb" "$dir/files/$a"
  done
  objects=40
fi
# Documentation is not what the benchmark is about.
find "$dir/files" -path '*/usr/share/*' -delete 2>/dev/null || true

# RISC-V: the cross toolchain's libraries (lp64d) and freshly compiled objects in two float ABIs.
rv="$dir/files/riscv64"
mkdir -p "$rv/lib" "$rv/obj"
sysroot=$(riscv64-linux-gnu-gcc -print-sysroot 2>/dev/null || true)
for d in "$sysroot/lib" /usr/riscv64-linux-gnu/lib; do
  [ -d "$d" ] && find "$d" -maxdepth 1 -type f -name '*.so*' -exec cp -n {} "$rv/lib/" \;
done
for i in $(seq 1 "$objects"); do
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
