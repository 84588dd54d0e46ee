# Builds one out-of-tree kernel module against the kernel's trimmed build tree ($kernelDev).
# Output: $out/lib/modules/<release>/extra/*.ko
source "$common"
cd "$TMPDIR"
cp -r "$src" module
chmod -R u+w module
release=$(cat "$kernelDev/kernel.release")
# The trimmed tree is read-only in the store; kbuild writes nothing there for M= builds.
make -s -C "$kernelDev" ARCH="$karch" CROSS_COMPILE="$crossPrefix" M="$TMPDIR/module" -j"$jobs" modules
mkdir -p "$out/lib/modules/$release/extra"
found=0
for ko in module/*.ko; do
  [ -e "$ko" ] || continue
  "${crossPrefix}strip" --strip-debug -o "$out/lib/modules/$release/extra/$(basename "$ko")" "$ko"
  found=1
done
[ "$found" = 1 ] || { log "no .ko produced in $src"; exit 1; }
