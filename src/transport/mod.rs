//! Transports to builders: how rvbuild opens a Nix serve session (`nix-store --serve --write`)
//! on a builder: a local child process, or an exec channel over SSH (russh). Also the failure
//! classes a transport attaches to its errors, so the engine can tell an unreachable builder
//! (retry elsewhere) from a setup problem (report it).

pub mod error;
pub mod local;
pub mod ssh;
mod ssh_auth;
mod ssh_channel;
mod ssh_hostkey;

use crate::{Error, Result};

pub use crate::nix::serve::channel::{BoxFuture, ServeChannel};
pub use crate::vocab::error::{FailureClass, TransportFailure};
pub use local::LocalTransport;
pub use ssh::{SshOptions, SshTransport};

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

    /// Starts `command` with the builder's shell and returns its streams, as for a serve
    /// session (stdin, stdout, stderr): the byte pipe of a split compile job (`distccd --inetd`).
    fn open_stream(&self, command: &str) -> BoxFuture<'_, Result<ServeChannel>>;

    /// Accepts connections made on the builder to the Unix socket `path`: a socket rvbuild
    /// listens on itself for the local machine, an SSH remote forward
    /// (`streamlocal-forward@openssh.com`) for a remote builder. Nothing listens on a network
    /// address. Dropping the [`Listening`] stops it.
    fn listen_unix(&self, path: &str) -> BoxFuture<'_, Result<Listening>>;
}

/// A bidirectional byte stream: an accepted Unix connection or a forwarded SSH channel.
pub trait Duplex: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Duplex for T {}

/// Connections accepted by [`Transport::listen_unix`].
pub struct Listening {
    pub incoming: tokio::sync::mpsc::Receiver<Box<dyn Duplex>>,
    /// What keeps the socket open (the accept task, the SSH forward); dropping it closes it.
    pub keepalive: Box<dyn std::any::Any + Send>,
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

/// True when `err` says the builder is down or unreachable (retry the work elsewhere), as
/// opposed to a setup problem of the builder or a failed build.
pub fn is_connection_failure(err: &Error) -> bool {
    err.failure_class() == Some(FailureClass::Unreachable)
}
