//! The crate-wide error: a diagnostic plus the failure class that picks the process exit code.

use std::fmt;

use miette::Diagnostic;

/// Failure classes. Each maps to one documented process exit code (see README "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// A bug or an unexpected condition inside rvbuild.
    Internal,
    /// Bad command line, bad board/profile file, bad input file.
    Config,
    /// A derivation failed to build.
    Build,
    /// A builder could not be reached or lost its connection.
    Builder,
    /// Verification of the outputs found a mismatch.
    Verify,
    /// Flashing over serial failed.
    Flash,
    /// The QEMU boot test did not reach the marker.
    Boot,
    /// A tool or file rvbuild needs on this machine is missing (run `rvbuild doctor`).
    Prerequisite,
    /// The subcommand exists but its capability has not landed yet.
    NotImplemented,
    /// A serial console session lost its port (unplugged adapter, closed pty) mid-session
    /// (`rvbuild monitor`; a flash that loses its port is a `Flash` failure).
    SerialLine,
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
}

impl ErrorKind {
    /// The process exit code of this class.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Internal => 1,
            ErrorKind::Config => 2,
            ErrorKind::Build => 3,
            ErrorKind::Builder => 4,
            ErrorKind::Verify => 5,
            ErrorKind::Flash => 6,
            ErrorKind::Boot => 7,
            ErrorKind::Prerequisite => 8,
            ErrorKind::NotImplemented => 9,
            ErrorKind::SerialLine => 10,
            ErrorKind::Interrupted => 130,
        }
    }

    /// The kebab-case name of this class (as serialized), used in default diagnostic codes
    /// (`rvbuild::<name>`).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Internal => "internal",
            ErrorKind::Config => "config",
            ErrorKind::Build => "build",
            ErrorKind::Builder => "builder",
            ErrorKind::Verify => "verify",
            ErrorKind::Flash => "flash",
            ErrorKind::Boot => "boot",
            ErrorKind::Prerequisite => "prerequisite",
            ErrorKind::NotImplemented => "not-implemented",
            ErrorKind::SerialLine => "serial-line",
            ErrorKind::Interrupted => "interrupted",
        }
    }

    /// Every class with its code and meaning, for `--help` and the README.
    pub const TABLE: &'static [(ErrorKind, &'static str)] = &[
        (ErrorKind::Internal, "internal error (a bug: please report it)"),
        (ErrorKind::Config, "usage or configuration error (command line, board/profile YAML, input files)"),
        (ErrorKind::Build, "a build failed"),
        (ErrorKind::Builder, "a builder was unreachable or lost"),
        (ErrorKind::Verify, "verification of the outputs failed"),
        (ErrorKind::Flash, "flashing failed"),
        (ErrorKind::Boot, "the boot test failed"),
        (ErrorKind::Prerequisite, "a tool or file this machine needs is missing (see `rvbuild doctor`)"),
        (ErrorKind::NotImplemented, "the capability has not landed yet"),
        (ErrorKind::SerialLine, "a console session's serial port vanished mid-session (`rvbuild monitor`)"),
        (ErrorKind::Interrupted, "interrupted (Ctrl-C / SIGTERM)"),
    ];
}

/// An error with its class and a rich diagnostic (message, help, source snippet).
pub struct Error {
    kind: ErrorKind,
    /// Set on builder faults (transport, wrong output, full store): whether the work may go to
    /// another builder and whether this one may come back.
    failure: Option<FailureClass>,
    inner: Box<dyn Diagnostic + Send + Sync + 'static>,
}

/// A plain diagnostic: a message and an optional help line.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct Plain {
    message: String,
    #[help]
    help: Option<String>,
}

impl Error {
    /// Wraps any diagnostic with a failure class.
    pub fn new(kind: ErrorKind, diag: impl Diagnostic + Send + Sync + 'static) -> Self {
        Error { kind, failure: None, inner: Box::new(diag) }
    }

    /// A message without help.
    pub fn msg(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error::new(kind, Plain { message: message.into(), help: None })
    }

    /// A message with a help line saying what to do.
    pub fn with_help(kind: ErrorKind, message: impl Into<String>, help: impl Into<String>) -> Self {
        Error::new(kind, Plain { message: message.into(), help: Some(help.into()) })
    }

    /// A capability whose issue has not landed yet.
    pub fn not_implemented(what: &str) -> Self {
        Error::with_help(
            ErrorKind::NotImplemented,
            format!("`{what}` is not implemented yet"),
            "this subcommand exists so scripts can rely on its name; its capability lands in a later release",
        )
    }

