//! Dispatch overhead and throughput against Nix's own distributed build, side by side:
//! 200 trivial derivations over 2 loopback SSH builders (real sshd, separate Nix stores), once
//! with `nix-build --builders …` and once with `rvbuild build`, same hosts, same slots, no
//! local builds. Prints rvbuild's overhead per derivation (wall time minus the ideal, which is
//! ~0 for derivations that only write a file, over 200) and the ratio of wall times.
//! Run as root: `cargo bench --bench dispatch` (BENCH_N sets the count, BENCH_SLOTS the slots per host).

mod common;

use common::hosts::{self, DagSpec, HostSpec};

fn main() {
    let n: usize = std::env::var("BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let slots: u32 = std::env::var("BENCH_SLOTS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let specs = [
        HostSpec { max_jobs: slots, ..HostSpec::new("b1", "x86_64-linux") },
        HostSpec { max_jobs: slots, ..HostSpec::new("b2", "x86_64-linux") },
    ];
    let fleet = hosts::start(&specs);
    let dir = tempfile::tempdir().expect("tempdir");

    let nix_dir = dir.path().join("nix");
    let rv_dir = dir.path().join("rvbuild");
    for d in [&nix_dir, &rv_dir] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    // The same shape, fresh derivations for each tool (nothing cached on either side).
    let nix_file = hosts::write_dag_nix(&nix_dir, &DagSpec::flat(n, "x86_64-linux"));
    let rv_file = hosts::write_dag_nix(&rv_dir, &DagSpec::flat(n, "x86_64-linux"));
    for f in [&nix_file, &rv_file] {
        let _ = hosts::instantiate(f);
    }

    let (nix, _) = common::time_nix_build(&fleet, &nix_file, &common::nix_builders(&fleet, "x86_64-linux", slots), 0);
    let (rv, events) = common::time_rvbuild(&rv_file, &common::rvbuild_builders(&fleet, "x86_64-linux", slots), 0, &[]);
    let remote = events.iter().filter(|e| e["event"] == "finished" && e["ok"] == true).count();
    assert_eq!(remote, n, "rvbuild built every derivation");

    let total_slots = 2 * slots as usize;
    println!("dispatch: {n} trivial derivations, 2 loopback SSH builders x {slots} slots, no local builds");
    println!("  nix-build --builders   {nix:8.2} s   {:6.1} ms/derivation", nix * 1000.0 / n as f64);
    println!("  rvbuild build          {rv:8.2} s   {:6.1} ms/derivation", rv * 1000.0 / n as f64);
    println!(
        "  rvbuild dispatch overhead: {:.1} ms per derivation (wall / {n}; ideal ~0 s of build work over {total_slots} slots; goal <= 50 ms)",
        rv * 1000.0 / n as f64
    );
    println!("  ratio rvbuild / nix-build: {:.3} ({:.1}x faster)", rv / nix, nix / rv);
}
