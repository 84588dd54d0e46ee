//! What can go wrong while planning: overrides that conflict or that the pool cannot honour,
//! and components no builder can build.

use miette::Diagnostic;

use crate::vocab::Strategy;
use crate::{Error, ErrorKind};

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum PlanError {
    #[error("conflicting strategies for group {group}: {by}={first} and {component}={second}")]
    #[diagnostic(
        code(rvbuild::plan::conflicting_group),
        help("a kernel and its modules must be built the same way; force the whole group with {group}=STRATEGY")
    )]
    ConflictingGroup { group: String, by: String, first: Strategy, component: String, second: Strategy },

    /// `needs_toolchain`: the override fails for want of a toolchain on this machine (a usage
    /// problem), not for want of a builder.
    #[error("{key} is forced to {strategy} (system {system}) but {why}{hosts}")]
    #[diagnostic(
        code(rvbuild::plan::impossible_override),
        help(
            "drop the override or pick another strategy (--strategy COMPONENT=cross|native|emulated), or add a builder that can"
        )
    )]
    ImpossibleOverride {
        key: String,
        strategy: Strategy,
        system: String,
        why: String,
        hosts: String,
        needs_toolchain: bool,
    },

    #[error("{key} (system {system}) cannot be built: {why}{hosts}")]
    #[diagnostic(
        code(rvbuild::plan::unbuildable),
        help("install a cross toolchain, or add a builder that runs {system} natively or through binfmt emulation")
    )]
    Unbuildable { key: String, system: String, why: String, hosts: String },

    #[error("{0}")]
    #[diagnostic(code(rvbuild::plan::bad_override))]
    BadOverride(String),

    #[error("the planned strategies were refused by the provider: {0}")]
    #[diagnostic(code(rvbuild::plan::refused_by_provider))]
    RefusedByProvider(Box<Error>),
}

impl From<PlanError> for Error {
    fn from(e: PlanError) -> Error {
        let kind = match &e {
            PlanError::ConflictingGroup { .. } | PlanError::BadOverride(_) => ErrorKind::Config,
            PlanError::ImpossibleOverride { needs_toolchain: true, .. } => ErrorKind::Config,
            PlanError::ImpossibleOverride { .. } | PlanError::Unbuildable { .. } => ErrorKind::Builder,
            PlanError::RefusedByProvider(_) => ErrorKind::Internal,
        };
        Error::new(kind, e)
    }
}
