# Builds a Linux kernel from a source tarball: base config (tinyconfig or a defconfig) plus the
# board's options, checks every requested option survived olddefconfig, then builds Image,
# modules and the board's DTBs. Outputs: $out (Image, config, System.map, dtbs/, modules/),
# $dev (a trimmed build tree for out-of-tree modules, and gen_init_cpio).
source "$common"
cd "$TMPDIR"
log "unpacking $src"
tar -xf "$src"
cd linux-*
source "$splitHook"
mk() { make -s ARCH="$karch" CROSS_COMPILE="$crossPrefix" "$@"; }
log "config: $baseConfig + $(printf '%s\n' "$options" | grep -c . || true) options"
mk "$baseConfig"
printf '%s\n' "$options" > ../fragment.config
scripts/kconfig/merge_config.sh -m -O . .config ../fragment.config >/dev/null
mk olddefconfig
missing=""
while IFS= read -r line; do
  [ -n "$line" ] || continue
  sym=${line%%=*}; val=${line#*=}
  case "$val" in
    n) if grep -q "^$sym=" .config; then missing="$missing $line"; fi ;;
    *) if ! grep -qxF "$line" .config; then missing="$missing $line"; fi ;;
  esac
done <<< "$options"
if [ -n "$missing" ]; then
  log "kernel options dropped by olddefconfig (missing dependencies?):$missing"
  exit 1
fi
targets="Image"
if grep -q '^CONFIG_MODULES=y' .config; then targets="$targets modules"; fi
if [ "$buildDtbs" = 1 ]; then targets="$targets dtbs"; fi
log "building $targets with $jobs jobs"
split_begin
mk -j"$jobs" $targets
split_stop
release=$(mk kernelrelease)
mkdir -p "$out" "$dev"
cp arch/"$karch"/boot/Image "$out/Image"
gzip -9 -n -c arch/"$karch"/boot/Image > "$out/Image.gz"
cp .config "$out/config"
cp System.map "$out/System.map"
echo "$release" > "$out/kernel.release"
if [ -f Module.symvers ]; then cp Module.symvers "$out/Module.symvers"; fi
# Every DTB the config enables: boards of one SoC family share this kernel and pick theirs.
if [ "$buildDtbs" = 1 ]; then
  (cd "arch/$karch/boot/dts" && find . -name '*.dtb' -print0 | sort -z | while IFS= read -r -d '' d; do
    mkdir -p "$out/dtbs/$(dirname "$d")"; cp "$d" "$out/dtbs/$d"; done)
fi
if grep -q '^CONFIG_MODULES=y' .config; then
  mk INSTALL_MOD_PATH="$out" INSTALL_MOD_STRIP=1 DEPMOD=true modules_install >/dev/null
  rm -f "$out"/lib/modules/*/build "$out"/lib/modules/*/source
fi
# Trimmed tree for out-of-tree modules (about 100 MB instead of 1.6 GB): what kbuild reads for
# an M= build: the top Makefile, scripts/ (with its host tools), include/ (with generated
# headers), the arch Makefiles and headers, .config and Module.symvers.
log "saving the module build tree"
cp -a Makefile .config include scripts "$dev/"
[ -f Kbuild ] && cp Kbuild "$dev/"
mkdir -p "$dev/arch/$karch"
cp -a "arch/$karch/include" "$dev/arch/$karch/"
for f in arch/"$karch"/Makefile*; do cp "$f" "$dev/arch/$karch/"; done
if [ -f Module.symvers ]; then cp Module.symvers "$dev/"; else : > "$dev/Module.symvers"; fi
cp System.map "$dev/"
# Tools a module build runs on the host were built here; keep them, drop object files.
find "$dev/scripts" -name '*.o' -delete
mkdir -p "$dev/bin"
gcc -O2 -o "$dev/bin/gen_init_cpio" usr/gen_init_cpio.c
echo "$release" > "$dev/kernel.release"
log "kernel $release done"
