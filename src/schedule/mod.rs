//! Scheduling of the derivation DAG over builders (HEFT-family list scheduling): the model
//! of tasks and builders, the tasks made from the DAG, the online scheduler the build engine
//! asks what to start next, the build history behind estimates, the simulator and lower bounds
//! behind `rvbuild plan --simulate`, and the Gantt chart output.

pub mod gantt;
pub mod history;
pub mod model;
pub mod online;
pub mod simulate;
pub mod synthetic;
pub mod tasks;

pub use history::{History, Record};
pub use model::{Assignment, BuilderId, BuilderModel, Placement, Task, TaskId};
pub use online::Scheduler;
pub use simulate::{
    Bounds, Policy, Run, Schedule, ScheduledTask, SimOptions, Simulation, bounds, lower_bound, lower_bound_tight,
    simulate, simulate_with, strategy_label,
};
pub use tasks::tasks_from_dag;
