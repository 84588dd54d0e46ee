//! Strategy planning per component (cross or target-system, native or emulated expected) and
//! its cost model: default work by kind, history, builder speed, emulation slowdown.

pub mod board;
pub mod cost;
pub mod strategy;

pub use cost::{ComponentKind, DEFAULT_OUTPUT_BYTES, DEFAULT_WORK, derivation_output_bytes, derivation_work};
pub use strategy::{
    Component, ComponentPlan, Costed, PlanRequest, board_components, merge_overrides, parse_override, plan, strategies,
};
