//! `builders probe` against the real local machine through [`LocalTransport`]: its Nix, its
//! cores, and the benchmark built with Nix and run natively and under the binfmt qemu-user
//! handlers this machine has (riscv64, aarch64). Then the cache and the scheduler model built
//! from the result, and the CLI's JSON and table with a host that cannot be probed.

mod support;

use std::process::Command;

use rvbuild::builders::inventory::{self, PoolOptions, Sources};
use rvbuild::builders::model::{ModelPolicy, builder_model};
use rvbuild::builders::{Builder, Scheme};
use rvbuild::probe::{self, ProbeCache, ProbeOptions};
use rvbuild::profile::build::LocalJobs;
use rvbuild::transport::LocalTransport;
use support::{rvbuild, text};

fn stdout_of(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("run {cmd}: {e}"));
    assert!(o.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Nix's extra-platforms on this machine, as `nix show-config` says.
fn declared_extra_platforms() -> Vec<String> {
    stdout_of("nix", &["--extra-experimental-features", "nix-command", "show-config"])
        .lines()
        .find_map(|l| l.strip_prefix("extra-platforms = "))
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn local_builder() -> Builder {
    let opts =
        PoolOptions { builders: Some(String::new()), local_jobs: Some(LocalJobs::Count(2)), ..Default::default() };
    let pool = inventory::load_pool(None, &opts, &Sources::from_env()).expect("pool");
    let local = pool.into_iter().find(|b| b.scheme == Scheme::Local).expect("the local builder");
    assert_eq!(local.name, "local");
    local
}

#[test]
fn nixbuild_probe_local() {
    let builder = local_builder();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let opts = ProbeOptions::default();
    let r = rt.block_on(probe::probe(&builder, &LocalTransport::new(), &opts)).expect("probe");
    eprintln!("{}", serde_json::to_string_pretty(&r).expect("json"));

    let version_line = stdout_of("nix-store", &["--version"]);
    assert_eq!(r.nix_version.as_deref(), version_line.split_whitespace().last());
    assert_eq!(r.system.as_deref(), Some(inventory::native_system().as_str()));
    let nproc: u32 = stdout_of("nproc", &[]).trim().parse().expect("nproc");
    assert_eq!(r.cores, Some(nproc));
    assert!(r.load1.is_some_and(|l| l >= 0.0));
    assert!(r.free_disk_bytes.is_some_and(|b| b > 0));
    assert!(r.speed.is_some_and(|s| s > 0.0), "speed {:?}", r.speed);
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    // Working binfmt systems are measured whether or not Nix declares them; `declared` says which.
    let declared = declared_extra_platforms();
    for sys in ["riscv64-linux", "aarch64-linux"] {
        let e = r.emulated.get(sys).unwrap_or_else(|| panic!("{sys} missing: {:?}", r.emulated));
        assert!(e.slowdown.is_some_and(|d| d > 1.0), "{sys}: {e:?}");
        assert!(e.binfmt.is_some(), "{sys}: the qemu handler is named");
        assert_eq!(e.declared, declared.contains(&sys.to_string()), "{sys} vs extra-platforms {declared:?}");
    }
    eprintln!(
        "MEASURED speed={:.3} ns/round={:.0} riscv64 slowdown={:.2} aarch64 slowdown={:.2} ({:.1}s, load {:?})",
        r.speed.unwrap_or_default(),
        r.bench_ns_per_round.unwrap_or_default(),
        r.emulated["riscv64-linux"].slowdown.unwrap_or_default(),
        r.emulated["aarch64-linux"].slowdown.unwrap_or_default(),
        r.duration_s,
        r.load1
    );

    // The cache keeps it; the model uses the measured figures.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("probes.json");
    let mut cache = ProbeCache::load_from(&path);
    cache.insert(r.clone());
    cache.save().expect("save");
    let loaded = ProbeCache::load_from(&path);
    assert!(loaded.warning.is_none());
    let cached = loaded.get(&builder).expect("cached probe");
    // JSON floats may differ in the last bit; everything else is exact.
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
        (a, b) => a == b,
    };
    assert!(close(cached.speed, r.speed) && close(cached.load1, r.load1));
    for (sys, e) in &r.emulated {
        assert!(close(cached.emulated[sys].slowdown, e.slowdown), "{sys}");
    }
    let mut same = cached.clone();
    same.speed = r.speed;
    same.load1 = r.load1;
    same.duration_s = r.duration_s;
    same.bench_ns_per_round = r.bench_ns_per_round;
    same.emulated = r.emulated.clone();
    assert_eq!(same, r);
    let policy = ModelPolicy { undeclared_emulation: true, ..ModelPolicy::default() };
    let m = builder_model(&builder, Some(cached), &policy, r.probed_at + 5);
    assert!(m.model.local);
    assert_eq!(m.model.slots, 2);
    assert_eq!(m.model.native_systems.first(), r.system.as_ref());
    assert_eq!(m.model.speed, r.speed.expect("speed"));
    assert_eq!(m.model.emulated.get("riscv64-linux").copied(), r.emulated["riscv64-linux"].slowdown);
    assert!(m.probe.is_some_and(|a| a.age_s == 5 && !a.stale));
}

/// A remote builder gets the benchmark copied into its store over the serve protocol first. The
/// "remote" here is a chroot store on this machine (its exec runs here, where the binaries are).
#[test]
fn nixbuild_probe_uploads_the_benchmark_to_a_remote_store() {
    let mut builder = local_builder();
    builder.name = "chroot".into();
    builder.uri = "ssh://chroot".into();
    builder.scheme = Scheme::Ssh;
    let root = tempfile::tempdir().expect("tempdir");
    let transport = LocalTransport::with_store(format!("local?root={}", root.path().display()));
    let mut opts = ProbeOptions::default();
    opts.native_rounds = 2;
    opts.emulated_rounds = 1;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let r = rt.block_on(probe::probe(&builder, &transport, &opts)).expect("probe");
    assert!(!r.errors.contains_key("upload"), "{:?}", r.errors);
    assert!(r.speed.is_some_and(|s| s > 0.0));
    let bins = rt.block_on(opts.binaries());
    assert_eq!(bins.outputs.len(), 3, "{:?}", bins.errors);
    for p in bins.outputs.values() {
        let there = root.path().join(p.as_str().trim_start_matches('/')).join("bin/probe-bench");
        assert!(there.is_file(), "{} was not copied into the builder's store", there.display());
    }
}

#[test]
fn nixbuild_probe_cli_json_table_and_unreachable_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache_home = dir.path().join("cache");
    let cli = |args: &[&str]| {
        rvbuild().args(args).env("XDG_CACHE_HOME", &cache_home).current_dir(dir.path()).output().expect("run rvbuild")
    };
    let o = cli(&["builders", "probe", "local", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!((row["builder"].as_str(), row["ok"].as_bool()), (Some("local"), Some(true)), "{row}");
    let r = &row["result"];
    let version_line = stdout_of("nix-store", &["--version"]);
    assert_eq!(r["nix_version"].as_str(), version_line.split_whitespace().last());
    assert!(r["speed"].as_f64().is_some_and(|s| s > 0.0), "{r}");
    assert!(r["emulated"]["riscv64-linux"]["slowdown"].as_f64().is_some_and(|d| d > 1.0), "{r}");
    assert!(r["probed_at"].as_u64().is_some_and(|t| t > 1_600_000_000));

    // Cached for later builds; `--cached` shows it without probing.
    let file = cache_home.join("rvbuild").join("probes.json");
    let cache = ProbeCache::load_from(&file);
    assert!(cache.warning.is_none(), "{:?}", cache.warning);
    assert_eq!(cache.probes["local local"].speed, r["speed"].as_f64());
    let o = cli(&["builders", "probe", "--cached", "--builders", "ssh://nowhere.invalid x86_64-linux"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("NAME "), "{out}");
    assert!(out.lines().any(|l| l.starts_with("local ") && l.contains("x86_64-linux")), "{out}");
    assert!(out.contains("nowhere.invalid  error: never probed"), "{out}");

    // A host that cannot be probed: its row says why, the others are still probed, exit 4.
    std::fs::write(&file, "{ corrupt").expect("corrupt the cache");
    let o = cli(&["builders", "probe", "--no-benchmark", "--builders", "ssh://nowhere.invalid x86_64-linux"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().any(|l| l.starts_with("local ") && l.contains("x86_64-linux")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("nowhere.invalid  error: ") && l.contains("nowhere.invalid")), "{out}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is not a valid probe cache"), "the corrupt cache is a warning: {err}");
    assert!(err.contains("1 of 2 builders could not be probed: nowhere.invalid"), "{err}");
    // The quick probe replaced the corrupt file and kept no benchmark figures (there were none).
    let cache = ProbeCache::load_from(&file);
    assert!(cache.warning.is_none());
    assert_eq!(cache.probes["local local"].measured_at, None);
}
