//! Transports to builders: how rvbuild opens a Nix serve session (`nix-store --serve --write`)
//! on a builder: a local child process, or an exec channel over SSH (russh). Also the failure
//! classes a transport attaches to its errors, so the engine can tell an unreachable builder
//! (retry elsewhere) from a setup problem (report it).

pub mod local;
pub mod ssh;
mod ssh_auth;
mod ssh_channel;
mod ssh_hostkey;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::{Error, ErrorKind, Result};

pub use local::LocalTransport;
pub use ssh::{SshOptions, SshTransport};

/// The byte streams of one serve session: stdin/stdout of the remote `nix-store --serve`
/// carry the protocol, its stderr carries build logs and error messages.
pub struct ServeChannel {
    /// Protocol bytes from the builder (its stdout).
    pub from_builder: Pin<Box<dyn AsyncRead + Send>>,
    /// Protocol bytes to the builder (its stdin). Dropping it ends the session.
    pub to_builder: Pin<Box<dyn AsyncWrite + Send>>,
    /// The builder's stderr: build logs, `error: …` lines.
    pub stderr: Pin<Box<dyn AsyncRead + Send>>,
    /// What keeps the session alive (child process, SSH channel); dropped with the channel.
    pub keepalive: Box<dyn Any + Send>,
    /// A short name for messages: `local`, `ssh://user@host`.
    pub label: String,
}

/// A boxed future, so that `dyn Transport` stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A way to reach one builder.
///
/// An SSH implementation maps an exec channel running `nix-store --serve --write` onto
/// [`ServeChannel`]: channel data is `from_builder`, the channel writer is `to_builder`,
/// extended data stream 1 is `stderr`, and the channel (plus the shared connection handle)
/// is the `keepalive`. Closing `to_builder` must send EOF so the remote Nix interrupts a
/// running build.
pub trait Transport: Send + Sync {
    /// A short name for messages.
    fn label(&self) -> String;

    /// Starts `nix-store --serve --write` on the builder and returns its streams.
    fn open_serve(&self) -> BoxFuture<'_, Result<ServeChannel>>;

    /// Runs `command` with the builder's shell (`sh -c` locally, the exec request over SSH)
    /// and collects its exit status and output. For probes; builds go through [`open_serve`](Self::open_serve).
    fn exec(&self, command: &str) -> BoxFuture<'_, Result<ExecOutput>>;
}

/// What a command run with [`Transport::exec`] printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit status; None when it was killed by a signal or the channel closed without one.
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The transport for a pool member: the local child process for the local machine, SSH for
/// the rest.
pub fn for_builder(builder: &crate::builders::Builder, ssh: &SshOptions) -> Result<std::sync::Arc<dyn Transport>> {
    Ok(match builder.scheme {
        crate::builders::Scheme::Local => std::sync::Arc::new(LocalTransport::new()),
        _ => std::sync::Arc::new(SshTransport::new(builder, ssh.clone())?),
    })
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
        Error::new(ErrorKind::Builder, self)
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

/// The class of a transport error; None for other errors (a failed build, a protocol error).
pub fn failure_class(err: &Error) -> Option<FailureClass> {
    let e: &(dyn std::error::Error + Send + Sync + 'static) = err.diagnostic();
    e.downcast_ref::<TransportFailure>().map(|f| f.class)
}

/// True when `err` says the builder is down or unreachable (retry the work elsewhere), as
/// opposed to a setup problem of the builder or a failed build.
pub fn is_connection_failure(err: &Error) -> bool {
    failure_class(err) == Some(FailureClass::Unreachable)
}
