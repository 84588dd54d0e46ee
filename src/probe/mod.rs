//! `rvbuild builders probe`: measuring a builder through any [`Transport`]. One exec of a
//! small sh script gathers the Nix version and settings, cores, load, free store space and the
//! binfmt_misc handlers, and times the benchmark binaries (copied to the builder's store over
//! the serve protocol first; the local machine already has them) natively and under emulation.
//! Each part that fails is recorded in [`ProbeResult::errors`]; the rest is still reported.

pub mod bench;
pub mod emulation;
pub mod error;
pub mod script;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::builders::systems;

use tokio::sync::OnceCell;

use self::error::ProbeError;
use crate::Result;
use crate::builders::inventory::Builder;
use crate::builders::machines::Scheme;
use crate::nix::copy::copy_closure;
use crate::nix::serve::ServeClient;
use crate::nix::store_path::StorePath;
use crate::transport::{LocalTransport, Transport};

pub use crate::builders::probe_cache::{EmulatedSystem, ProbeCache, ProbeResult, load_cache, now_unix};
pub use bench::{BenchBinaries, REFERENCE_NS_PER_ROUND};

/// How to probe. Clones share the benchmark binaries, so a pool probed concurrently with
/// clones of one `ProbeOptions` builds them once.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Run the benchmark (speed, slowdowns). Without it a probe takes one quick exec.
    pub measure: bool,
    /// Benchmark rounds natively (one round is ~18 ms on the reference machine).
    pub native_rounds: u32,
    /// Rounds under emulation (fewer: emulation is 3-20x slower).
    pub emulated_rounds: u32,
    /// Limit for the upload and for the script (each).
    pub timeout: Duration,
    bench: Arc<OnceCell<BenchBinaries>>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            measure: true,
            native_rounds: 24,
            emulated_rounds: 6,
            timeout: Duration::from_secs(300),
            bench: Arc::new(OnceCell::new()),
        }
    }
}

impl ProbeOptions {
    /// Uses already built benchmark binaries instead of building them on first use.
    pub fn with_binaries(mut self, bins: BenchBinaries) -> Self {
        self.bench = Arc::new(OnceCell::new_with(Some(bins)));
        self
    }

    /// The benchmark binaries (built with this machine's Nix on first use).
    pub async fn binaries(&self) -> &BenchBinaries {
        self.bench.get_or_init(bench::build_local).await
    }
}

async fn upload(transport: &dyn Transport, paths: &[StorePath]) -> Result<()> {
    let local = LocalTransport::new();
    let mut src = ServeClient::connect(local.open_serve().await?, None).await?;
    let mut dst = ServeClient::connect(transport.open_serve().await?, None).await?;
    copy_closure(&mut src, &mut dst, paths).await?;
    Ok(())
}

/// Probes one builder through `transport`. Fails only when the builder could not be reached or
/// the script did not run at all; everything else lands in [`ProbeResult::errors`].
pub async fn probe(builder: &Builder, transport: &dyn Transport, opts: &ProbeOptions) -> Result<ProbeResult> {
    let started = Instant::now();
    let mut errors = BTreeMap::new();
    let mut plan = None;
    if opts.measure {
        let bins = opts.binaries().await;
        for (sys, e) in &bins.errors {
            errors.insert(format!("benchmark {sys}"), e.clone());
        }
        if !bins.outputs.is_empty() {
            let uploaded = if builder.scheme == Scheme::Local {
                Ok(())
            } else {
                match tokio::time::timeout(opts.timeout, upload(transport, &bins.store_paths())).await {
                    Ok(r) => r,
                    Err(_) => Err(ProbeError::UploadTimeout { secs: opts.timeout.as_secs() }.into()),
                }
            };
            match uploaded {
                Ok(()) => {
                    plan = Some(script::BenchPlan {
                        binaries: bins.binaries(),
                        native_rounds: opts.native_rounds,
                        emulated_rounds: opts.emulated_rounds,
                        timeout_s: u32::try_from(opts.timeout.as_secs()).unwrap_or(u32::MAX),
                    })
                }
                Err(e) => {
                    errors.insert("upload".into(), format!("cannot copy the benchmark to {}: {e}", transport.label()));
                }
            }
        }
    }
    let cmd = script::command(plan.as_ref());
    let out = tokio::time::timeout(opts.timeout, transport.exec(&cmd))
        .await
        .map_err(|_| ProbeError::Timeout { builder: builder.name.clone(), secs: opts.timeout.as_secs() })??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parsed = script::parse(&stdout);
    if !parsed.ran {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(ProbeError::ScriptDidNotRun {
            builder: builder.name.clone(),
            label: transport.label(),
            status: out.status.map_or("none".to_string(), |s| s.to_string()),
            stderr: stderr.trim().to_string(),
        }
        .into());
    }
    let mut r = assemble(builder, &parsed, errors, now_unix());
    r.duration_s = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    Ok(r)
}

