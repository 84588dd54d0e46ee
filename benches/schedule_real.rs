//! The scheduler on real builds, side by side with Nix: a board-shaped graph of 44 sleep
//! derivations (sources, a toolchain chain, one long "kernel", 30 packages, modules, initramfs,
//! image) on 2 loopback SSH builders with 2 slots each plus the local machine with 2 slots,
//! built by `nix-build --builders …` (default ssh_config, then a multiplexing one with
//! ControlMaster/ControlPath/ControlPersist) and by `rvbuild build`, fresh derivations each.
//! Three pools: one remote host slower (its builds sleep N times longer, read from a file on
//! that host) listed first, the same listed second (Nix breaks ties by list order), and two
//! equal hosts (where list order costs Nix nothing). Every host is declared with speed 1, so
//! rvbuild only knows what it measures during the run (fresh cache, no history). Prints wall
//! times, where the kernel ran, the ratio rvbuild / Nix per pool and the geometric means; the
//! goal (<= 0.5) is judged on the geometric mean of the three pools against the multiplexed Nix.
//! Run as root: `cargo bench --bench schedule_real` (BENCH_SLOWDOWN sets N, default 4;
//! BENCH_SCALE multiplies every sleep, default 1; quick mode: 0.1, 6 packages instead of 30,
//! and only the multiplexed Nix).

mod common;

use std::collections::BTreeMap;

use common::hosts::{self, HostSpec};
use common::{NixSsh, Sleep, quick};

/// The graph with `packages` packages (30 in full mode: 44 derivations).
fn board_graph(packages: usize) -> Vec<Sleep> {
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
        (0..packages).map(|i| add(format!("pkg-{i}"), [1.5, 2.0, 3.0][i % 3], vec![tc3, srcs[i % 6]])).collect();
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

/// A pool of the run: its label and, per host name, the slowdown written on that host.
struct Pool {
    label: &'static str,
    /// Host names in machines-list order, each with its slowdown (1 = none).
    hosts: [(&'static str, f64); 2],
}

fn main() {
    quick::banner("schedule_real");
    let slowdown: f64 = quick::size("BENCH_SLOWDOWN", 4.0, 4.0);
    // Quick mode: the same shape with fewer packages and every sleep scaled down, against
    // the multiplexed Nix only.
    let scale: f64 = quick::size("BENCH_SCALE", 1.0, 0.1);
    let mut graph = board_graph(if quick::on() { 6 } else { 30 });
    for n in &mut graph {
        n.seconds *= scale;
    }
    let work: f64 = graph.iter().map(|n| n.seconds).sum();
    let kernel = graph.iter().find(|n| n.name == "kernel").map_or(0.0, |n| n.seconds);
    println!(
        "{} sleep derivations ({work:.1} s of work at speed 1; kernel {kernel:.1} s), 2 SSH builders x 2 slots + local x 2",
        graph.len()
    );
    let pools = [
        Pool { label: "slow host first", hosts: [("slow", slowdown), ("fast", 1.0)] },
        Pool { label: "fast host first", hosts: [("fast", 1.0), ("slow", slowdown)] },
        Pool { label: "equal hosts", hosts: [("a", 1.0), ("b", 1.0)] },
    ];
    let sides: &[NixSsh] = if quick::on() { &[NixSsh::Multiplexed] } else { &[NixSsh::Default, NixSsh::Multiplexed] };
    // ratios[side][pool] = rvbuild / that Nix side.
    let mut ratios = vec![Vec::new(); sides.len()];
    for pool in &pools {
        let specs = pool.hosts.map(|(name, _)| HostSpec::new(name, "x86_64-linux"));
        let fleet = hosts::start(&specs);
        for (name, factor) in pool.hosts {
            if factor != 1.0 {
                std::fs::write(fleet.host(name).root.join("slowdown"), format!("{factor}\n")).expect("slowdown file");
            }
        }
        let hosts_desc: Vec<String> = pool.hosts.iter().map(|(n, f)| format!("{n} ({f}x)")).collect();
        println!("pool: {}: machines list {}", pool.label, hosts_desc.join(", "));
        let dir = tempfile::tempdir().expect("tempdir");
        let mut nix_runs = Vec::new();
        for &ssh in sides {
            let file = common::write_sleep_dag(dir.path(), &graph, &common::nonce());
            let (run, err) =
                common::time_nix_build(&fleet, &file, &common::nix_builders(&fleet, "x86_64-linux", 2), 2, ssh);
            println!(
                "  {:<30} {:7.1} s   kernel on {:<5} {:3} ssh connections",
                ssh.label(),
                run.secs,
                nix_kernel_host(&err),
                run.connections
            );
            nix_runs.push(run);
        }
        let rv_file = common::write_sleep_dag(dir.path(), &graph, &common::nonce());
        let (rv, events) =
            common::time_rvbuild(&fleet, &rv_file, &common::rvbuild_builders(&fleet, "x86_64-linux", 2), 2, &[]);
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
        let built: usize = per_host.values().map(|(n, _)| n).sum();
        assert_eq!(built, graph.len(), "rvbuild reported every derivation built");
        println!(
            "  {:<30} {:7.1} s   kernel on {:<5} {:3} ssh connections",
            "rvbuild build", rv.secs, rv_kernel, rv.connections
        );
        for (h, (n, s)) in &per_host {
            println!("    rvbuild on {h:<6} {n:3} derivations, {s:6.1} s busy");
        }
        for (i, ssh) in sides.iter().enumerate() {
            let r = rv.secs / nix_runs[i].secs;
            println!("  ratio rvbuild / {}: {r:.3}", ssh.label());
            ratios[i].push(r);
        }
    }
    let geo = |rs: &[f64]| (rs.iter().map(|r| r.ln()).sum::<f64>() / rs.len() as f64).exp();
    for (i, ssh) in sides.iter().enumerate() {
        println!(
            "ratio rvbuild / {}: geometric mean of the 3 pools {:.3}, of the 2 orders of unequal hosts {:.3}",
            ssh.label(),
            geo(&ratios[i]),
            geo(&ratios[i][..2])
        );
    }
    if let Some(i) = sides.iter().position(|&s| s == NixSsh::Multiplexed) {
        println!("goal: geometric mean of the 3 pools against {} <= 0.5: {:.3}", sides[i].label(), geo(&ratios[i]));
    }
}
