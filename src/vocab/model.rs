//! What the scheduler works on: tasks (one per derivation still to build, with estimated work
//! and the system and features it needs) and builder models (slots, systems run natively or
//! emulated with a slowdown, relative speed, features, link throughput to this machine).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Strategy;

/// Index of a task (the derivation's node index in the DAG being built).
pub type TaskId = usize;
/// Index of a builder in the pool given to the scheduler.
pub type BuilderId = usize;

/// One derivation to build.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    /// Derivation name without the hash (`rvbuild-linux-6.12-riscv64`): the history key.
    pub name: String,
    /// The derivation's `system` (`riscv64-linux`, or `builtin` for builtins).
    pub system: String,
    /// `requiredSystemFeatures` of the derivation.
    pub required_features: Vec<String>,
    /// Tasks whose outputs this one needs (only tasks still to build).
    pub inputs: Vec<TaskId>,
    /// Estimated seconds on a builder of speed 1.0 running the system natively.
    pub work: f64,
    /// Estimated size of the outputs' NAR in bytes (what crosses the link back).
    pub output_bytes: u64,
    /// Builders (by name) whose slots this task holds while it runs, because its compile is
    /// spread over them (`--split`); the builder running it is not among its helpers. Empty
    /// for every other task.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub helpers: Vec<String>,
}

/// One builder as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuilderModel {
    pub name: String,
    /// Concurrent builds (maxJobs); 0 = takes no work.
    pub slots: u32,
    /// Systems it runs natively.
    pub native_systems: Vec<String>,
    /// Systems it runs through emulation (extra-platforms via binfmt), with the measured or
    /// assumed slowdown factor (time emulated / time native).
    pub emulated: BTreeMap<String, f64>,
    /// Relative speed: a task of `work` seconds takes `work / speed` natively.
    pub speed: f64,
    pub supported_features: Vec<String>,
    pub mandatory_features: Vec<String>,
    /// The local machine: no transfers.
    pub local: bool,
    /// Bytes per second between this machine's store and the builder's (both ways).
    pub link_bytes_per_s: f64,
    /// Fixed cost of one remote build step (connection reuse, protocol round trips), seconds.
    pub dispatch_overhead_s: f64,
}

/// The scheduler's decision: start `task` on `builder` now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Assignment {
    pub task: TaskId,
    pub builder: BuilderId,
}

/// How a builder runs a task's system: as its own, or through emulation (binfmt qemu-user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    Native,
    Emulated,
}

impl Placement {
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Native => "native",
            Placement::Emulated => "emulated",
        }
    }
}

/// Systems every Nix builder runs whatever its platform (`builtin:fetchurl` and friends).
const BUILTIN_SYSTEM: &str = "builtin";

impl BuilderModel {
    /// How this builder would run `system`, with the slowdown factor (1.0 natively), or
    /// `None` when it cannot run it at all.
    pub fn placement(&self, system: &str) -> Option<(Placement, f64)> {
        if system == BUILTIN_SYSTEM || self.native_systems.iter().any(|s| s == system) {
            return Some((Placement::Native, 1.0));
        }
        self.emulated.get(system).map(|&f| (Placement::Emulated, if f.is_finite() && f >= 1.0 { f } else { 1.0 }))
    }

    /// Why this builder cannot take `task`, or `None` when it can.
    pub fn refusal(&self, task: &Task) -> Option<String> {
        if self.slots == 0 {
            return Some("has no build slots (maxJobs 0)".to_string());
        }
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Some(format!("has an unusable speed factor {}", self.speed));
        }
        if self.placement(&task.system).is_none() {
            let mut runs: Vec<String> = self.native_systems.clone();
            runs.extend(self.emulated.keys().map(|s| format!("{s} (emulated)")));
            let runs = if runs.is_empty() { "nothing".to_string() } else { runs.join(", ") };
            return Some(format!("does not run {} (runs {runs})", task.system));
        }
        let missing: Vec<&str> = task
            .required_features
            .iter()
            .filter(|f| !self.supported_features.contains(f) && !self.mandatory_features.contains(f))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Some(format!("lacks the required feature(s) {}", missing.join(", ")));
        }
        let unmet: Vec<&str> = self
            .mandatory_features
            .iter()
            .filter(|f| !task.required_features.contains(f))
            .map(String::as_str)
            .collect();
        if !unmet.is_empty() {
            return Some(format!("only takes derivations requiring {}", unmet.join(", ")));
        }
        None
    }

    /// Seconds to run `task` here with the declared speed and slowdown (no transfers), or
    /// `None` when the builder cannot run it.
    pub fn exec_seconds(&self, task: &Task) -> Option<f64> {
        if self.refusal(task).is_some() {
            return None;
        }
        let (_, slowdown) = self.placement(&task.system)?;
        Some(task.work.max(0.0) * slowdown / self.speed)
    }
}

/// The strategy colour of a task run on a builder: `emulated` when the builder emulates the
/// system, `native` when it runs a target system (not x86_64/i686/builtin) as its own, and
/// `cross` for derivations of the build host's system (cross compilers and host-side steps).
pub fn strategy_label(task: &Task, builder: &BuilderModel) -> Strategy {
    match builder.placement(&task.system) {
        Some((Placement::Emulated, _)) => Strategy::Emulated,
        _ if matches!(task.system.as_str(), "x86_64-linux" | "i686-linux" | "builtin") => Strategy::Cross,
        _ => Strategy::Native,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(system: &str, features: &[&str]) -> Task {
        Task {
            name: "t".into(),
            system: system.into(),
            required_features: features.iter().map(|s| s.to_string()).collect(),
            inputs: vec![],
            work: 10.0,
            output_bytes: 0,
            helpers: vec![],
        }
    }

    fn builder() -> BuilderModel {
        BuilderModel {
            name: "b".into(),
            slots: 2,
            native_systems: vec!["x86_64-linux".into()],
            emulated: BTreeMap::from([("riscv64-linux".to_string(), 8.0)]),
            speed: 2.0,
            supported_features: vec!["big-parallel".into()],
            mandatory_features: vec![],
            local: false,
            link_bytes_per_s: 1e8,
            dispatch_overhead_s: 0.1,
        }
    }

    #[test]
    fn placement_native_emulated_and_builtin() {
        let b = builder();
        assert_eq!(b.placement("x86_64-linux"), Some((Placement::Native, 1.0)));
        assert_eq!(b.placement("riscv64-linux"), Some((Placement::Emulated, 8.0)));
        assert_eq!(b.placement("builtin"), Some((Placement::Native, 1.0)));
        assert_eq!(b.placement("aarch64-linux"), None);
        assert_eq!(b.exec_seconds(&task("riscv64-linux", &[])), Some(40.0));
    }

    #[test]
    fn refusals_name_the_reason() {
        let mut b = builder();
        assert!(b.refusal(&task("aarch64-linux", &[])).is_some_and(|r| r.contains("does not run aarch64-linux")));
        assert!(b.refusal(&task("x86_64-linux", &["kvm"])).is_some_and(|r| r.contains("kvm")));
        assert_eq!(b.refusal(&task("x86_64-linux", &["big-parallel"])), None);
        b.mandatory_features = vec!["benchmark".into()];
        assert!(b.refusal(&task("x86_64-linux", &[])).is_some_and(|r| r.contains("benchmark")));
        b.slots = 0;
        assert!(b.refusal(&task("x86_64-linux", &["benchmark"])).is_some_and(|r| r.contains("slots")));
    }
}