/// Turns the script's output into a result (pure).
pub fn assemble(
    builder: &Builder,
    o: &script::ScriptOutput,
    mut errors: BTreeMap<String, String>,
    probed_at: u64,
) -> ProbeResult {
    let nix_version = o.nix_version_line.as_deref().and_then(|l| l.split_whitespace().last()).map(str::to_string);
    if nix_version.is_none() {
        let why = o.nix_error.clone().unwrap_or_else(|| "nix-store is not on the builder's PATH".into());
        errors.insert("nix".into(), format!("cannot run `nix-store --version`: {why}"));
    }
    let uname_system = o.uname_m.as_deref().and_then(systems::from_uname);
    let system = o.system.clone().or_else(|| uname_system.clone());
    if system.is_none() {
        errors.insert("system".into(), "neither Nix's `system` nor `uname -m` could be read".into());
    }
    if o.cores.is_none() {
        errors.insert("cores".into(), "nproc printed no number".into());
    }
    if o.load1.is_none() {
        errors.insert("load".into(), "/proc/loadavg is not readable".into());
    }
    if o.free_disk_kib.is_none() {
        errors.insert("disk".into(), "df -Pk on the Nix store printed no free space".into());
    }

    // The benchmark runs natively for the CPU's own system (what the script picked from uname).
    let measured = bench::evaluate(uname_system.as_deref().or(system.as_deref()), &o.benches);
    if !o.benches.is_empty()
        && let Some(e) = &measured.speed_error
    {
        errors.insert("speed".into(), e.clone());
    }

    let native = system.clone().unwrap_or_default();
    let foreign = |s: &str| !native.is_empty() && !systems::runs_natively(&native, s);
    let binfmt_on = o.binfmt_status.as_deref() == Some("enabled");
    let handlers: BTreeMap<&str, &str> = o
        .binfmt
        .iter()
        .filter(|e| e.enabled && binfmt_on)
        .filter_map(|e| systems::from_binfmt_magic(e.offset, &e.magic).map(|s| (s, e.name.as_str())))
        .collect();
    let mut candidates: BTreeSet<String> = o.extra_platforms.iter().filter(|s| foreign(s)).cloned().collect();
    candidates.extend(handlers.keys().filter(|s| foreign(s)).map(|s| s.to_string()));
    candidates.extend(measured.emulated.iter().filter(|(s, r)| r.is_ok() && foreign(s)).map(|(s, _)| s.clone()));
    let mut emulated = BTreeMap::new();
    for s in candidates {
        let slowdown = match measured.emulated.get(&s) {
            Some(Ok(d)) => Some(*d),
            Some(Err(e)) => {
                errors.insert(format!("emulated {s}"), e.clone());
                None
            }
            None => None,
        };
        let entry = EmulatedSystem {
            declared: o.extra_platforms.contains(&s),
            binfmt: handlers.get(s.as_str()).map(|n| n.to_string()),
            slowdown,
        };
        emulated.insert(s, entry);
    }

    ProbeResult {
        builder: builder.name.clone(),
        uri: builder.uri.clone(),
        probed_at,
        duration_s: 0.0,
        nix_version,
        system,
        extra_platforms: o.extra_platforms.clone(),
        system_features: o.system_features.clone(),
        emulated,
        cores: o.cores,
        load1: o.load1,
        free_disk_bytes: o.free_disk_kib.map(|k| k.saturating_mul(1024)),
        measured_at: measured.speed.map(|_| probed_at),
        speed: measured.speed,
        bench_ns_per_round: measured.native_ns_per_round,
        errors,
        userlands: o
            .userlands
            .iter()
            .filter_map(|(arch, id)| {
                crate::builders::userland::system_of_debian_arch(arch).map(|sys| (sys.to_string(), id.clone()))
            })
            .collect(),
        cross_compilers: o.cross_compilers.iter().cloned().collect(),
    }
}

