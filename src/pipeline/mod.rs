//! The board pipeline, assembled in one place: profile → plan → nix → schedule → build →
//! verify, with the manifest written for flash and qemu. `rvbuild board`, `plan`, `qemu` and
//! `flash` are requests to it; the CLI only maps arguments to requests and renders results.

mod board;
pub(crate) mod error;
pub(crate) mod flash;
mod manifest;
mod plan;
mod qemu;
mod request;
pub(crate) mod split;
mod stages;
mod verify;

pub use board::{BoardBuild, build};
pub use flash::{FlashRequest, Flashed, flash};
pub use plan::{PlanReport, PlanRow, plan};
pub use qemu::{BootRequest, Booted, boot, qemu_command};
pub use request::Request;
pub(crate) use request::default_out_dir;
pub use verify::verify_outputs;
