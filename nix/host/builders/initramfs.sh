# Assembles the initramfs (gzip'd newc cpio) with the kernel's gen_init_cpio: no root needed,
# /dev/console included, fixed mtimes for reproducibility.
source "$common"
release=$(cat "$kernelDev/kernel.release")
list="$TMPDIR/initramfs.list"
{
  echo "dir /dev 0755 0 0"
  echo "nod /dev/console 0600 0 0 c 5 1"
  echo "dir /proc 0755 0 0"
  echo "dir /sys 0755 0 0"
  echo "dir /tmp 1777 0 0"
  echo "dir /lib 0755 0 0"
  echo "dir /lib/modules 0755 0 0"
  echo "dir /lib/modules/$release 0755 0 0"
  echo "dir /lib/modules/$release/extra 0755 0 0"
  echo "file /init $init/bin/init 0755 0 0"
  for m in $modules; do
    for ko in "$m"/lib/modules/"$release"/extra/*.ko; do
      echo "file /lib/modules/$release/extra/$(basename "$ko") $ko 0644 0 0"
    done
  done
  # In-tree modules the kernel built (drivers the board wants as =m).
  if [ -d "$kernel/lib/modules/$release/kernel" ]; then
    (cd "$kernel/lib/modules/$release" && find kernel -type d | sort | while read -r d; do echo "dir /lib/modules/$release/$d 0755 0 0"; done)
    (cd "$kernel/lib/modules/$release" && find kernel -name '*.ko' | sort | while read -r k; do echo "file /lib/modules/$release/$k $kernel/lib/modules/$release/$k 0644 0 0"; done)
  fi
  # Module load order for init: one name per line.
  echo "file /etc/modules $TMPDIR/modules.order 0644 0 0"
  echo "dir /etc 0755 0 0"
} > "$list.unsorted"
: > "$TMPDIR/modules.order"
if [ -d "$kernel/lib/modules/$release/kernel" ]; then
  (cd "$kernel/lib/modules/$release" && find kernel -name '*.ko' | sort | sed "s|^|/lib/modules/$release/|") >> "$TMPDIR/modules.order"
fi
for m in $modules; do
  for ko in "$m"/lib/modules/"$release"/extra/*.ko; do
    echo "/lib/modules/$release/extra/$(basename "$ko")" >> "$TMPDIR/modules.order"
  done
done
# directories first so gen_init_cpio never sees a file before its parent
{ grep '^dir' "$list.unsorted" | sort -u; grep -v '^dir' "$list.unsorted"; } > "$list"
mkdir -p "$out"
"$kernelDev/bin/gen_init_cpio" -t 1 "$list" | gzip -9 -n > "$out/initramfs.cpio.gz"
cp "$list" "$out/initramfs.list"
