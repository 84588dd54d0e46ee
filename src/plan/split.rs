//! Whether to spread a derivation's compile over the pool (`--split auto|never|always`) and
//! the cost model behind it. Only the host provider's kernel can be split (its builder reads
//! the helper list at run time); everything else is one derivation on one host.
//!
//! The model, for a derivation that takes `T` seconds on its owner alone:
//! a serial part `s·T` (unpack, config, link, modpost, `Image`) stays on the owner; the rest is
//! `W = (1-s)·T·n` slot-seconds of compile jobs (`n` = the owner's slots). A job sent to a
//! helper costs the helper `h` times what it costs the owner to compile it (in pump mode the
//! helper preprocesses too, and distccd and the SSH channel cost something), and costs the
//! owner a share `c` of it (Kbuild's own work per object, distcc's client, the include server,
//! the transfer). The owner compiles with what its slots have left. With `H` helper slots
//! (each weighted by the helper's speed relative to the owner's), the owner keeps a share
//! `1-f` of the jobs such that both sides finish together:
//! `(1 - f + c·f)·W/n = h·f·W/H`, so the parallel part takes `W·a·b / (b + a·(1-c))` with
//! `a = 1/n`, `b = h/H`; when even `f = 1` leaves the owner the bottleneck (`b < a·c`) it
//! takes `c·W/n`.

use serde::Serialize;

pub(crate) use crate::vocab::strategy::SplitMode;

/// Share of a kernel build that does not distribute (unpack, config, prepare, link): on the
/// tinyconfig-based riscv64 kernel, 37 s of 406 s outside make, plus make's own prepare and
/// link steps.
pub(crate) const SERIAL_SHARE: f64 = 0.15;
/// What a job costs a helper slot, relative to the owner compiling it: the `kernel_split`
/// bench (pump mode, 3 helpers as fast as the owner) measured 0.28 to 0.31 CPU seconds per job
/// on a helper against about 0.24 on the owner alone; with it the model predicts 186 s where
/// that bench measured 183 s.
pub(crate) const HELPER_COST: f64 = 1.25;
/// Share of a job's work the owner still does when a helper compiles it (the same bench, CPU
/// seconds counted per participant: about 0.065 of 0.24).
pub(crate) const OWNER_SHARE: f64 = 0.27;
/// Auto splits only when it saves at least this many seconds...
pub(crate) const MIN_GAIN_S: f64 = 30.0;
/// ...and at least this share of the one-host time.
pub(crate) const MIN_GAIN_SHARE: f64 = 0.2;

/// A possible helper: its name, compile slots and speed relative to the owner's.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HelperModel {
    pub(crate) name: String,
    pub(crate) slots: u32,
    pub(crate) relative_speed: f64,
}

/// The model's prediction for one derivation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SplitEstimate {
    /// Seconds on the owner alone.
    pub(crate) one_host_s: f64,
    /// Seconds split over the owner and the helpers.
    pub(crate) split_s: f64,
    /// Helper slots weighted by speed.
    pub(crate) helper_slots: f64,
    pub(crate) helpers: Vec<String>,
}

/// The predicted wall time of a derivation of `one_host_s` on an owner with `owner_slots`,
/// split over `helpers`.
pub(crate) fn estimate(one_host_s: f64, owner_slots: u32, helpers: &[HelperModel]) -> SplitEstimate {
    let n = f64::from(owner_slots.max(1));
    let h: f64 = helpers.iter().map(|x| f64::from(x.slots) * x.relative_speed.max(0.0)).sum();
    let serial = SERIAL_SHARE * one_host_s;
    let work = (one_host_s - serial) * n;
    let parallel = parallel_s(work, n, h);
    SplitEstimate {
        one_host_s,
        split_s: serial + parallel,
        helper_slots: h,
        helpers: helpers.iter().filter(|x| x.slots > 0).map(|x| x.name.clone()).collect(),
    }
}

/// Seconds to compile `work` slot-seconds of jobs on an owner with `n` slots and `h` weighted
/// helper slots, each side doing the share that makes both finish together.
fn parallel_s(work: f64, n: f64, h: f64) -> f64 {
    if h <= 0.0 {
        return work / n;
    }
    let (a, b) = (1.0 / n, HELPER_COST / h);
    if b < a * OWNER_SHARE { OWNER_SHARE * work / n } else { work * a * b / (b + a * (1.0 - OWNER_SHARE)) }
}

