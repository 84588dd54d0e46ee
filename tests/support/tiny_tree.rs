//! A small derivation that compiles `files` generated C files with make through the host
//! provider's split hook (`nix/host/builders/split.sh`), as the kernel does: distcc over the
//! helpers rvbuild provides at run time, plain make without them. Its output is the sha256 of
//! the objects, so a split and an unsplit build can be compared.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCRIPT: &str = r#"source "$common"
mkdir -p "$TMPDIR/t" && cd "$TMPDIR/t"
for i in $(seq 1 "$files"); do
  { for j in $(seq 1 60); do
      echo "int f${i}_$j(int x) { int s = 0; for (int k = 0; k < x; k++) s += (k * $j) ^ (s >> 3); return s; }"
    done; } > "f$i.c"
done
# Non-ASCII bytes in a string must reach a helper unchanged (pump mode once doubled them).
printf 'const char *greeting = "vmscan\357\274\214 ok";\n' >> f1.c
printf 'all: $(patsubst %%.c,%%.o,$(wildcard *.c))\n%%.o: %%.c\n\t$(CC) -O2 -c $< -o $@\n' > Makefile
# A generated header that changes between two compiles, as the kernel's do: the include
# server must see the new one (a stale copy would change late.o).
mkdir -p include/generated late
echo '#define GEN 1' > include/generated/gen.h
printf '#include "include/generated/gen.h"\nint gen(void) { return GEN; }\n' | tee early.c > late/late.c
log "building $files files with $jobs jobs"
source "$splitHook"
split_begin
make -s -j"$jobs" CC="${crossPrefix}gcc"
echo '#define GEN 2' > include/generated/gen.h.new && mv include/generated/gen.h.new include/generated/gen.h
"${crossPrefix}gcc" -O2 -I. -c late/late.c -o late.o
split_stop
log "linked"
mkdir -p "$out" && cat $(ls *.o | sort) | sha256sum > "$out/objects.sha256"
"#;

/// Writes the derivation (with a fresh nonce, so it is never built yet) into `dir` and
/// instantiates it; returns the .drv path.
pub fn instantiate(dir: &Path, files: u32, nonce: &str) -> Result<String, String> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = dir.join("tiny.sh");
    fs::write(&script, SCRIPT).map_err(|e| format!("{}: {e}", script.display()))?;
    let expr = dir.join(format!("tiny-{nonce}.nix"));
    let text = format!(
        "derivation {{ name = \"rvbuild-split-tiny\"; system = \"x86_64-linux\"; builder = \"/bin/bash\"; \
         args = [ \"-e\" {script} ]; common = {common}; splitHook = {hook}; splitPump = {pump}; hostPath = \"/usr/bin:/bin\"; \
         crossPrefix = \"riscv64-linux-gnu-\"; files = \"{files}\"; nonce = \"{nonce}\"; }}",
        script = script.display(),
        common = repo.join("nix/host/builders/common.sh").display(),
        hook = repo.join("nix/host/builders/split.sh").display(),
        pump = repo.join("nix/host/builders/pump-server.py").display(),
    );
    fs::write(&expr, text).map_err(|e| format!("{}: {e}", expr.display()))?;
    let o = Command::new("nix-instantiate").arg(&expr).output().map_err(|e| format!("nix-instantiate: {e}"))?;
    if !o.status.success() {
        return Err(format!("nix-instantiate {}: {}", expr.display(), String::from_utf8_lossy(&o.stderr)));
    }
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}
