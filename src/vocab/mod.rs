//! The shared vocabulary at the bottom of the layers: target architectures, build strategies
//! and placements, the work and builder model the planner and scheduler estimate with, the
//! manifest (the contract from the build to verify, flash and qemu), events and the reporter
//! that receives them, cancellation, errors with their exit codes, and rvbuild's cache
//! directory. Nothing here imports from another layer.

pub mod arch;
pub mod cancel;
pub mod error;
pub mod event;
pub mod manifest;
pub mod model;
pub mod strategy;

use std::path::PathBuf;

pub use arch::Arch;
pub use event::{Event, Reporter, Silent};
pub use manifest::Manifest;
pub use model::{Assignment, BuilderId, BuilderModel, Placement, Task, TaskId};
pub use strategy::{SplitMode, Strategy};

/// rvbuild's cache directory: `$XDG_CACHE_HOME/rvbuild` or `~/.cache/rvbuild`.
pub fn cache_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("rvbuild");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h).join(".cache").join("rvbuild");
    }
    std::env::temp_dir().join("rvbuild-cache")
}
