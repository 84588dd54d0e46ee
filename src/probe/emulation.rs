//! Measuring a builder's emulation slowdown for a target system: the same small C file (and an
//! empty one, for process start-up) is compiled by the builder's own `cc` and by the target
//! userland's gcc run through binfmt qemu-user, exactly as a target-system derivation of the
//! host provider runs it. The ratio is what the scheduler's cost model uses for emulated
//! placements (`BuilderModel::emulated`), learnt per builder instead of assumed.

use super::error::ProbeError;
use crate::Result;
use crate::transport::Transport;

/// One probe's result.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulationProbe {
    /// The target system probed (`riscv64-linux`).
    pub system: String,
    /// Seconds the builder's own compiler took.
    pub native_s: f64,
    /// Seconds the target userland's compiler took under qemu-user.
    pub emulated_s: f64,
    /// Seconds to compile an empty file: the fixed cost of one compiler process.
    pub native_start_s: f64,
    pub emulated_start_s: f64,
}

impl EmulationProbe {
    /// How much longer compiling takes emulated, beyond process start-up: (emulated - its
    /// start-up) / (native - its start-up); the whole-compile ratio when the native compile is
    /// too short to subtract from. At least 1: emulation never makes a build faster.
    pub fn slowdown(&self) -> f64 {
        let native = self.native_s - self.native_start_s;
        let emulated = self.emulated_s - self.emulated_start_s;
        let ratio = if native > 0.01 && emulated > 0.0 {
            emulated / native
        } else if self.native_s > 0.0 {
            self.emulated_s / self.native_s
        } else {
            1.0
        };
        ratio.max(1.0)
    }

    /// Extra seconds every emulated compiler process costs (qemu-user start-up and translation).
    pub fn process_overhead_s(&self) -> f64 {
        (self.emulated_start_s - self.native_start_s).max(0.0)
    }
}

/// The userland directory of `system` below `userland_root` on the builder.
pub fn userland_dir(system: &str, userland_root: &str) -> Result<String> {
    let arch = match system {
        "riscv64-linux" => "riscv64",
        "aarch64-linux" => "arm64",
        other => {
            return Err(ProbeError::NoUserland { system: other.to_string() }.into());
        }
    };
    Ok(format!("{}/userland-{arch}", userland_root.trim_end_matches('/')))
}

/// Twenty small optimisable functions: about 0.15 s for gcc -O2 on a 2-core x86_64, long enough
/// that the compile itself, not process start-up, dominates.
const PROBE_SOURCE: &str = r#"#define F(n) long f##n(long x) { long s = n; for (long i = 0; i < x; i++) { s += (i * n) ^ (s >> 3); if (s % 7 == n % 7) s -= i; else s ^= x << (i & 7); } return s; }
#define F10(n) F(n##0) F(n##1) F(n##2) F(n##3) F(n##4) F(n##5) F(n##6) F(n##7) F(n##8) F(n##9)
F10(1) F10(2)
"#;

/// The shell command that measures the userland in `userland_dir` against the builder's own
/// compiler; prints `native_ns`, `emulated_ns` (the probe file) and `native_start_ns`,
/// `emulated_start_ns` (an empty file: process start-up, which under qemu-user includes
/// translating the compiler's code).
pub fn command(userland_dir: &str) -> Result<String> {
    if userland_dir.is_empty()
        || !userland_dir.starts_with('/')
        || !userland_dir.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    {
        return Err(ProbeError::UnusableUserlandDir { dir: userland_dir.to_string() }.into());
    }
    let u = userland_dir;
    Ok(format!(
        r#"set -e
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
cat > "$t/p.c" <<'RVBUILD_PROBE_EOF'
{PROBE_SOURCE}RVBUILD_PROBE_EOF
: > "$t/e.c"
command -v cc >/dev/null || {{ echo "no cc on this builder" >&2; exit 3; }}
[ -x {u}/usr/bin/gcc ] || {{ echo "no userland at {u} on this builder" >&2; exit 4; }}
ns() {{ s=$(date +%s%N); "$@"; e=$(date +%s%N); echo $((e - s)); }}
emu() {{ env QEMU_LD_PREFIX={u} PATH={u}/usr/bin {u}/usr/bin/gcc --sysroot={u} -O2 -c -o "$t/o.o" "$1"; }}
echo "native_start_ns $(ns cc -O2 -c -o "$t/o.o" "$t/e.c")"
echo "emulated_start_ns $(ns emu "$t/e.c")"
echo "native_ns $(ns cc -O2 -c -o "$t/o.o" "$t/p.c")"
echo "emulated_ns $(ns emu "$t/p.c")"
"#
    ))
}

/// Reads the command's output.
pub fn parse(system: &str, stdout: &str) -> Result<EmulationProbe> {
    let field = |name: &str| -> Result<f64> {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.trim().parse::<u64>().ok()))
            .map(|ns| ns as f64 / 1e9)
            .ok_or_else(|| ProbeError::EmulationOutput { system: system.to_string(), name: name.to_string() }.into())
    };
    Ok(EmulationProbe {
        system: system.to_string(),
        native_s: field("native_ns ")?,
        emulated_s: field("emulated_ns ")?,
        native_start_s: field("native_start_ns ")?,
        emulated_start_s: field("emulated_start_ns ")?,
    })
}

/// Probes `system` on a builder (its userlands below `userland_root`, normally /var/lib/rvbuild).
pub async fn probe(transport: &dyn Transport, system: &str, userland_root: &str) -> Result<EmulationProbe> {
    let cmd = command(&userland_dir(system, userland_root)?)?;
    let out = transport.exec(&cmd).await?;
    if out.status != Some(0) {
        return Err(ProbeError::EmulationFailed {
            system: system.to_string(),
            label: transport.label(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
        .into());
    }
    parse(system, &String::from_utf8_lossy(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_parses_and_the_ratio_is_never_below_one() {
        let out = |n: u64, e: u64, ns: u64, es: u64| {
            format!("native_start_ns {ns}\nemulated_start_ns {es}\nnative_ns {n}\nemulated_ns {e}\n")
        };
        let p = parse("riscv64-linux", &out(230_000_000, 3_700_000_000, 30_000_000, 700_000_000)).expect("parse");
        assert!((p.slowdown() - 15.0).abs() < 1e-9, "{}", p.slowdown());
        assert!((p.process_overhead_s() - 0.67).abs() < 1e-9);
        // too short to subtract start-up from: the whole ratio
        let tiny = parse("riscv64-linux", &out(20_000_000, 200_000_000, 15_000_000, 100_000_000)).expect("parse");
        assert!((tiny.slowdown() - 10.0).abs() < 1e-9);
        let fast = parse("riscv64-linux", &out(2000, 1000, 0, 0)).expect("parse");
        assert_eq!(fast.slowdown(), 1.0);
        assert!(parse("riscv64-linux", "native_ns 1\n").is_err());
        assert!(parse("riscv64-linux", &out(1, 1, 1, 1).replace("emulated_ns 1", "emulated_ns x")).is_err());
    }

    #[test]
    fn userland_paths_are_checked() {
        assert_eq!(userland_dir("aarch64-linux", "/var/lib/rvbuild/").expect("dir"), "/var/lib/rvbuild/userland-arm64");
        assert!(userland_dir("mips-linux", "/x").is_err());
        assert!(command("/tmp/a b").is_err());
        assert!(command("relative").is_err());
        assert!(command("/var/lib/rvbuild/userland-riscv64").expect("cmd").contains("--sysroot=/var/lib"));
    }
}
