//! Synthetic, board-shaped derivation graphs and builder pools (seeded, deterministic) for the
//! scheduler benchmark (`benches/schedule_sim.rs`) and the simulator's regression tests: a
//! toolchain chain, one kernel-sized derivation with its modules, hundreds of small packages
//! with a heavy tail, and image steps that need everything.

use std::collections::BTreeMap;

use crate::vocab::model::{BuilderModel, Task};

/// Tiny deterministic xorshift64* generator (no extra crate for a benchmark).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

const MB: u64 = 1_000_000;

fn task(name: String, work: f64, inputs: Vec<usize>, output_bytes: u64) -> Task {
    Task { name, system: "x86_64-linux".into(), required_features: vec![], inputs, work, output_bytes, helpers: vec![] }
}

/// A board build (seeded): toolchain chain -> kernel -> modules; toolchain -> packages (with some
/// package-to-package dependencies and a heavy tail of sizes); image steps need everything.
/// With `toolchain_chain` false the cross toolchain is already there (the `host` provider, or a
/// substituted nixpkgs toolchain) and nothing serial precedes the fan-out.
pub fn board_dag(rng: &mut Rng, packages: usize, toolchain_chain: bool) -> Vec<Task> {
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

pub fn builder(name: &str, slots: u32, speed: f64, local: bool, link_mb: f64) -> BuilderModel {
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

pub fn pools() -> Vec<(&'static str, Vec<BuilderModel>)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{SimPolicy, lower_bound, lower_bound_tight, simulate};

    #[test]
    fn generator_is_deterministic_and_acyclic() {
        let a = board_dag(&mut Rng(7), 50, true);
        let b = board_dag(&mut Rng(7), 50, true);
        assert_eq!(a, b);
        assert_eq!(a.len(), 4 + 2 + 8 + 50 + 3);
        assert!(a.iter().enumerate().all(|(i, t)| t.inputs.iter().all(|&j| j < i)));
        assert_ne!(a, board_dag(&mut Rng(8), 50, true));
    }

    /// Benchmark 1 in small: on every pool rvbuild stays within 10% of the tight bound and
    /// beats the Nix-like policy; without a toolchain chain also within 10% of the simple bound.
    #[test]
    fn board_shaped_schedules_stay_near_the_bound() {
        for chain in [true, false] {
            let dag = board_dag(&mut Rng(0x5eed), 150, chain);
            for (label, pool) in pools() {
                let ours = simulate(&dag, &pool, SimPolicy::Rvbuild).unwrap_or_else(|e| panic!("{e}"));
                let nix = simulate(&dag, &pool, SimPolicy::NixLike).unwrap_or_else(|e| panic!("{e}"));
                let tight = lower_bound_tight(&dag, &pool);
                assert!(ours.makespan <= 1.10 * tight, "{label} chain={chain}: {} vs tight {tight}", ours.makespan);
                assert!(ours.makespan < nix.makespan, "{label} chain={chain}");
                if !chain {
                    let simple = lower_bound(&dag, &pool);
                    assert!(ours.makespan <= 1.10 * simple, "{label}: {} vs {simple}", ours.makespan);
                }
            }
        }
    }
}
