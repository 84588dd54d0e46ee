//! Whether to spread a derivation's compile over the pool (`--split auto|never|always`) and
//! the cost model behind it. Only the host provider's kernel can be split (its builder reads
//! the helper list at run time); everything else is one derivation on one host.
//!
//! The model, for a derivation that takes `T` seconds on its owner alone:
//! a serial part `s·T` (unpack, config, link, modpost, `Image`) stays on the owner; the rest is
//! `W = (1-s)·T·n` slot-seconds of compile jobs (`n` = the owner's slots). The owner still
//! spends a share `c` of each job's work on it wherever it compiles (Kbuild's own work per
//! object, distcc's client and the transfer; in plain mode the preprocessing too). With `H`
//! helper slots (each weighted by the helper's speed relative to the owner's) the parallel
//! part takes `max(W / (n + H), c·W / n)`: the pool's whole capacity, unless the owner is the
//! bottleneck, which it was in every measurement here (`kernel_split` bench).

use serde::Serialize;

pub(crate) use crate::vocab::strategy::SplitMode;

/// Share of a kernel build that does not distribute (unpack, config, prepare, link):
/// 54 s of 378 s measured on a tinyconfig-based riscv64 kernel here.
pub(crate) const SERIAL_SHARE: f64 = 0.15;
/// Share of each compile job the owner still does: fitted to the `kernel_split` bench (pump
/// mode, 3 equal helpers: the make phase took 0.55 of the one-host one, with the owner's CPU
/// saturated and the helpers' 60 % used).
pub(crate) const OWNER_SHARE: f64 = 0.55;
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
    let parallel = (work / (n + h)).max(OWNER_SHARE * work / n);
    SplitEstimate {
        one_host_s,
        split_s: serial + parallel,
        helper_slots: h,
        helpers: helpers.iter().filter(|x| x.slots > 0).map(|x| x.name.clone()).collect(),
    }
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
    fn three_equal_helpers_cut_a_kernel_to_about_a_third() {
        let e = estimate(340.0, 2, &helpers(3, 2));
        // serial 51 s + max(289·2/(2+6) = 72.25 s, owner bound 0.55·578/2 = 158.95 s).
        assert!((e.split_s - 209.95).abs() < 0.01, "{e:?}");
        assert!(decide(SplitMode::Auto, &e));
        assert_eq!(describe("local", &e), "local + x0,x1,x2 (distcc, 6 slots)  est. 210 s  (one host: 340 s)");
    }

    #[test]
    fn the_owner_bounds_many_helpers() {
        let e = estimate(100.0, 1, &helpers(20, 4));
        // parallel = max(85/81, 0.55·85/1) = 46.75 s.
        assert!((e.split_s - 61.75).abs() < 0.01, "{e:?}");
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
        // 170 s of work over 1.5 slots (more than the owner bound 0.55·170 = 93.5 s).
        assert!((e.split_s - (30.0 + 170.0 / 1.5)).abs() < 0.01, "{e:?}");
        assert_eq!(SplitMode::parse("always"), Some(SplitMode::Always));
        assert_eq!(SplitMode::parse("sometimes"), None);
    }
}
