//! The scheduler on real builds, side by side with Nix: a board-shaped graph of 44 sleep
//! derivations (sources, a toolchain chain, one long "kernel", 30 packages, modules, initramfs,
//! image) on 2 loopback SSH builders with 2 slots each plus the local machine with 2 slots,
//! built once by `nix-build --builders …` and once by `rvbuild build`. One remote host is
//! slower (its builds sleep N times longer, read from a file on that host); both are declared
//! with speed 1, so rvbuild only knows what it measures during the run (fresh cache, no
//! history). Run twice, with the slow host first and then second in the machines list, since
//! Nix breaks ties by list order. Prints wall times, the ratio rvbuild / Nix for each order,
//! and where the kernel ran.
//! Run as root: `cargo bench --bench schedule_real` (BENCH_SLOWDOWN sets N, default 4).

mod common;

use std::collections::BTreeMap;

use common::Sleep;
use common::hosts::{self, HostSpec};

/// The graph: (name, seconds, deps by index).
fn board_graph() -> Vec<Sleep> {
    let mut g: Vec<Sleep> = Vec::new();
    let mut add = |name: String, seconds: f64, deps: Vec<usize>| {
        g.push(Sleep { name, seconds, deps });
        g.len() - 1
    };
    let srcs: Vec<usize> = (0..6).map(|i| add(format!("src-{i}"), 1.0, vec![])).collect();
    let tc1 = add("toolchain-binutils".into(), 2.0, vec![srcs[0]]);
    let tc2 = add("toolchain-gcc".into(), 2.0, vec![tc1]);
    let tc3 = add("toolchain-libc".into(), 2.0, vec![tc2]);
    let kernel = add("kernel".into(), 24.0, vec![tc3, srcs[1]]);
    let pkgs: Vec<usize> =
        (0..30).map(|i| add(format!("pkg-{i}"), [1.5, 2.0, 3.0][i % 3], vec![tc3, srcs[i % 6]])).collect();
    let m1 = add("module-a".into(), 2.0, vec![kernel]);
    let m2 = add("module-b".into(), 2.0, vec![kernel]);
    let mut deps = pkgs.clone();
    deps.extend([m1, m2]);
    let initramfs = add("initramfs".into(), 1.0, deps);
    add("image".into(), 1.0, vec![initramfs, kernel]);
    g
}

/// Host that ran `kernel` according to Nix's stderr (`building '…-kernel.drv' on 'ssh://fast'`).
fn nix_kernel_host(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.contains("-kernel.drv'") && l.contains(" on '"))
        .and_then(|l| l.rsplit(" on '").next())
        .map(|h| h.trim_end_matches(['\'', '.']).trim_start_matches("ssh://").to_string())
        .unwrap_or_else(|| "local".into())
}

fn main() {
    let slowdown: f64 = std::env::var("BENCH_SLOWDOWN").ok().and_then(|v| v.parse().ok()).unwrap_or(4.0);
    let graph = board_graph();
    let work: f64 = graph.iter().map(|n| n.seconds).sum();
    println!(
        "schedule_real: {} sleep derivations ({work:.0} s of work at speed 1; kernel 24 s), 2 SSH builders x 2 slots + local x 2; one remote {slowdown}x slower",
        graph.len()
    );
    let mut ratios = Vec::new();
    for slow_first in [true, false] {
        let specs = [HostSpec::new("fast", "x86_64-linux"), HostSpec::new("slow", "x86_64-linux")];
        let mut fleet = hosts::start(&specs);
        if slow_first {
            fleet.hosts.reverse();
        }
        std::fs::write(fleet.host("slow").root.join("slowdown"), format!("{slowdown}\n")).expect("slowdown file");
        let order: Vec<String> = fleet.hosts.iter().map(|h| h.name.clone()).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let nix_file = common::write_sleep_dag(dir.path(), &graph, &common::nonce());
        let rv_file = common::write_sleep_dag(dir.path(), &graph, &common::nonce());
        let (nix, nix_err) =
            common::time_nix_build(&fleet, &nix_file, &common::nix_builders(&fleet, "x86_64-linux", 2), 2);
        let (rv, events) = common::time_rvbuild(&rv_file, &common::rvbuild_builders(&fleet, "x86_64-linux", 2), 2, &[]);
        let mut per_host: BTreeMap<String, (usize, f64)> = BTreeMap::new();
        let mut rv_kernel = String::new();
        let name_of = |b: &str| {
            fleet
                .hosts
                .iter()
                .find(|h| b == format!("{}:{}", h.addr, h.port))
                .map(|h| h.name.clone())
                .unwrap_or_else(|| b.to_string())
        };
        for e in events.iter().filter(|e| e["event"] == "finished" && e["ok"] == true) {
            let host = name_of(e["host"].as_str().unwrap_or("?"));
            if e["component"] == "kernel" {
                rv_kernel = host.clone();
            }
            let entry = per_host.entry(host).or_default();
            entry.0 += 1;
            entry.1 += e["seconds"].as_f64().unwrap_or(0.0);
        }
        println!("machines order: {}", order.join(", "));
        println!("  nix-build --builders  {nix:7.1} s   kernel on {}", nix_kernel_host(&nix_err));
        println!("  rvbuild build         {rv:7.1} s   kernel on {rv_kernel}");
        for (h, (n, s)) in &per_host {
            println!("    rvbuild on {h:<6} {n:3} derivations, {s:6.1} s busy");
        }
        println!("  ratio rvbuild / nix-build: {:.3}", rv / nix);
        ratios.push(rv / nix);
    }
    let geo = ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64;
    println!("ratio rvbuild / nix-build, geometric mean of both orders: {:.3} (goal <= 0.5)", geo.exp());
}
