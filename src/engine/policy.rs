//! The scheduling policy the engine asks what to start next. The engine is written against
//! this trait so that the list scheduler of `crate::schedule` and the simple greedy policy
//! below (used when no estimates are wanted, and as a reference) are interchangeable.

use crate::Result;
use crate::schedule::{Assignment, BuilderId, BuilderModel, Task, TaskId};

/// Online placement: the engine reports what happened, the policy says what to start.
pub trait Policy: Send {
    /// Tasks to start now (each on a builder with a free slot).
    fn dispatch(&mut self, now: f64) -> Vec<Assignment>;
    /// `task` finished on `builder` after `elapsed` seconds.
    fn finished(&mut self, task: TaskId, builder: BuilderId, now: f64, elapsed: f64);
    /// `task` did not finish on `builder` (connection lost, transient failure): run it again.
    fn failed(&mut self, task: TaskId, builder: BuilderId, now: f64);
    /// `builder` is gone for the rest of the run. Errors when some task has no capable
    /// builder left.
    fn builder_down(&mut self, builder: BuilderId, now: f64) -> Result<()>;
    /// `builder` is reachable again.
    fn builder_up(&mut self, builder: BuilderId, now: f64);
}

/// Whether `b` can build `t` at all: its system natively or emulated (`builtin` runs
/// anywhere), the task's required features supported, the builder's mandatory features required.
pub fn capable(t: &Task, b: &BuilderModel) -> bool {
    let system_ok = t.system == "builtin" || b.native_systems.contains(&t.system) || b.emulated.contains_key(&t.system);
    system_ok
        && b.slots > 0
        && t.required_features.iter().all(|f| b.supported_features.contains(f) || b.mandatory_features.contains(f))
        && b.mandatory_features.iter().all(|f| t.required_features.contains(f))
}

/// Why `b` cannot build `t`, for error messages; None when it can.
pub fn incapable_reason(t: &Task, b: &BuilderModel) -> Option<String> {
    if b.slots == 0 {
        return Some("takes no jobs (maxJobs 0)".into());
    }
    if !(t.system == "builtin" || b.native_systems.contains(&t.system) || b.emulated.contains_key(&t.system)) {
        let mut systems = b.native_systems.clone();
        systems.extend(b.emulated.keys().cloned());
        return Some(format!("runs {}", if systems.is_empty() { "no system".into() } else { systems.join(", ") }));
    }
    let missing: Vec<&str> = t
        .required_features
        .iter()
        .filter(|f| !b.supported_features.contains(f) && !b.mandatory_features.contains(f))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Some(format!("lacks feature(s) {}", missing.join(", ")));
    }
    let mandatory: Vec<&str> =
        b.mandatory_features.iter().filter(|f| !t.required_features.contains(f)).map(String::as_str).collect();
    if !mandatory.is_empty() {
        return Some(format!("only takes derivations requiring {}", mandatory.join(", ")));
    }
    None
}

/// Greedy policy: ready tasks by upward rank (work), each to the free capable builder
/// with the shortest estimated run time. No waiting, no learning.
pub struct Greedy {
    tasks: Vec<Task>,
    builders: Vec<BuilderModel>,
    up: Vec<bool>,
    busy: Vec<u32>,
    state: Vec<State>,
    rank: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Done,
}

impl Greedy {
    pub fn new(tasks: Vec<Task>, builders: Vec<BuilderModel>) -> Greedy {
        let n = tasks.len();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, t) in tasks.iter().enumerate() {
            for &j in &t.inputs {
                if j < n {
                    dependents[j].push(i);
                }
            }
        }
        // Tasks come in any order; iterate to a fixed point (the graph is acyclic).
        let mut rank: Vec<f64> = tasks.iter().map(|t| t.work).collect();
        for _ in 0..n {
            let mut changed = false;
            for i in 0..n {
                let r = tasks[i].work + dependents[i].iter().map(|&d| rank[d]).fold(0.0, f64::max);
                if r > rank[i] {
                    rank[i] = r;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let nb = builders.len();
        Greedy { tasks, builders, up: vec![true; nb], busy: vec![0; nb], state: vec![State::Waiting; n], rank }
    }

    fn runtime(&self, t: &Task, b: &BuilderModel) -> f64 {
        let slowdown =
            if b.native_systems.contains(&t.system) { 1.0 } else { *b.emulated.get(&t.system).unwrap_or(&1.0) };
        t.work * slowdown / b.speed.max(1e-6)
    }
}

impl Policy for Greedy {
    fn dispatch(&mut self, _now: f64) -> Vec<Assignment> {
        let mut ready: Vec<TaskId> = (0..self.tasks.len())
            .filter(|&i| {
                self.state[i] == State::Waiting
                    && self.tasks[i].inputs.iter().all(|&j| self.state.get(j) == Some(&State::Done))
            })
            .collect();
        ready.sort_by(|&a, &b| self.rank[b].total_cmp(&self.rank[a]));
        let mut out = Vec::new();
        for task in ready {
            let t = &self.tasks[task];
            let best = (0..self.builders.len())
                .filter(|&b| self.up[b] && self.busy[b] < self.builders[b].slots && capable(t, &self.builders[b]))
                .min_by(|&a, &b| self.runtime(t, &self.builders[a]).total_cmp(&self.runtime(t, &self.builders[b])));
            if let Some(builder) = best {
                self.busy[builder] += 1;
                self.state[task] = State::Running;
                out.push(Assignment { task, builder });
            }
        }
        out
    }

    fn finished(&mut self, task: TaskId, builder: BuilderId, _now: f64, _elapsed: f64) {
        self.state[task] = State::Done;
        self.busy[builder] = self.busy[builder].saturating_sub(1);
    }

    fn failed(&mut self, task: TaskId, builder: BuilderId, _now: f64) {
        self.state[task] = State::Waiting;
        self.busy[builder] = self.busy[builder].saturating_sub(1);
    }

    fn builder_up(&mut self, builder: BuilderId, _now: f64) {
        if let Some(u) = self.up.get_mut(builder) {
            *u = true;
        }
    }

    fn builder_down(&mut self, builder: BuilderId, _now: f64) -> Result<()> {
        self.up[builder] = false;
        for (i, t) in self.tasks.iter().enumerate() {
            if self.state[i] != State::Done
                && !(0..self.builders.len()).any(|b| self.up[b] && capable(t, &self.builders[b]))
            {
                return Err(crate::Error::msg(
                    crate::ErrorKind::Builder,
                    format!(
                        "no builder left that can build {} ({}): {} is down",
                        t.name, t.system, self.builders[builder].name
                    ),
                ));
            }
        }
        Ok(())
    }
}
