//! The byte channel a serve session runs over. Transports (a local child process, an SSH exec
//! channel) produce it; the serve client reads and writes it.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

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
