//! What the scheduler works on: tasks (one per derivation still to build, with estimated work
//! and the system and features it needs) and builder models (slots, systems run natively or
//! emulated with a slowdown, relative speed, features, link throughput to this machine).

use std::collections::BTreeMap;

use serde::Serialize;

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
