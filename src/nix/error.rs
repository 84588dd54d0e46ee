//! The errors of the Nix stage (instantiation, the derivation DAG, copying store paths and the
//! serve protocol client), as one typed enum with a diagnostic code per variant. Each variant
//! picks its [`ErrorKind`] in the conversion into the crate-wide [`Error`].

use std::io;
use std::path::PathBuf;

use miette::Diagnostic;

use super::drv::DrvDiagnostic;
use super::nar::NarError;
use super::store_path::{HashParseError, NarHash, StorePath, StorePathError};
use crate::vocab::error::FailureClass;
use crate::{Error, ErrorKind};

/// " (an input of X)" when a derivation was reached from another one.
fn input_of(parent: &Option<StorePath>) -> String {
    parent.as_ref().map(|p| format!(" (an input of {p})")).unwrap_or_default()
}

/// Something went wrong in the Nix stage.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum NixError {
    // ------------------------------------------------------------ nix-instantiate
    #[error("cannot run {tool}: {source}")]
    #[diagnostic(
        code(rvbuild::nix::tool_missing),
        help("install Nix (Debian: nix-bin; scripts/setup-host.sh does it) and make sure it is on PATH")
    )]
    ToolMissing { tool: &'static str, source: io::Error },

    #[error("generated expression {} does not parse: {stderr}", file.display())]
    #[diagnostic(code(rvbuild::nix::expression_does_not_parse))]
    ExpressionDoesNotParse { file: PathBuf, stderr: String },

    #[error("nix-instantiate {} failed:\n{message}", file.display())]
    #[diagnostic(
        code(rvbuild::nix::instantiate_failed),
        help("the message above comes from evaluating the board's generated expression")
    )]
    InstantiateFailed { file: PathBuf, message: String },

    #[error("{target}: no such file")]
    #[diagnostic(code(rvbuild::nix::no_such_target), help("give a .nix file or /nix/store/...drv paths"))]
    NoSuchTarget { target: String },

    #[error("nix-instantiate {target} failed:\n{message}")]
    #[diagnostic(code(rvbuild::nix::target_failed))]
    TargetFailed { target: String, message: String },

    #[error("nix-instantiate printed {line:?}, not a derivation: {source}")]
    #[diagnostic(code(rvbuild::nix::not_a_derivation))]
    NotADerivation { line: String, source: StorePathError },

    #[error("nothing to build: the targets gave no derivations")]
    #[diagnostic(code(rvbuild::nix::nothing_to_build))]
    NothingToBuild,

    #[error("nix-instantiate printed {printed} paths for {attributes} attributes")]
    #[diagnostic(code(rvbuild::nix::path_count))]
    PathCount { printed: usize, attributes: usize },

    #[error("nix-instantiate printed `{printed}`, which is not a .drv store path")]
    #[diagnostic(code(rvbuild::nix::not_a_drv_path))]
    NotADrvPath { printed: String },

    #[error("{drv} is missing from its own derivation graph")]
    #[diagnostic(code(rvbuild::nix::missing_from_graph))]
    MissingFromGraph { drv: String },

    // ------------------------------------------------------------ the derivation DAG
    #[error("{source}")]
    #[diagnostic(code(rvbuild::nix::bad_root), help("pass the .drv path nix-instantiate printed"))]
    BadRoot { source: StorePathError },

    #[error("{drv}: {source}")]
    #[diagnostic(code(rvbuild::nix::bad_input_drv))]
    BadInputDrv { drv: StorePath, source: StorePathError },

    #[error("cannot read derivation {path}{}: {source}", input_of(.needed_by))]
    #[diagnostic(
        code(rvbuild::nix::unreadable_drv),
        help("instantiate the expression again (nix-instantiate); the .drv may have been garbage-collected")
    )]
    UnreadableDrv { path: StorePath, needed_by: Option<StorePath>, source: io::Error },

    #[error(transparent)]
    #[diagnostic(transparent)]
    MalformedDrv(Box<DrvDiagnostic>),

    #[error("the derivations form a dependency cycle: {}", cycle.join(" -> "))]
    #[diagnostic(code(rvbuild::nix::drv_cycle))]
    DrvCycle { cycle: Vec<String> },

    #[error("{source}")]
    #[diagnostic(code(rvbuild::nix::bad_input_src))]
    BadInputSrc { source: StorePathError },

    #[error("{drv} uses output {output:?} of {input}, which has no such output")]
    #[diagnostic(code(rvbuild::nix::no_such_output))]
    NoSuchOutput { drv: StorePath, output: String, input: String },

    #[error("output {output:?} of {drv} has no fixed path (content-addressed derivations are not supported yet)")]
    #[diagnostic(code(rvbuild::nix::floating_output))]
    FloatingOutput { output: String, drv: String },

    // ------------------------------------------------------------ copying store paths
    #[error("{path} is not valid on {on}")]
    #[diagnostic(code(rvbuild::nix::not_valid), help("build or fetch it there first (or run nix-store --realise)"))]
    NotValid { path: StorePath, on: String },

    #[error("store paths reference each other in a cycle; cannot order the copy")]
    #[diagnostic(code(rvbuild::nix::reference_cycle))]
    ReferenceCycle,

    #[error("copying {path} failed on both sides:\n{dump}\n{add}")]
    #[diagnostic(code(rvbuild::nix::copy_failed))]
    CopyFailed { path: StorePath, dump: Box<Error>, add: Box<Error> },

    #[error("{what} thread failed: {source}")]
    #[diagnostic(code(rvbuild::nix::thread_failed))]
    ThreadFailed { what: &'static str, source: tokio::task::JoinError },

    #[error("reading {path}: {source}")]
    #[diagnostic(code(rvbuild::nix::read_local))]
    ReadLocal { path: StorePath, source: NarError },

    // ------------------------------------------------------------ the serve protocol
    #[error("{label}: protocol mismatch: expected the Nix serve protocol magic, got {got:?}")]
    #[diagnostic(
        code(rvbuild::nix::serve::protocol_mismatch),
        help(
            "something printed text before nix-store started (a login banner, motd or .bashrc output); make the remote shell print nothing for non-interactive commands"
        )
    )]
    ProtocolMismatch { label: String, got: String },

    #[error("{label}: serve protocol version {}.{} is not supported (need 2.{} or later)", .version >> 8, .version & 0xff, .min_version & 0xff)]
    #[diagnostic(code(rvbuild::nix::serve::unsupported_version), help("upgrade Nix on the builder"))]
    UnsupportedVersion { label: String, version: u64, min_version: u64 },

    #[error("{label}: the builder closed the connection during {during}; its stderr ends with:\n{stderr_tail}")]
    #[diagnostic(
        code(rvbuild::nix::serve::connection_closed),
        help(
            "check that the builder's Nix works (`nix-store --serve --write` there) and that its user may write to the store"
        )
    )]
    ConnectionClosed { label: String, during: String, stderr_tail: String },

    #[error("{label}: protocol error during {during}: {source}")]
    #[diagnostic(code(rvbuild::nix::serve::protocol))]
    Protocol { label: String, during: String, source: io::Error },

    #[error("{label}: I/O error during {during}: {source}")]
    #[diagnostic(code(rvbuild::nix::serve::io))]
    Io { label: String, during: String, source: io::Error },

    #[error("{label}: the serve session failed earlier and cannot be used again")]
    #[diagnostic(code(rvbuild::nix::serve::session_broken))]
    SessionBroken { label: String },

    #[error("{label}: invalid store path in {what}: {source}")]
    #[diagnostic(code(rvbuild::nix::serve::bad_path))]
    BadPath { label: String, what: String, source: StorePathError },

    #[error("{label}: {what}: {source}")]
    #[diagnostic(code(rvbuild::nix::serve::bad_nar_hash))]
    BadNarHash { label: String, what: String, source: HashParseError },

    #[error("DumpStorePath of {path} needs its narSize (from QueryPathInfos)")]
    #[diagnostic(code(rvbuild::nix::serve::nar_size_unknown))]
    NarSizeUnknown { path: StorePath },

    #[error("writing the NAR of {path} from {label}: {source}")]
    #[diagnostic(code(rvbuild::nix::serve::write_nar))]
    WriteNar { path: StorePath, label: String, source: io::Error },

    #[error("restoring {path} from {label} into {}: {source}", dest.display())]
    #[diagnostic(code(rvbuild::nix::serve::restore))]
    Restore { path: StorePath, label: String, dest: PathBuf, source: NarError },

    #[error("{label}: protocol 2.{minor} has no AddToStoreNar; use ImportPaths")]
    #[diagnostic(code(rvbuild::nix::serve::no_add_to_store_nar))]
    NoAddToStoreNar { label: String, minor: u64 },

    #[error("AddToStoreNar of {path} without a narHash")]
    #[diagnostic(code(rvbuild::nix::serve::no_nar_hash))]
    NoNarHash { path: StorePath },

    #[error("AddToStoreNar of {path} with narSize 0")]
    #[diagnostic(code(rvbuild::nix::serve::no_nar_size))]
    NoNarSize { path: StorePath },

    #[error("{label}: {during}: unexpected reply {reply}")]
    #[diagnostic(code(rvbuild::nix::serve::unexpected_reply))]
    UnexpectedReply { label: String, during: String, reply: u64 },

    #[error("the NAR of {path} ended {left} bytes before its narSize")]
    #[diagnostic(code(rvbuild::nix::serve::nar_too_short))]
    NarTooShort { path: StorePath, left: u64 },

    #[error("reading the NAR of {path}: {source}")]
    #[diagnostic(code(rvbuild::nix::serve::read_nar))]
    ReadNar { path: StorePath, source: io::Error },

    #[error("{label}: {during}: {source}")]
    #[diagnostic(code(rvbuild::nix::serve::bad_build_result))]
    BadBuildResult { label: String, during: String, source: BuildResultError },

    #[error("{from}: the NAR of {path} has hash {got}, but {want} was announced")]
    #[diagnostic(code(rvbuild::nix::serve::hash_mismatch))]
    HashMismatch { from: String, path: StorePath, got: NarHash, want: NarHash },

    #[error("{label}: {what} names {path}, which was not asked for (or names it twice)")]
    #[diagnostic(
        code(rvbuild::nix::serve::unrequested_path),
        help("a builder only answers for the paths it was asked about; this one is refused (broken or malicious)")
    )]
    UnrequestedPath { label: String, what: String, path: StorePath },

    #[error(
        "{label}: output {output} refers to {reference}, which is neither an output of its derivation nor in this \
         machine's store (its inputs' closure)"
    )]
    #[diagnostic(
        code(rvbuild::nix::serve::foreign_reference),
        help(
            "a derivation's outputs can only refer to its own outputs and its inputs; nothing of this build is \
             imported from that builder"
        )
    )]
    ForeignReference { label: String, output: StorePath, reference: StorePath },
}

