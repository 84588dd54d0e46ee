//! Transports to builders: how rvbuild opens a Nix serve session (`nix-store --serve --write`)
//! on a builder. The local child process lives here; SSH (russh exec channels) implements the
//! same trait.

pub mod local;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::Result;

pub use local::LocalTransport;

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
