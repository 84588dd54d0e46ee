//! Benchmark 1 — scheduler simulator: board-shaped derivation graphs (a toolchain chain, one
//! kernel-sized derivation with its modules, hundreds of small packages, image steps at the
//! end) on three builder pools, scheduled on estimates by rvbuild's scheduler and by a
//! Nix-like policy (greedy, remote first). Prints makespan / lower bound for each; the goal
//! for rvbuild is <= 1.10 on every pool.
//!
//! Run: `cargo bench --bench schedule_sim` (add `-- --seeds N` for more graphs per pool,
//! `--verbose` for utilisation and critical paths, `--gantt DIR` to draw the schedules).

use std::collections::BTreeMap;

use rvbuild::schedule::{BuilderModel, Policy, Task, gantt, lower_bound, lower_bound_tight, simulate};

/// Tiny deterministic xorshift64* generator (no extra crate for a benchmark).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const MB: u64 = 1_000_000;
const PACKAGES: usize = 400;

fn task(name: String, work: f64, inputs: Vec<usize>, output_bytes: u64) -> Task {
    Task { name, system: "x86_64-linux".into(), required_features: vec![], inputs, work, output_bytes }
}

/// A board build: toolchain chain -> kernel -> modules; toolchain -> packages (with some
/// package-to-package dependencies and a heavy tail of sizes); image steps need everything.
/// With `toolchain_chain` false the cross toolchain is already there (the `host` provider, or a
/// substituted nixpkgs toolchain) and nothing serial precedes the fan-out.
fn board_dag(rng: &mut Rng, packages: usize, toolchain_chain: bool) -> Vec<Task> {
    let mut t: Vec<Task> = Vec::new();
    let chain = [("binutils", 60.0), ("gcc-stage1", 150.0), ("libc", 120.0), ("gcc", 180.0)];
    if toolchain_chain {
        for (i, (name, w)) in chain.iter().enumerate() {
            let inputs = if i == 0 { vec![] } else { vec![i - 1] };
            t.push(task(format!("cross-{name}"), w * rng.range(0.8, 1.2), inputs, 200 * MB));
        }
    }
    let toolchain: Vec<usize> = t.len().checked_sub(1).into_iter().collect();
    t.push(task("linux-config".into(), 8.0, toolchain.clone(), MB));
    let kernel = t.len();
    t.push(task("linux-kernel".into(), 900.0 * rng.range(0.9, 1.1), vec![kernel - 1], 150 * MB));
    let mut finals = vec![kernel];
    for m in 0..8 {
        finals.push(t.len());
        t.push(task(format!("module-{m}"), rng.range(5.0, 20.0), vec![kernel], 2 * MB));
    }
    let first_pkg = t.len();
    for p in 0..packages {
        let mut inputs = toolchain.clone();
        let earlier = t.len() - first_pkg;
        for _ in 0..rng.below(3) {
            if earlier > 0 {
                inputs.push(first_pkg + rng.below(earlier));
            }
        }
        inputs.sort();
        inputs.dedup();
        // Mostly small, some medium, a few large (heavy tail).
        let u = rng.unit();
        let work = if u < 0.8 {
            rng.range(5.0, 40.0)
        } else if u < 0.97 {
            rng.range(40.0, 120.0)
        } else {
            rng.range(120.0, 300.0)
        };
        t.push(task(format!("pkg-{p}"), work, inputs, (rng.range(0.5, 40.0) * MB as f64) as u64));
    }
    let all_pkgs: Vec<usize> = (first_pkg..t.len()).collect();
    let rootfs = t.len();
    t.push(task("rootfs".into(), 20.0, all_pkgs, 300 * MB));
    let initramfs = t.len();
    t.push(task("initramfs".into(), 6.0, finals.clone(), 30 * MB));
    t.push(task("image".into(), 10.0, vec![rootfs, initramfs, kernel], 500 * MB));
    t
}

fn builder(name: &str, slots: u32, speed: f64, local: bool, link_mb: f64) -> BuilderModel {
    BuilderModel {
        name: name.into(),
        slots,
        native_systems: vec!["x86_64-linux".into()],
        emulated: BTreeMap::new(),
        speed,
        supported_features: vec!["big-parallel".into()],
        mandatory_features: vec![],
        local,
        link_bytes_per_s: link_mb * MB as f64,
        dispatch_overhead_s: if local { 0.0 } else { 0.5 },
    }
}

fn pools() -> Vec<(&'static str, Vec<BuilderModel>)> {
    vec![
        (
            "uniform (local + 3 remotes, 4 slots, speed 1)",
            vec![
                builder("local", 4, 1.0, true, 0.0),
                builder("r1", 4, 1.0, false, 100.0),
                builder("r2", 4, 1.0, false, 100.0),
                builder("r3", 4, 1.0, false, 100.0),
            ],
        ),
        (
            "one fast + slow ones (fast 8x3.0, 3 slow 2x0.5, local 2x1.0)",
            vec![
                builder("local", 2, 1.0, true, 0.0),
                builder("fast", 8, 3.0, false, 100.0),
                builder("slow1", 2, 0.5, false, 50.0),
                builder("slow2", 2, 0.5, false, 50.0),
                builder("slow3", 2, 0.5, false, 50.0),
            ],
        ),
        (
            "local fast + remote slow (local 8x2.0, 3 remotes 4x0.7)",
            vec![
                builder("local", 8, 2.0, true, 0.0),
                builder("r1", 4, 0.7, false, 50.0),
                builder("r2", 4, 0.7, false, 50.0),
                builder("r3", 4, 0.7, false, 50.0),
            ],
        ),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args
        .iter()
        .position(|a| a == "--seeds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
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
                let (a, b) = match (simulate(&dag, &pool, Policy::Rvbuild), simulate(&dag, &pool, Policy::NixLike)) {
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
