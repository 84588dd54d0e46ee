//! `rvbuild builders probe` over SSH against the loopback fleet: each host's own Nix
//! settings (its `system`, its `extra-platforms`), the benchmark uploaded into the host's
//! store and run there natively and under emulation, and the results cached for later builds.

mod support;

use std::fs;

use serde_json::Value;
use support::hosts;
use support::{rvbuild, text};

#[test]
fn ssh_probe_measures_each_host_of_the_fleet() {
    let fleet = hosts::start(hosts::STANDARD);
    let dir = tempfile::tempdir().expect("tempdir");
    let machines = fleet.machines_file();
    // The fleet only, with a private HOME (its cache) and nix.conf directory.
    let probe = |flag: &str| {
        rvbuild()
            .args(["builders", "probe", flag, "--local-jobs", "0"])
            .arg(format!("--builders=@{}", machines.display()))
            .env("HOME", dir.path())
            .env("RVBUILD_NIX_CONF_DIR", dir.path())
            .current_dir(dir.path())
            .output()
            .expect("run rvbuild builders probe")
    };
    let o = probe("--json");
    assert!(o.status.success(), "{}", text(&o));
    let rows: Value = serde_json::from_slice(&o.stdout).expect("JSON rows");
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 2, "{rows:?}");
    let row_of = |name: &str| {
        let h = fleet.host(name);
        let uri_part = format!("{}:{}", h.addr, h.port);
        rows.iter()
            .find(|r| r["uri"].as_str().unwrap_or_default().contains(&uri_part))
            .unwrap_or_else(|| panic!("no row for {name}: {rows:?}"))
            .clone()
    };
    let nix_version = String::from_utf8_lossy(
        &std::process::Command::new("nix-store").arg("--version").output().expect("nix-store").stdout,
    )
    .split_whitespace()
    .last()
    .unwrap_or_default()
    .to_string();

    let rv = row_of("rv");
    assert_eq!(rv["ok"], true, "{rv}");
    assert_eq!(rv["result"]["system"], "riscv64-linux", "rv reports its own nix.conf: {rv}");
    assert_eq!(rv["result"]["nix_version"], nix_version.as_str());

    let emu = row_of("emu");
    assert_eq!(emu["ok"], true, "{emu}");
    assert_eq!(emu["result"]["system"], "x86_64-linux");
    let declared: Vec<&str> = emu["result"]["extra_platforms"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    assert!(declared.contains(&"riscv64-linux") && declared.contains(&"aarch64-linux"), "{emu}");
    let speed = emu["result"]["speed"].as_f64().unwrap_or(0.0);
    assert!(speed > 0.0, "a measured speed: {emu}");
    let slowdown = emu["result"]["emulated"]["riscv64-linux"]["slowdown"].as_f64().unwrap_or(0.0);
    assert!(slowdown > 1.0, "riscv64 under qemu-user is slower than native: {emu}");
    // The host has this machine's target-system userlands at the same path (it shares the
    // filesystem outside /nix), with the same stamp.
    let local_id = rvbuild::builders::userland::find(rvbuild::profile::Arch::Riscv64).expect("riscv64 userland").id;
    assert_eq!(emu["result"]["userlands"]["riscv64-linux"], local_id.as_str(), "{emu}");
    // The benchmark was uploaded into the host's own store and ran from there.
    let store: Vec<String> = fs::read_dir(fleet.host("emu").root.join("store"))
        .expect("emu's store")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert!(store.iter().any(|n| n.contains("probe")), "benchmark binaries in emu's store: {store:?}");

    // Cached with a timestamp, and shown without connecting.
    let cache = fs::read_to_string(dir.path().join(".cache/rvbuild/probes.json")).expect("probe cache");
    assert!(cache.contains("riscv64-linux"), "{cache}");
    let o = probe("--cached");
    assert!(o.status.success(), "{}", text(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("riscv64-linux"), "{table}");
}
