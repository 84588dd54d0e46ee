//! The errors of the transport stage outside a session's stream: starting the local
//! `nix-store --serve`, running a local command, an SSH transport built for the local machine.
//! Failures of a builder connection are [`crate::vocab::error::TransportFailure`]s (they carry
//! the failure class the engine retries on).

use miette::Diagnostic;

use crate::{Error, ErrorKind};

/// Something went wrong setting up a transport.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum TransportError {
    #[error("cannot start {program}: {source}")]
    #[diagnostic(
        code(rvbuild::transport::cannot_start),
        help("install Nix and make sure nix-store is on PATH (see `rvbuild doctor`)")
    )]
    CannotStart { program: String, source: std::io::Error },

    #[error("nix-store child has no piped stdio")]
    #[diagnostic(code(rvbuild::transport::no_stdio))]
    NoStdio,

    #[error("sh -c on the local machine: {source}")]
    #[diagnostic(code(rvbuild::transport::local_exec))]
    LocalExec { source: std::io::Error },

    #[error("cannot listen on the Unix socket {path}: {source}")]
    #[diagnostic(
        code(rvbuild::transport::listen),
        help("the split compile's runtime directory must be writable by rvbuild (check its permissions)")
    )]
    Listen { path: String, source: std::io::Error },

    #[error("builder {builder} is the local machine, not an SSH host")]
    #[diagnostic(code(rvbuild::transport::not_an_ssh_host))]
    NotAnSshHost { builder: String },
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Error {
        let kind = match &e {
            TransportError::CannotStart { .. } => ErrorKind::Prerequisite,
            TransportError::NoStdio | TransportError::NotAnSshHost { .. } => ErrorKind::Internal,
            TransportError::LocalExec { .. } | TransportError::Listen { .. } => ErrorKind::Builder,
        };
        Error::new(kind, e)
    }
}
