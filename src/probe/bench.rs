//! The probe benchmark: building its static binaries on this machine (the host library's
//! `probeBench`, one derivation per system, cached in the Nix store), and turning the timed
//! runs a builder reports into a speed figure and per-system emulation slowdowns.
//!
//! **Speed** = reference time per round / measured time per round of the native binary. 1.0
//! is this project's reference machine (a 2-core x86_64 KVM guest with Debian 12, the CI
//! host): [`REFERENCE_NS_PER_ROUND`]. A builder with speed 2.0 runs the benchmark's
//! compiler-like single-threaded work twice as fast. **Slowdown** of an emulated system =
//! time per round of that system's binary under binfmt/qemu-user / time per round natively,
//! on the same host.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use super::error::BenchBuildError;
use super::script::{BenchOutcome, BenchRun};
use crate::builders::systems::BENCH_SYSTEMS;
use crate::nix::render::string;
use crate::nix::store_path::StorePath;

/// Nanoseconds one benchmark round takes on the reference machine, idle (load below 0.2):
/// 16 rounds took 285 ms there.
pub const REFERENCE_NS_PER_ROUND: f64 = 18_000_000.0;

/// The benchmark binaries built on this machine: store path of the output by system, and why
/// a system's binary could not be built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BenchBinaries {
    pub outputs: BTreeMap<String, StorePath>,
    pub errors: BTreeMap<String, String>,
}

impl BenchBinaries {
    /// (system, path of the binary) pairs for the probe script.
    pub fn binaries(&self) -> Vec<(String, String)> {
        self.outputs.iter().map(|(s, p)| (s.clone(), format!("{p}/bin/probe-bench"))).collect()
    }

    /// The output store paths (what is copied to a remote builder).
    pub fn store_paths(&self) -> Vec<StorePath> {
        self.outputs.values().cloned().collect()
    }
}

/// The Debian cross compiler prefix and package for a bench system.
fn compiler(system: &str) -> (String, String) {
    let arch = system.split('-').next().unwrap_or(system);
    let prefix = format!("{arch}-linux-gnu-");
    let package = format!("gcc-{}-linux-gnu", arch.replace('_', "-"));
    (prefix, package)
}

async fn first_line(program: &str, args: &[&str]) -> Option<String> {
    let out =
        tokio::process::Command::new(program).args(args).stdin(Stdio::null()).kill_on_drop(true).output().await.ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_string)
}

/// The Nix expression of one system's benchmark derivation.
pub fn expression(nix_lib: &Path, target: &str, cross_prefix: &str, toolchain_id: &str, build_system: &str) -> String {
    format!(
        "(import {} {{ }}).probeBench {{ target = {}; crossPrefix = {}; toolchainId = {}; system = {}; }}",
        string(&nix_lib.join("host").to_string_lossy()),
        string(target),
        string(cross_prefix),
        string(toolchain_id),
        string(build_system)
    )
}

async fn build_one(nix_lib: &Path, target: &str, build_system: &str) -> Result<StorePath, BenchBuildError> {
    let (prefix, package) = compiler(target);
    let gcc = format!("{prefix}gcc");
    let Some(id) = first_line(&gcc, &["--version"]).await else {
        return Err(BenchBuildError::NoCompiler { gcc, package });
    };
    let expr = expression(nix_lib, target, &prefix, &id, build_system);
    let out = tokio::process::Command::new("nix-build")
        .args(["--no-out-link", "--option", "substituters", "", "-E", &expr])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| BenchBuildError::CannotRunNixBuild { source })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(BenchBuildError::BuildFailed { target: target.to_string(), tail: tail.join(" / ") });
    }
    let line = stdout.lines().last().unwrap_or("").trim();
    StorePath::parse(line).map_err(|_| BenchBuildError::NotAStorePath { line: line.to_string() })
}

/// Builds the benchmark for every system in [`BENCH_SYSTEMS`] with this machine's Nix (a
/// no-op after the first time). A system whose compiler is missing gets an error entry.
pub async fn build_local() -> BenchBinaries {
    let nix_lib = match crate::profile::shipped::materialize(&crate::vocab::cache_dir()) {
        Ok(share) => share.join("nix"),
        Err(e) => {
            let msg = format!("cannot write rvbuild's Nix library to its cache directory: {e}");
            return BenchBinaries {
                outputs: BTreeMap::new(),
                errors: BENCH_SYSTEMS.iter().map(|s| (s.to_string(), msg.clone())).collect(),
            };
        }
    };
    let build_system = crate::builders::inventory::native_system();
    let mut set = tokio::task::JoinSet::new();
    for sys in BENCH_SYSTEMS {
        let (lib, bs) = (nix_lib.clone(), build_system.clone());
        set.spawn(async move { (sys.to_string(), build_one(&lib, sys, &bs).await) });
    }
    let mut bins = BenchBinaries::default();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((sys, Ok(p))) => {
                bins.outputs.insert(sys, p);
            }
            Ok((sys, Err(e))) => {
                bins.errors.insert(sys, e.to_string());
            }
            Err(e) => {
                bins.errors.insert("benchmark".into(), format!("benchmark build task failed: {e}"));
            }
        }
    }
    bins
}

/// Speed and slowdowns from a host's benchmark runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// Best native time per round (ns).
    pub native_ns_per_round: Option<f64>,
    pub speed: Option<f64>,
    /// Why no speed could be measured.
    pub speed_error: Option<String>,
    /// Emulated system -> slowdown, or why its run failed.
    pub emulated: BTreeMap<String, std::result::Result<f64, String>>,
}