impl From<NixError> for Error {
    fn from(e: NixError) -> Error {
        use NixError::*;
        let kind = match &e {
            ToolMissing { .. } => ErrorKind::Prerequisite,
            InstantiateFailed { .. } | BadRoot { .. } | NoSuchTarget { .. } | TargetFailed { .. } | NothingToBuild => {
                ErrorKind::Config
            }
            NotADerivation { .. } => ErrorKind::Build,
            ExpressionDoesNotParse { .. }
            | PathCount { .. }
            | NotADrvPath { .. }
            | MissingFromGraph { .. }
            | ThreadFailed { .. }
            | NarSizeUnknown { .. }
            | NoNarHash { .. }
            | NoNarSize { .. } => ErrorKind::Internal,
            BadInputDrv { .. }
            | UnreadableDrv { .. }
            | MalformedDrv(_)
            | DrvCycle { .. }
            | BadInputSrc { .. }
            | NoSuchOutput { .. }
            | FloatingOutput { .. }
            | NotValid { .. }
            | ReferenceCycle
            | ReadLocal { .. }
            | NarTooShort { .. }
            | ReadNar { .. } => ErrorKind::Build,
            CopyFailed { .. }
            | ProtocolMismatch { .. }
            | UnsupportedVersion { .. }
            | ConnectionClosed { .. }
            | Protocol { .. }
            | Io { .. }
            | SessionBroken { .. }
            | BadPath { .. }
            | BadNarHash { .. }
            | WriteNar { .. }
            | Restore { .. }
            | NoAddToStoreNar { .. }
            | UnexpectedReply { .. }
            | BadBuildResult { .. }
            | HashMismatch { .. }
            | UnrequestedPath { .. }
            | ForeignReference { .. } => ErrorKind::Builder,
        };
        let class = match &e {
            HashMismatch { .. } => Some(FailureClass::WrongOutput),
            ConnectionClosed { stderr_tail, .. } if says_out_of_space(stderr_tail) => Some(FailureClass::StoreFull),
            _ => None,
        };
        match class {
            Some(c) => Error::new(kind, e).with_failure_class(c),
            None => Error::new(kind, e),
        }
    }
}

