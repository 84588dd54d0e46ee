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

mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1=="deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list)
fi
if [ -z "$mirror" ]; then
  echo "bench-verify-corpus: no Debian mirror found in /etc/apt/sources.list(.d)" >&2
  exit 1
fi

apt="$dir/apt"
mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$apt/prefs"
: >"$apt/status"
archlist=$(echo $archs | tr ' ' ',')
echo "deb [arch=$archlist signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main" \
  >"$apt/sources.list"
aptopts=(
  -o "Dir::Etc::SourceList=$apt/sources.list"
  -o "Dir::Etc::SourceParts=$apt/parts"
  -o "Dir::Etc::PreferencesParts=$apt/prefs"
  -o "Dir::State=$apt/state"
  -o "Dir::State::status=$apt/status"
  -o "Dir::Cache=$apt/cache"
  -o "APT::Architecture=amd64"
  -o "APT::Architectures=$archlist"
  -o "Acquire::Languages=none"
)
# Downloads land in a directory the _apt user may not be able to write.
if [ "$(id -u)" -eq 0 ]; then aptopts+=(-o "APT::Sandbox::User=root"); fi
echo "[corpus] apt-get update (private configuration, architectures: $archs)"
apt-get "${aptopts[@]}" -qq update

mkdir -p "$dir/debs"
for a in $archs; do
  want=()
  for p in $pkgs; do want+=("$p:$a"); done
  echo "[corpus] downloading ${want[*]}"
  (cd "$dir/debs" && apt-get "${aptopts[@]}" -qq download "${want[@]}")
done

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
