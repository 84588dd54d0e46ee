//! Scheduling of the derivation DAG over builders (HEFT-family list scheduling): the tasks
//! made from the DAG, the online scheduler the build stage asks what to start next, and the
//! simulator and lower bounds behind `rvbuild plan --simulate`.

pub mod error;
pub mod online;
pub mod simulate;
pub mod synthetic;
pub mod tasks;

pub use crate::builders::history::{History, Record};
pub use crate::vocab::model::{Assignment, BuilderId, BuilderModel, Placement, Task, TaskId, strategy_label};
pub use online::Scheduler;
pub use simulate::{
    Bounds, Run, Schedule, ScheduledTask, SimOptions, SimPolicy, Simulation, bounds, lower_bound, lower_bound_tight,
    simulate, simulate_with,
};
pub use tasks::tasks_from_dag;