/// Whether a message from Nix (its stderr, a build log) says a disk or the store database
/// has no space left. Nix reports ENOSPC only as text, so this is where that text becomes a
/// [`FailureClass::StoreFull`]. The last sign is the note Nix adds to a failed build's own
/// message when the store's disk is nearly full: it does not depend on the build log, whose
/// last lines may reach us after the result.
pub fn says_out_of_space(text: &str) -> bool {
    const SIGNS: &[&str] = &[
        "No space left on device",
        "Disk quota exceeded",
        "database or disk is full",
        "may have been caused by lack of free disk space",
    ];
    SIGNS.iter().any(|s| text.contains(s))
}

/// A BuildResult whose outputs do not make sense (the stream itself was fine).
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum BuildResultError {
    #[error("built output key {key:?} has no '!<output>'")]
    #[diagnostic(code(rvbuild::nix::serve::output_key))]
    OutputKey { key: String },

    #[error("built output {name:?} is not JSON: {source}")]
    #[diagnostic(code(rvbuild::nix::serve::output_not_json))]
    NotJson { name: String, source: serde_json::Error },

    #[error("built output {name:?} has no outPath")]
    #[diagnostic(code(rvbuild::nix::serve::no_out_path))]
    NoOutPath { name: String },

    #[error("built output {name:?}: {source}")]
    #[diagnostic(code(rvbuild::nix::serve::output_path))]
    OutputPath { name: String, source: StorePathError },

    #[error("the builder reports the outputs {got}, but the derivation's outputs are {want}")]
    #[diagnostic(
        code(rvbuild::nix::serve::outputs_differ),
        help("a builder may only return the derivation's own outputs; the result is refused")
    )]
    OutputsDiffer { got: String, want: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(tail: &str) -> Error {
        NixError::ConnectionClosed { label: "b".into(), during: "AddToStoreNar".into(), stderr_tail: tail.into() }
            .into()
    }

    #[test]
    fn a_builder_that_ran_out_of_space_is_classified_as_a_full_store() {
        let e = closed("error: writing to file: No space left on device");
        assert_eq!((e.kind(), e.failure_class()), (ErrorKind::Builder, Some(FailureClass::StoreFull)));
        assert_eq!(closed("error: unexpected end-of-file").failure_class(), None);
        assert!(says_out_of_space("error: database or disk is full"));
        assert!(says_out_of_space(
            "builder for '/nix/store/x.drv' failed with exit code 1\nnote: build failure may have been caused by lack of free disk space"
        ));
        assert!(!says_out_of_space("builder for 'x.drv' failed with exit code 1"));
    }

    #[test]
    fn a_nar_not_matching_its_announced_hash_is_a_wrong_output() {
        let path = StorePath::parse("/nix/store/00000000000000000000000000000000-x").expect("path");
        let e: Error =
            NixError::HashMismatch { from: "b".into(), path, got: NarHash([1; 32]), want: NarHash([2; 32]) }.into();
        assert_eq!((e.kind(), e.failure_class()), (ErrorKind::Builder, Some(FailureClass::WrongOutput)));
        assert!(e.to_string().starts_with("b: the NAR of /nix/store/"), "{e}");
    }
}
