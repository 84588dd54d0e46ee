//! Dispatch cost against Nix's own distributed build, side by side: N trivial derivations (they
//! only write a file) over 2 loopback SSH builders (real sshd, separate Nix stores), no local
//! builds, built by `nix-build --builders …` with a default ssh_config, by `nix-build` with an
//! ssh_config that multiplexes (ControlMaster/ControlPath/ControlPersist: Nix's best setup),
//! and by `rvbuild build`; fresh derivations for each run, same hosts and slots.
//!
//! Two figures, each measured for every side:
//! - latency: one slot per builder, so builds on a builder never overlap; wall × builders / N
//!   is the time one derivation costs end to end (connection, copy, build, copy back);
//! - throughput: BENCH_SLOTS slots per builder (default 2); wall / N.
//!
//! Also prints the SSH connections each run opened (counted in the hosts' sshd logs).
//! Run as root: `cargo bench --bench dispatch` (BENCH_N sets N, default 200; quick mode 8).

mod common;

use common::hosts::{self, DagSpec, HostSpec};
use common::{NixSsh, Run, quick};

const BUILDERS: usize = 2;

/// One side of one figure.
struct Side {
    label: &'static str,
    run: Run,
}

fn main() {
    quick::banner("dispatch");
    let n: usize = quick::size("BENCH_N", 200, 8);
    let slots: u32 = quick::size("BENCH_SLOTS", 2, 2);
    let specs = [
        HostSpec { max_jobs: slots.max(1), ..HostSpec::new("b1", "x86_64-linux") },
        HostSpec { max_jobs: slots.max(1), ..HostSpec::new("b2", "x86_64-linux") },
    ];
    let fleet = hosts::start(&specs);
    assert_eq!(fleet.hosts.len(), BUILDERS);
    let dir = tempfile::tempdir().expect("tempdir");
    println!("{n} trivial derivations, {BUILDERS} loopback SSH builders, no local builds");

    let mut run_no = 0;
    let mut fresh = || {
        run_no += 1;
        let d = dir.path().join(format!("run{run_no}"));
        std::fs::create_dir_all(&d).expect("mkdir");
        let f = hosts::write_dag_nix(&d, &DagSpec::flat(n, "x86_64-linux"));
        let _ = hosts::instantiate(&f);
        f
    };

    for (figure, per_host) in [("latency", 1), ("throughput", slots)] {
        let mut sides = Vec::new();
        for ssh in [NixSsh::Default, NixSsh::Multiplexed] {
            let file = fresh();
            let builders = common::nix_builders(&fleet, "x86_64-linux", per_host);
            let (run, _) = common::time_nix_build(&fleet, &file, &builders, 0, ssh);
            sides.push(Side { label: ssh.label(), run });
        }
        let file = fresh();
        let (run, events) =
            common::time_rvbuild(&fleet, &file, &common::rvbuild_builders(&fleet, "x86_64-linux", per_host), 0, &[]);
        let built = events.iter().filter(|e| e["event"] == "finished" && e["ok"] == true).count();
        assert_eq!(built, n, "rvbuild reported every derivation built");
        sides.push(Side { label: "rvbuild build", run });

        // Latency: each builder runs its share one after the other.
        let per_derivation = |r: &Run| {
            if figure == "latency" { r.secs * BUILDERS as f64 / n as f64 } else { r.secs / n as f64 }
        };
        if figure == "latency" {
            println!("latency, 1 slot per builder (ms per derivation = wall x {BUILDERS} builders / {n}):");
        } else {
            println!("throughput, {per_host} slots per builder (ms per derivation = wall / {n}):");
        }
        for s in &sides {
            println!(
                "  {:<31} {:8.2} s wall  {:7.1} ms/derivation  {:4} ssh connections",
                s.label,
                s.run.secs,
                per_derivation(&s.run) * 1000.0,
                s.run.connections
            );
        }
        let ours = sides[2].run.secs;
        for s in &sides[..2] {
            println!("  {figure} ratio rvbuild / {}: {:.3} ({:.1}x)", s.label, ours / s.run.secs, s.run.secs / ours);
        }
    }
    println!("goal: rvbuild <= 50 ms per derivation (latency figure)");
}
