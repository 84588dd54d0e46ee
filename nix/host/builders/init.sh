# Compiles the initramfs init program, statically, with the target's C compiler.
source "$common"
mkdir -p "$out/bin"
"${crossPrefix}gcc" -static -Os -Wall -Werror $cflags \
  -DRVBUILD_MARKER="\"$marker\"" -DRVBUILD_BOARD="\"$board\"" \
  -o "$out/bin/init" "$src"
"${crossPrefix}strip" "$out/bin/init"
