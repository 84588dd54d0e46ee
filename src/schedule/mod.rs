//! Scheduling of the derivation DAG over builders (HEFT-family list scheduling): the model
//! of tasks and builders, the online scheduler the build engine asks what to start next, the
//! simulator and lower bound behind `rvbuild plan --simulate`, and the Gantt chart output.

pub mod gantt;
pub mod history;
pub mod model;

pub use model::{Assignment, BuilderId, BuilderModel, Placement, Task, TaskId};
pub mod online;

pub use online::Scheduler;
pub mod simulate;
pub mod tasks;

pub use simulate::{
    Bounds, Policy, Run, Schedule, ScheduledTask, Simulation, bounds, lower_bound, lower_bound_tight, simulate,
};
pub use tasks::tasks_from_dag;