    /// An I/O error on a named file or device.
    pub fn io(kind: ErrorKind, what: impl fmt::Display, err: std::io::Error) -> Self {
        Error::msg(kind, format!("{what}: {err}"))
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The class of a builder fault; None for other errors (a failed build, a protocol
    /// error).
    pub fn failure_class(&self) -> Option<FailureClass> {
        self.failure
    }

    /// The same error, classified as a builder fault of class `class`.
    pub fn with_failure_class(mut self, class: FailureClass) -> Self {
        self.failure = Some(class);
        self
    }

    pub fn diagnostic(&self) -> &(dyn Diagnostic + Send + Sync + 'static) {
        self.inner.as_ref()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.inner)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for Error {}

impl Diagnostic for Error {
    /// The inner diagnostic's code, else `rvbuild::<kind>`: every error has a code.
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.code().or_else(|| Some(Box::new(format!("rvbuild::{}", self.kind.name()))))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.help()
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.inner.source_code()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.inner.labels()
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        self.inner.related()
    }
}

/// What kind of trouble a transport error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The builder cannot be reached or the connection to it was lost (refused, timeout, DNS,
    /// killed sshd, dead network). Its work may be retried on another builder.
    Unreachable,
    /// The builder is reachable but set up so rvbuild cannot use it (host key unknown or
    /// changed, authentication rejected, Nix missing, user not trusted). Retrying elsewhere is
    /// fine, but the user must fix this builder; retrying it is pointless.
    Setup,
    /// The builder sent a NAR whose content does not match the hash it announced for it (a
    /// corrupt store, a broken or malicious `nix-store`). Nothing of it is registered; its work
    /// goes elsewhere and it is not trusted again in this run.
    WrongOutput,
    /// The builder's store (or build directory) has no space left. Its work goes elsewhere and
    /// it is not used again in this run (it needs a garbage collection first).
    StoreFull,
}

impl FailureClass {
    /// Whether a builder that failed this way may be tried again later in the same run (it
    /// dropped off the network); the other classes need someone to fix the builder.
    pub fn may_come_back(self) -> bool {
        self == FailureClass::Unreachable
    }
}

/// A transport error with its class. It travels inside [`Error`] (kind [`ErrorKind::Builder`])
/// and, when it ends a stream, inside the `std::io::Error` the serve client reads.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
pub struct TransportFailure {
    pub class: FailureClass,
    pub message: String,
    #[help]
    pub help: Option<String>,
}

impl TransportFailure {
    pub fn new(class: FailureClass, message: impl Into<String>, help: Option<String>) -> Self {
        TransportFailure { class, message: message.into(), help }
    }

    pub fn into_error(self) -> Error {
        let class = self.class;
        let mut e = Error::new(ErrorKind::Builder, self);
        e.failure = Some(class);
        e
    }

    /// As the error of a stream read (the serve client turns it back into an [`Error`]).
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::ConnectionAborted, self)
    }

    /// The failure carried by an I/O error made with [`into_io`](Self::into_io).
    pub fn from_io(e: &std::io::Error) -> Option<&TransportFailure> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<TransportFailure>())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The number of `ErrorKind` variants. `ordinal` below matches exhaustively, so a new
    /// variant does not compile until it is listed there (and counted here).
    const VARIANTS: usize = 11;

    fn ordinal(kind: ErrorKind) -> usize {
        match kind {
            ErrorKind::Internal => 0,
            ErrorKind::Config => 1,
            ErrorKind::Build => 2,
            ErrorKind::Builder => 3,
            ErrorKind::Verify => 4,
            ErrorKind::Flash => 5,
            ErrorKind::Boot => 6,
            ErrorKind::Prerequisite => 7,
            ErrorKind::NotImplemented => 8,
            ErrorKind::Interrupted => 9,
            ErrorKind::SerialLine => 10,
        }
    }

    #[test]
    fn every_kind_is_in_the_table_once_with_a_distinct_code() {
        assert_eq!(ErrorKind::TABLE.len(), VARIANTS, "TABLE must list every ErrorKind");
        let mut seen = [false; VARIANTS];
        let mut codes = std::collections::BTreeSet::new();
        for (kind, meaning) in ErrorKind::TABLE {
            let i = ordinal(*kind);
            assert!(!seen[i], "{kind:?} is in TABLE twice");
            seen[i] = true;
            assert!(kind.exit_code() != 0, "{kind:?} must not exit with 0 (success)");
            assert!(codes.insert(kind.exit_code()), "exit code {} is used twice", kind.exit_code());
            assert!(!meaning.is_empty(), "{kind:?} has no meaning in TABLE");
        }
    }

    #[test]
    fn kind_names_match_serde() {
        for (kind, _) in ErrorKind::TABLE {
            let json = serde_json::to_string(kind).expect("serialize ErrorKind");
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
    }

    #[test]
    fn readme_exit_code_table_matches() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let section = readme.split("## Exit codes").nth(1).expect("README has an \"Exit codes\" section");
        let rows: Vec<(u8, String)> = section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
                let code = cells.first()?.parse::<u8>().ok()?;
                Some((code, cells.get(1)?.to_string()))
            })
            .collect();
        let mut expected = vec![(0u8, "success".to_string())];
        expected.extend(ErrorKind::TABLE.iter().map(|(k, m)| (k.exit_code(), m.to_string())));
        assert_eq!(rows, expected, "README's exit-code table drifted from ErrorKind::TABLE");
    }

    #[test]
    fn every_error_has_a_code() {
        let e = Error::msg(ErrorKind::NotImplemented, "x");
        assert_eq!(e.code().map(|c| c.to_string()).as_deref(), Some("rvbuild::not-implemented"));
    }
}
