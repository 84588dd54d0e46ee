//! The errors of the build stage (the engine's output directory and logs, GC roots, a failed
//! build, a builder whose disk is full, builders that gave up or left work stranded, a
//! derivation no builder can take), as one typed enum with a diagnostic code per variant. Each variant picks its [`ErrorKind`] in
//! the conversion into the crate-wide [`Error`]. Transport failures keep travelling as the
//! [`Error`]s the transport made, with their failure class for retries.

use std::io;
use std::path::PathBuf;

use miette::Diagnostic;

use crate::nix::serve::BuildStatus;
use crate::nix::store_path::StorePath;
use crate::vocab::error::FailureClass;
use crate::{Error, ErrorKind};

/// Something went wrong building.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum BuildError {
    #[error("{drv} has outputs without fixed paths (content-addressed derivations are not supported yet)")]
    #[diagnostic(code(rvbuild::build::floating_outputs))]
    FloatingOutputs { drv: StorePath },

    #[error("{}", problems.join("\n"))]
    #[diagnostic(
        code(rvbuild::build::no_capable_builder),
        help(
            "add a builder for that system (--builders 'ssh://host SYSTEM ...'), enable emulation (extra-platforms + binfmt), or drop --only/--exclude/--local-jobs 0"
        )
    )]
    NoCapableBuilder {
        /// One paragraph per derivation without a builder (at most five), and a note on
        /// userland features when one needs them.
        problems: Vec<String>,
    },

    #[error("{}: {source}", path.display())]
    #[diagnostic(code(rvbuild::build::log))]
    Log { path: PathBuf, source: io::Error },

    #[error("{}: {source}", path.display())]
    #[diagnostic(code(rvbuild::build::gc_roots_dir))]
    GcRootsDir { path: PathBuf, source: io::Error },

    #[error("nix-store --add-root: {source}")]
    #[diagnostic(code(rvbuild::build::add_root_cannot_run))]
    AddRootCannotRun { source: io::Error },

    #[error("could not make the GC root {} -> {path}", link.display())]
    #[diagnostic(code(rvbuild::build::add_root_failed))]
    AddRootFailed { link: PathBuf, path: String },

    #[error("interrupted: every builder session was closed")]
    #[diagnostic(code(rvbuild::build::interrupted))]
    Interrupted,

    #[error("a build task failed: {source}")]
    #[diagnostic(code(rvbuild::build::task_failed))]
    TaskFailed { source: tokio::task::JoinError },

    #[error("{remaining} derivation(s) could not be placed on any builder")]
    #[diagnostic(code(rvbuild::build::unplaced))]
    Unplaced { remaining: usize },

    #[error("{what} failed to build on {host} ({drv}): {status:?}: {message}\n{log_tail}")]
    #[diagnostic(code(rvbuild::build::failed), help("full log: {}", log.display()))]
    Failed {
        /// "component `x`", or the derivation's label.
        what: String,
        host: String,
        drv: StorePath,
        status: BuildStatus,
        message: String,
        log_tail: String,
        log: PathBuf,
    },

    #[error("{what} could not be built on {host}: its disk is full ({status:?}: {message})\n{log_tail}")]
    #[diagnostic(
        code(rvbuild::build::builder_disk_full),
        help("free space on that builder (nix-collect-garbage there); its work goes to the other builders")
    )]
    BuilderDiskFull { what: String, host: String, status: BuildStatus, message: String, log_tail: String },

    #[error("{label}: gave up after {attempts} attempts; last on {host}: {last}")]
    #[diagnostic(code(rvbuild::build::gave_up), help("check the builders with `rvbuild builders probe`"))]
    GaveUp { label: String, attempts: u32, host: String, last: Box<Error> },

    #[error("{reason}\nlast error from {host}: {last}")]
    #[diagnostic(code(rvbuild::build::stranded), help("{}", stranded_help(last)))]
    Stranded { reason: Box<Error>, host: String, last: Box<Error> },
}

/// What to do about the builder that left work stranded, by how it failed.
fn stranded_help(last: &Error) -> &'static str {
    match last.failure_class() {
        Some(FailureClass::WrongOutput) => {
            "that builder's store or nix-store is broken: check it (`nix-store --verify --check-contents` there), or add another builder (--builders)"
        }
        Some(FailureClass::StoreFull) => {
            "free space on that builder (`nix-collect-garbage` there), or add another builder (--builders)"
        }
        _ => "bring the builder back, or add one that can build this system (--builders)",
    }
}

impl From<BuildError> for Error {
    fn from(e: BuildError) -> Error {
        use BuildError::*;
        let kind = match &e {
            FloatingOutputs { .. }
            | Log { .. }
            | GcRootsDir { .. }
            | AddRootCannotRun { .. }
            | AddRootFailed { .. }
            | Failed { .. } => ErrorKind::Build,
            NoCapableBuilder { .. } | GaveUp { .. } | Stranded { .. } | BuilderDiskFull { .. } => ErrorKind::Builder,
            Interrupted => ErrorKind::Interrupted,
            TaskFailed { .. } | Unplaced { .. } => ErrorKind::Internal,
        };
        match e {
            BuilderDiskFull { .. } => Error::new(kind, e).with_failure_class(FailureClass::StoreFull),
            _ => Error::new(kind, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_build_keeps_its_text_help_class_and_code() {
        let drv = StorePath::parse("/nix/store/00000000000000000000000000000000-hello.drv").expect("store path");
        let e: Error = BuildError::Failed {
            what: "component `hello`".into(),
            host: "local".into(),
            drv,
            status: BuildStatus::PermanentFailure,
            message: "builder failed".into(),
            log_tail: "make: *** error".into(),
            log: PathBuf::from("/out/logs/hello.log"),
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Build);
        assert_eq!(e.failure_class(), None);
        assert_eq!(
            e.to_string(),
            "component `hello` failed to build on local (/nix/store/00000000000000000000000000000000-hello.drv): \
             PermanentFailure: builder failed\nmake: *** error"
        );
        assert_eq!(e.help().map(|h| h.to_string()).as_deref(), Some("full log: /out/logs/hello.log"));
        assert_eq!(e.code().map(|c| c.to_string()).as_deref(), Some("rvbuild::build::failed"));
    }
}