/// A pool entry for unit tests.
#[cfg(test)]
pub(crate) fn test_builder(name: &str, scheme: Scheme) -> Builder {
    Builder {
        name: name.into(),
        uri: if scheme == Scheme::Local { "local".into() } else { format!("ssh://{name}") },
        scheme,
        user: None,
        host: String::new(),
        port: 0,
        systems: vec!["x86_64-linux".into()],
        identity: Vec::new(),
        max_jobs: 4,
        speed: 1.0,
        supported_features: Vec::new(),
        mandatory_features: Vec::new(),
        host_key: crate::builders::HostKeyStatus::NotNeeded,
        tags: Vec::new(),
        source: "test".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(name: &str, scheme: Scheme) -> Builder {
        test_builder(name, scheme)
    }

    const OUTPUT: &str = "\
rvbuild_probe=1
nix_version=nix-store (Nix) 2.8.0
config_source=nix-show-config
extra_platforms=i686-linux aarch64-linux armv7l-linux
system=x86_64-linux
uname_m=x86_64
cores=8
loadavg=1.50 0.5 0.2 1/2 3
disk_free_kb=1000
binfmt_status=enabled
binfmt=qemu-riscv64 enabled 0 7f454c460201010000000000000000000200f300 1 /usr/bin/qemu-riscv64
binfmt=qemu-aarch64 enabled 0 7f454c460201010000000000000000000200b700 1 /usr/bin/qemu-aarch64
binfmt=qemu-x86_64 enabled 0 7f454c4602010100000000000000000002003e00 1 /usr/bin/qemu-x86_64
bench=x86_64-linux rounds=24 ns=432000000 checksum=aa
bench=x86_64-linux rounds=6 ns=108000000 checksum=bb
bench=riscv64-linux rounds=6 ns=648000000 checksum=bb
bench_failed=aarch64-linux 1 qemu: uncaught target signal 11
";

    #[test]
    fn assembles_parts_and_separates_declared_from_binfmt() {
        let b = builder("big", Scheme::Ssh);
        let r = assemble(&b, &script::parse(OUTPUT), BTreeMap::new(), 1000);
        assert_eq!((r.builder.as_str(), r.uri.as_str(), r.probed_at), ("big", "ssh://big", 1000));
        assert_eq!(r.nix_version.as_deref(), Some("2.8.0"));
        assert_eq!(r.system.as_deref(), Some("x86_64-linux"));
        assert_eq!((r.cores, r.load1, r.free_disk_bytes), (Some(8), Some(1.5), Some(1_024_000)));
        assert_eq!(r.speed, Some(1.0));
        // riscv64: binfmt only (not declared), measured 6x.
        let rv = &r.emulated["riscv64-linux"];
        assert_eq!((rv.declared, rv.binfmt.as_deref(), rv.slowdown), (false, Some("qemu-riscv64"), Some(6.0)));
        // aarch64: declared and registered, but the run crashed: not working, error kept.
        let a = &r.emulated["aarch64-linux"];
        assert!(a.declared && !a.working());
        assert!(r.errors["emulated aarch64-linux"].contains("signal 11"));
        // armv7l: declared, no handler, no binary: listed, unmeasured, no error.
        assert_eq!(r.emulated["armv7l-linux"], EmulatedSystem { declared: true, binfmt: None, slowdown: None });
        // i686 on x86_64 and the x86_64 handler on an x86_64 host are not emulation.
        assert!(!r.emulated.contains_key("i686-linux") && !r.emulated.contains_key("x86_64-linux"));
        assert_eq!(r.working_emulated(), BTreeMap::from([("riscv64-linux".to_string(), 6.0)]));
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    }

    #[test]
    fn missing_parts_are_errors_and_uname_is_the_fallback() {
        let out = "rvbuild_probe=1\nnix_error=sh: nix-store: not found\nuname_m=riscv64\nbinfmt_status=disabled\n\
                   binfmt=qemu-x86_64 enabled 0 7f454c4602010100000000000000000002003e00 1 /q\n";
        let r = assemble(&builder("rv", Scheme::Ssh), &script::parse(out), BTreeMap::new(), 5);
        assert_eq!(r.system.as_deref(), Some("riscv64-linux"));
        assert!(r.errors["nix"].contains("nix-store: not found"));
        for part in ["cores", "load", "disk"] {
            assert!(r.errors.contains_key(part), "{part}: {:?}", r.errors);
        }
        assert!(!r.errors.contains_key("speed"), "no benchmark was asked for");
        assert!(r.emulated.is_empty(), "binfmt_misc is disabled as a whole");
        assert_eq!(r.speed, None);
    }
}
