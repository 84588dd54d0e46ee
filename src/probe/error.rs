//! The errors of the probe stage (the emulation probe, the probe script, copying and building
//! the benchmark), as typed enums with a diagnostic code per variant. Each [`ProbeError`]
//! variant picks its [`ErrorKind`] in the conversion into the crate-wide [`Error`]; a
//! [`BenchBuildError`] is recorded in a probe's errors, not raised.

use std::io;

use miette::Diagnostic;

use crate::{Error, ErrorKind};

/// Something went wrong measuring a builder.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ProbeError {
    #[error("no target userland is known for system `{system}` (riscv64-linux, aarch64-linux)")]
    #[diagnostic(code(rvbuild::probe::no_userland))]
    NoUserland { system: String },

    #[error("unusable userland directory `{dir}`")]
    #[diagnostic(code(rvbuild::probe::unusable_userland_dir))]
    UnusableUserlandDir { dir: String },

    #[error("emulation probe for {system}: no `{name}` in its output")]
    #[diagnostic(code(rvbuild::probe::emulation_output))]
    EmulationOutput { system: String, name: String },

    #[error("emulation probe for {system} on {label} failed: {stderr}")]
    #[diagnostic(
        code(rvbuild::probe::emulation_failed),
        help("run scripts/setup-host.sh on the builder (target userlands, binfmt qemu-user)")
    )]
    EmulationFailed { system: String, label: String, stderr: String },

    #[error("copying the benchmark took longer than {secs}s")]
    #[diagnostic(code(rvbuild::probe::upload_timeout))]
    UploadTimeout { secs: u64 },

    #[error("{builder}: the probe did not finish within {secs}s")]
    #[diagnostic(code(rvbuild::probe::timeout), help("check the host's load, or probe it without the benchmark"))]
    Timeout { builder: String, secs: u64 },

    #[error("{builder}: the probe script did not run on {label} (exit status {status}): {stderr}")]
    #[diagnostic(
        code(rvbuild::probe::script_did_not_run),
        help("the builder must have a POSIX sh; try `ssh HOST sh -c true`")
    )]
    ScriptDidNotRun { builder: String, label: String, status: String, stderr: String },
}

impl From<ProbeError> for Error {
    fn from(e: ProbeError) -> Error {
        use ProbeError::*;
        let kind = match &e {
            NoUserland { .. } | UnusableUserlandDir { .. } => ErrorKind::Config,
            EmulationOutput { .. }
            | EmulationFailed { .. }
            | UploadTimeout { .. }
            | Timeout { .. }
            | ScriptDidNotRun { .. } => ErrorKind::Builder,
        };
        Error::new(kind, e)
    }
}

/// Why the benchmark of one system could not be built on this machine.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum BenchBuildError {
    #[error("the C compiler {gcc} is not installed on this machine (Debian: {package})")]
    #[diagnostic(code(rvbuild::probe::bench::no_compiler))]
    NoCompiler { gcc: String, package: String },

    #[error("cannot run nix-build: {source} (install Nix; see `rvbuild doctor`)")]
    #[diagnostic(code(rvbuild::probe::bench::cannot_run_nix_build))]
    CannotRunNixBuild { source: io::Error },

    #[error("nix-build of the {target} benchmark failed: {tail}")]
    #[diagnostic(code(rvbuild::probe::bench::build_failed))]
    BuildFailed { target: String, tail: String },

    #[error("nix-build printed `{line}`, not a store path")]
    #[diagnostic(code(rvbuild::probe::bench::not_a_store_path))]
    NotAStorePath { line: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_that_did_not_run_keeps_its_text_help_class_and_code() {
        let e: Error = ProbeError::ScriptDidNotRun {
            builder: "b1".into(),
            label: "ssh b1".into(),
            status: "127".into(),
            stderr: "sh: not found".into(),
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Builder);
        assert_eq!(e.to_string(), "b1: the probe script did not run on ssh b1 (exit status 127): sh: not found");
        assert_eq!(
            e.help().map(|h| h.to_string()).as_deref(),
            Some("the builder must have a POSIX sh; try `ssh HOST sh -c true`")
        );
        assert_eq!(e.code().map(|c| c.to_string()).as_deref(), Some("rvbuild::probe::script_did_not_run"));
    }
}