/// Whether to split under `mode`: `always` with any helper, `auto` when the model predicts
/// enough of a gain.
pub(crate) fn decide(mode: SplitMode, est: &SplitEstimate) -> bool {
    if est.helpers.is_empty() {
        return false;
    }
    match mode {
        SplitMode::Never => false,
        SplitMode::Always => true,
        SplitMode::Auto => {
            let gain = est.one_host_s - est.split_s;
            gain >= MIN_GAIN_S && gain >= MIN_GAIN_SHARE * est.one_host_s
        }
    }
}

/// The plan's text for a split: `local + x1,x2 (distcc, 6 slots)  est. 95 s  (one host: 330 s)`.
pub(crate) fn describe(owner: &str, est: &SplitEstimate) -> String {
    format!(
        "{owner} + {} (distcc, {:.0} slots)  est. {:.0} s  (one host: {:.0} s)",
        est.helpers.join(","),
        est.helper_slots,
        est.split_s,
        est.one_host_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn helpers(n: usize, slots: u32) -> Vec<HelperModel> {
        (0..n).map(|i| HelperModel { name: format!("x{i}"), slots, relative_speed: 1.0 }).collect()
    }

    #[test]
    fn three_equal_helpers_cut_a_kernel_to_about_half() {
        let e = estimate(340.0, 2, &helpers(3, 2));
        // serial 51 s; 578 slot-s of jobs, a = 1/2, b = 1.25/6:
        // 578·a·b / (b + a·0.73) = 105.0 s.
        assert!((e.split_s - 156.0145).abs() < 0.01, "{e:?}");
        assert!(decide(SplitMode::Auto, &e));
        assert_eq!(describe("local", &e), "local + x0,x1,x2 (distcc, 6 slots)  est. 156 s  (one host: 340 s)");
    }

    #[test]
    fn both_sides_finish_together() {
        // The share f the helpers get makes the owner's time equal theirs.
        let (work, n, h) = (600.0, 2.0, 6.0);
        let t = parallel_s(work, n, h);
        let f = t * h / (HELPER_COST * work);
        let owner = ((1.0 - f) + OWNER_SHARE * f) * work / n;
        assert!((owner - t).abs() < 1e-9 && f > 0.0 && f < 1.0, "t {t}, f {f}, owner {owner}");
        assert_eq!(parallel_s(work, n, 0.0), 300.0);
    }

    #[test]
    fn the_owner_bounds_many_helpers() {
        let e = estimate(100.0, 1, &helpers(20, 4));
        // b = 1.25/80 < a·c = 0.27: every job goes out and preparing them takes 0.27·85 s.
        assert!((e.split_s - 37.95).abs() < 0.01, "{e:?}");
    }

    #[test]
    fn small_derivations_and_no_helpers_stay_whole() {
        let small = estimate(20.0, 2, &helpers(3, 2));
        assert!(!decide(SplitMode::Auto, &small), "{small:?}");
        assert!(decide(SplitMode::Always, &small));
        let none = estimate(340.0, 2, &[]);
        assert_eq!(none.split_s, 340.0);
        assert!(!decide(SplitMode::Always, &none));
        assert!(!decide(SplitMode::Never, &estimate(340.0, 2, &helpers(3, 2))));
    }

    #[test]
    fn slow_helpers_count_for_less() {
        let slow = vec![HelperModel { name: "s".into(), slots: 4, relative_speed: 0.125 }];
        let e = estimate(200.0, 1, &slow);
        assert_eq!(e.helper_slots, 0.5);
        // 170 s of work, a = 1, b = 1.25/0.5: 170·2.5 / (2.5 + 0.73) = 131.6 s.
        assert!((e.split_s - (30.0 + 170.0 * 2.5 / 3.23)).abs() < 0.01, "{e:?}");
        assert_eq!(SplitMode::parse("always"), Some(SplitMode::Always));
        assert_eq!(SplitMode::parse("sometimes"), None);
    }
}
