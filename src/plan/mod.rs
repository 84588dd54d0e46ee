//! Strategy planning per component (cross or target-system, native or emulated expected) and
//! its cost model: default work by kind, history, builder speed, emulation slowdown.

pub mod board;
pub mod cost;
pub mod error;
pub mod strategy;

pub use strategy::ComponentPlan;
