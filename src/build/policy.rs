//! The scheduling policy the engine asks what to start next. The engine is written against
//! this trait; the list scheduler of `crate::schedule` implements it, and tests can drive the
//! engine with a policy of their own.

use crate::Result;
use crate::builders::history::Record;
use crate::schedule::online::Scheduler;
use crate::schedule::{Assignment, BuilderId, TaskId};

/// Online placement: the engine reports what happened, the policy says what to start.
pub trait Policy: Send {
    /// Tasks to start now (each on a builder with a free slot).
    fn dispatch(&mut self, now: f64) -> Vec<Assignment>;
    /// `task` finished on `builder` after `elapsed` seconds.
    fn finished(&mut self, task: TaskId, builder: BuilderId, now: f64, elapsed: f64);
    /// `task` did not finish on `builder` (connection lost, transient failure): run it again.
    fn failed(&mut self, task: TaskId, builder: BuilderId, now: f64);
    /// `task` failed for good on `builder` and the build goes on without it: it and the tasks
    /// that need it are given up; returns those dependents.
    fn abandon(&mut self, task: TaskId, builder: BuilderId, now: f64) -> Vec<TaskId>;
    /// `builder` is gone for the rest of the run. Errors when some task has no capable
    /// builder left.
    fn builder_down(&mut self, builder: BuilderId, now: f64) -> Result<()>;
    /// `builder` is reachable again.
    fn builder_up(&mut self, builder: BuilderId, now: f64);
    /// The measured size of a finished task's outputs (NAR bytes).
    fn output_measured(&mut self, _task: TaskId, _bytes: u64) {}
    /// A transfer to or from `builder` moved `bytes` in `seconds`.
    fn link_measured(&mut self, _builder: BuilderId, _bytes: u64, _seconds: f64) {}
    /// When the running `task` is predicted to finish (on the engine's clock).
    fn predicted_finish(&self, _task: TaskId) -> Option<f64> {
        None
    }
    /// When the whole build is predicted to end, replayed on what is known at `now`.
    fn forecast(&self, _now: f64) -> Option<f64> {
        None
    }
    /// What to remember of a finished build for later estimates.
    fn history_record(&self, _task: TaskId, _builder: BuilderId, _seconds: f64, _output_bytes: u64) -> Option<Record> {
        None
    }
}

/// The list scheduler of `crate::schedule` (rank order, earliest finish, learns speeds).
impl Policy for Scheduler {
    fn dispatch(&mut self, now: f64) -> Vec<Assignment> {
        Scheduler::dispatch(self, now)
    }
    fn finished(&mut self, task: TaskId, builder: BuilderId, now: f64, elapsed: f64) {
        Scheduler::finished(self, task, builder, now, elapsed);
    }
    fn failed(&mut self, task: TaskId, builder: BuilderId, now: f64) {
        Scheduler::failed(self, task, builder, now);
    }
    fn abandon(&mut self, task: TaskId, builder: BuilderId, now: f64) -> Vec<TaskId> {
        Scheduler::abandon(self, task, builder, now)
    }
    fn builder_down(&mut self, builder: BuilderId, now: f64) -> Result<()> {
        Scheduler::builder_down(self, builder, now).map(|_| ())
    }
    fn builder_up(&mut self, builder: BuilderId, _now: f64) {
        Scheduler::builder_up(self, builder);
    }
    fn output_measured(&mut self, task: TaskId, bytes: u64) {
        Scheduler::output_measured(self, task, bytes);
    }
    fn link_measured(&mut self, builder: BuilderId, bytes: u64, seconds: f64) {
        Scheduler::link_measured(self, builder, bytes, seconds);
    }
    fn predicted_finish(&self, task: TaskId) -> Option<f64> {
        Scheduler::predicted_finish(self, task)
    }
    fn forecast(&self, now: f64) -> Option<f64> {
        Scheduler::forecast(self, now)
    }
    fn history_record(&self, task: TaskId, builder: BuilderId, seconds: f64, output_bytes: u64) -> Option<Record> {
        Scheduler::history_record(self, task, builder, seconds, output_bytes)
    }
}
