//! rvbuild: builds Linux images for RISC-V and ARM64 boards from declarative board profiles
//! with Nix, checks the outputs and flashes them.
//!
//! The modules are layers, listed here bottom first; a module imports only from the ones above
//! it in this list (docs/architecture.md, enforced by tests/architecture.rs).

pub mod build;
pub mod builders;
pub mod cli;
pub mod doctor;
pub mod flash;
pub mod nix;
pub mod pipeline;
pub mod plan;
pub mod probe;
pub mod profile;
pub mod qemu;
pub mod report;
pub mod schedule;
pub mod transport;
pub mod verify;
pub mod vocab;

pub use vocab::error::{Error, ErrorKind, Result};
