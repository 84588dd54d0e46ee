//! Benchmark 1 — scheduler simulator: board-shaped derivation graphs (a toolchain chain, one
//! kernel-sized derivation with its modules, hundreds of small packages, image steps at the
//! end) on three builder pools, scheduled on estimates by rvbuild's scheduler and by a
//! Nix-like policy (greedy, remote first). Prints makespan / lower bound for each; the goal
//! for rvbuild is <= 1.10 on every pool.
//!
//! Run: `cargo bench --bench schedule_sim` (add `-- --seeds N` for more graphs per pool,
//! `--verbose` for utilisation and critical paths, `--gantt DIR` to draw the schedules; quick
//! mode: 1 graph per pool).

#[path = "common/quick.rs"]
mod quick;

use rvbuild::report::gantt;
use rvbuild::schedule::synthetic::{Rng, board_dag, pools};
use rvbuild::schedule::{BuilderModel, SimPolicy, lower_bound, lower_bound_tight, simulate};

const PACKAGES: usize = 400;

fn main() {
    quick::banner("schedule_sim");
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args
        .iter()
        .position(|a| a == "--seeds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick::on() { 1 } else { 5 });
    let verbose = args.iter().any(|a| a == "--verbose");
    // `--gantt DIR`: write the rvbuild schedule of the first graph on each pool as SVG there.
    let gantt_dir = args.iter().position(|a| a == "--gantt").and_then(|i| args.get(i + 1)).cloned();
    println!(
        "schedule_sim: {seeds} board-shaped graphs per pool ({PACKAGES} packages each); x = makespan / bound \
         (max(critical path on the fastest builder, total work / total capacity)), xtight = makespan / tight bound"
    );
    println!(
        "{:<18} {:<62} {:>7} {:>7} | {:>8} {:>6} {:>6} {:>6} {:>6} | {:>8} {:>6} {:>6}",
        "graph", "pool", "bound", "tight", "rvbuild", "x", "max", "xtight", "max", "nix-like", "x", "max"
    );
    let (mut worst, mut worst_tight) = (0.0f64, 0.0f64);
    for (shape, chain) in [("toolchain chain", true), ("toolchain present", false)] {
        for (pool_no, (label, pool)) in pools().into_iter().enumerate() {
            let (mut lb, mut lbt, mut ours, mut nix) = (0.0, 0.0, 0.0, 0.0);
            let (mut ours_max, mut tight_max, mut nix_max) = (0.0f64, 0.0f64, 0.0f64);
            for seed in 1..=seeds {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x1000_0000_01b3));
                let dag = board_dag(&mut rng, PACKAGES, chain);
                let (a, b) =
                    match (simulate(&dag, &pool, SimPolicy::Rvbuild), simulate(&dag, &pool, SimPolicy::NixLike)) {
                        (Ok(a), Ok(b)) => (a, b),
                        (Err(e), _) | (_, Err(e)) => {
                            eprintln!("simulation failed: {e}");
                            std::process::exit(1);
                        }
                    };
                if verbose && seed == 1 {
                    explain(&a, &pool);
                }
                if let (Some(dir), 1) = (&gantt_dir, seed) {
                    let file = std::path::Path::new(dir).join(format!("{}-{}.svg", shape.replace(' ', "-"), pool_no));
                    if let Err(e) = std::fs::write(&file, gantt::render_svg(&a.schedule, None)) {
                        eprintln!("cannot write {}: {e}", file.display());
                    }
                }
                let (bound, tight) = (lower_bound(&dag, &pool), lower_bound_tight(&dag, &pool));
                lb += bound;
                lbt += tight;
                ours += a.makespan;
                nix += b.makespan;
                ours_max = ours_max.max(a.makespan / bound);
                tight_max = tight_max.max(a.makespan / tight);
                nix_max = nix_max.max(b.makespan / bound);
            }
            let n = seeds as f64;
            println!(
                "{:<18} {:<62} {:>7.0} {:>7.0} | {:>8.0} {:>6.3} {:>6.3} {:>6.3} {:>6.3} | {:>8.0} {:>6.3} {:>6.3}",
                shape,
                label,
                lb / n,
                lbt / n,
                ours / n,
                ours / lb,
                ours_max,
                ours / lbt,
                tight_max,
                nix / n,
                nix / lb,
                nix_max
            );
            worst = worst.max(ours_max);
            worst_tight = worst_tight.max(tight_max);
        }
    }
    println!("worst rvbuild ratio: {worst:.3} against the simple bound, {worst_tight:.3} against the tight bound");
}

/// Per builder utilisation and the critical path of one schedule.
fn explain(a: &rvbuild::schedule::Simulation, pool: &[BuilderModel]) {
    for (bi, name) in a.schedule.builders.iter().enumerate() {
        let mine = a.schedule.entries.iter().filter(|e| e.builder == bi);
        let busy: f64 = mine.clone().map(|e| e.finish - e.start).sum();
        let last = mine.map(|e| e.finish).fold(0.0, f64::max);
        let util = busy / (f64::from(pool[bi].slots) * a.makespan);
        println!("  {name:<6} utilisation {util:.3}, last finish {last:.0}");
    }
    for e in a.schedule.entries.iter().filter(|e| e.critical) {
        let b = &a.schedule.builders[e.builder];
        println!("  critical: {:<16} on {b:<6} {:>8.1} .. {:>8.1}", e.name, e.start, e.finish);
    }
}
