//! Strategy planning per component (cross or target-system, native or emulated expected) and
//! its cost model: default work by kind, history, builder speed, emulation slowdown.

pub(crate) mod board;
pub(crate) mod cost;
pub(crate) mod error;
pub(crate) mod split;
pub(crate) mod strategy;

pub(crate) use strategy::ComponentPlan;
