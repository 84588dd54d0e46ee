# Compiles rvbuild's builder benchmark statically for one system with that system's C compiler.
source "$common"
mkdir -p "$out/bin"
"${crossPrefix}gcc" -static -O2 -Wall -Wextra -Werror -o "$out/bin/probe-bench" "$src"
"${crossPrefix}strip" "$out/bin/probe-bench"