/// Rounds to `digits` decimals: the measurements are not more precise than that.
fn round_to(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Evaluates the runs: `native` is the system the host runs its benchmark natively.
pub fn evaluate(native: Option<&str>, runs: &[BenchRun]) -> Measured {
    let mut m = Measured::default();
    let per_round = |rounds: u32, ns: u64| ns as f64 / f64::from(rounds);
    let native_runs: Vec<(u32, u64, &str)> = runs
        .iter()
        .filter(|r| Some(r.system.as_str()) == native)
        .filter_map(|r| match &r.outcome {
            BenchOutcome::Ran { rounds, ns, checksum } => Some((*rounds, *ns, checksum.as_str())),
            BenchOutcome::Failed { .. } => None,
        })
        .collect();
    let native_failure = runs.iter().find_map(|r| match &r.outcome {
        BenchOutcome::Failed { status, output } if Some(r.system.as_str()) == native => {
            Some(format!("the native benchmark failed (exit {status}): {output}"))
        }
        _ => None,
    });
    let best = native_runs.iter().map(|&(r, ns, _)| per_round(r, ns)).fold(f64::INFINITY, f64::min);
    if best.is_finite() && best > 0.0 {
        m.native_ns_per_round = Some(best.round());
        m.speed = Some(round_to(REFERENCE_NS_PER_ROUND / best, 3));
    } else {
        m.speed_error = Some(native_failure.unwrap_or_else(|| match native {
            Some(n) => {
                format!("no benchmark ran natively for {n} (rvbuild has binaries for {})", BENCH_SYSTEMS.join(", "))
            }
            None => "the host's native system is unknown".to_string(),
        }));
    }
    for r in runs.iter().filter(|r| Some(r.system.as_str()) != native) {
        let result = match &r.outcome {
            BenchOutcome::Failed { status, output } => Err(format!("exit {status}: {output}")),
            BenchOutcome::Ran { rounds, ns, checksum } => {
                let reference = native_runs.iter().find(|(nr, _, _)| nr == rounds).map(|&(_, _, c)| c);
                match (reference, m.native_ns_per_round) {
                    (Some(c), _) if c != checksum => Err(format!(
                        "wrong result under emulation (checksum {checksum}, natively {c}): the emulator is broken"
                    )),
                    (_, Some(nat)) => Ok(round_to(per_round(*rounds, *ns) / nat, 2)),
                    (_, None) => Err("ran, but there is no native time to compare with".to_string()),
                }
            }
        };
        m.emulated.insert(r.system.clone(), result);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(system: &str, rounds: u32, ns: u64, checksum: &str) -> BenchRun {
        BenchRun { system: system.into(), outcome: BenchOutcome::Ran { rounds, ns, checksum: checksum.into() } }
    }

    #[test]
    fn speed_and_slowdown_come_from_per_round_times() {
        let runs = vec![
            ran("x86_64-linux", 24, 24 * 9_000_000, "aa"),
            ran("x86_64-linux", 6, 6 * 10_000_000, "bb"),
            ran("riscv64-linux", 6, 6 * 63_000_000, "bb"),
            ran("aarch64-linux", 6, 6 * 90_000_000, "cc"),
            BenchRun {
                system: "armv7l-linux".into(),
                outcome: BenchOutcome::Failed { status: 126, output: "Exec format error".into() },
            },
        ];
        let m = evaluate(Some("x86_64-linux"), &runs);
        assert_eq!(m.native_ns_per_round, Some(9_000_000.0), "the best native run counts");
        assert_eq!(m.speed, Some(2.0));
        assert_eq!(m.emulated["riscv64-linux"], Ok(7.0));
        assert!(m.emulated["aarch64-linux"].as_ref().is_err_and(|e| e.contains("checksum cc, natively bb")));
        assert!(m.emulated["armv7l-linux"].as_ref().is_err_and(|e| e.contains("126")));
    }

    #[test]
    fn no_native_run_is_a_speed_error() {
        let m = evaluate(Some("powerpc64-linux"), &[ran("x86_64-linux", 6, 60, "a")]);
        assert_eq!(m.speed, None);
        assert!(m.speed_error.as_deref().is_some_and(|e| e.contains("powerpc64-linux")));
        assert!(m.emulated["x86_64-linux"].is_err());
        let m = evaluate(
            Some("x86_64-linux"),
            &[BenchRun {
                system: "x86_64-linux".into(),
                outcome: BenchOutcome::Failed { status: 124, output: String::new() },
            }],
        );
        assert!(m.speed_error.as_deref().is_some_and(|e| e.contains("exit 124")));
    }

    #[test]
    fn compilers_and_expression() {
        assert_eq!(compiler("x86_64-linux"), ("x86_64-linux-gnu-".into(), "gcc-x86-64-linux-gnu".into()));
        assert_eq!(compiler("riscv64-linux").1, "gcc-riscv64-linux-gnu");
        let e =
            expression(Path::new("/share/nix"), "riscv64-linux", "riscv64-linux-gnu-", "gcc \"14\"", "x86_64-linux");
        assert!(e.starts_with("(import \"/share/nix/host\" { }).probeBench {"), "{e}");
        assert!(e.contains("toolchainId = \"gcc \\\"14\\\"\";"), "{e}");
    }
}
