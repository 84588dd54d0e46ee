//! rvbuild: builds Linux images for RISC-V and ARM64 boards from declarative board profiles
//! with Nix, checks the outputs and flashes them. The stages follow the data flow of DESIGN.md:
//! profile -> plan -> nix -> schedule -> build -> verify -> flash -> qemu, with events to report.

pub mod board_build;
pub mod builders;
pub mod cli;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod flash;
pub mod nix;
pub mod plan;
pub mod profile;
pub mod qemu;
pub mod report;
pub mod schedule;
pub mod signals;
pub mod transport;
pub mod verify;

pub use error::{Error, ErrorKind, Result};
