#![warn(unreachable_pub)]
//! rvbuild: builds Linux images for RISC-V and ARM64 boards from declarative board profiles
//! with Nix, spreads the builds over a pool of builders, checks every output's architecture
//! and flashes the result over a serial line.
//!
//! # Library use
//!
//! The facade is a handful of calls, each taking a request and a [`Reporter`] that receives
//! the events a run produces (the library never prints):
//!
//! - [`build_board`]: a board's pipeline end to end (plan, Nix, schedule, build, verify), the
//!   manifest written into the output directory;
//! - [`plan_board`]: the per-component plan and the predicted schedule, building nothing;
//! - [`boot_board`]: the QEMU boot smoke test of a board's build;
//! - [`verify`]: the ELF/image checks of files against an [`Expectation`];
//! - [`flash_board`]: a board's images written over its serial console, each region read back.
//!
//! The building blocks below them are public too, for tools that need one layer: the Nix
//! formats and serve client ([`nix`]), transports ([`transport`]), the build engine ([`build`]), the builder pool
//! ([`builders`]), probes ([`probe`]), the scheduler and simulator ([`schedule`]), the serial
//! protocols ([`flash`]), the serial console ([`monitor`]), the lab exports ([`lab`]) and the
//! checks ([`verify`](mod@verify)).
//!
//! # Layers
//!
//! The modules are layers, listed here bottom first; a module imports only from the ones above
//! it in this list (docs/architecture.md, enforced by tests/architecture.rs).

pub mod build;
pub mod builders;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
pub mod doctor;
pub mod flash;
pub mod lab;
pub mod monitor;
pub mod nix;
pub(crate) mod pipeline;
pub(crate) mod plan;
pub mod probe;
pub mod profile;
pub(crate) mod qemu;
#[cfg(feature = "cli")]
pub mod report;
pub mod schedule;
pub mod transport;
pub mod verify;
pub mod vocab;

pub use pipeline::{
    BoardBuild, BootRequest, Booted, FlashRequest, Flashed, PlanReport, PlanRow, Request, boot as boot_board,
    build as build_board, flash as flash_board, plan as plan_board, qemu_command, verify_outputs,
};
pub use verify::{Expectation, Report as VerifyReport, verify_paths as verify};
pub use vocab::error::{Error, ErrorKind, Result};
pub use vocab::{Event, Manifest, Reporter};
