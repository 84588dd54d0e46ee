//! The local machine as a builder: `nix-store --serve --write` as a child process whose
//! stdin/stdout/stderr form the serve channel. When the channel drops, the child sees its
//! stdin close (which also interrupts a running build cleanly) and is killed if it has not
//! exited a few seconds later.

use std::ffi::OsString;
use std::process::Stdio;
use std::time::Duration;

use super::error::TransportError;
use super::{BoxFuture, Duplex, ExecOutput, Listening, ServeChannel, Transport};
use crate::Result;

/// Spawns `nix-store [--store URI] --serve --write` from PATH.
#[derive(Debug, Clone)]
pub struct LocalTransport {
    program: OsString,
    store: Option<String>,
}

impl Default for LocalTransport {
    fn default() -> Self {
        LocalTransport { program: "nix-store".into(), store: None }
    }
}

impl LocalTransport {
    /// The local store, through `nix-store` on PATH.
    pub fn new() -> Self {
        Self::default()
    }

    /// Another store on this machine, e.g. `local?root=/some/dir` (a chroot store).
    pub fn with_store(store: impl Into<String>) -> Self {
        LocalTransport { store: Some(store.into()), ..Self::default() }
    }

    /// A different `nix-store` binary.
    pub fn with_program(mut self, program: impl Into<OsString>) -> Self {
        self.program = program.into();
        self
    }

    fn spawn(&self) -> Result<ServeChannel> {
        let mut cmd = tokio::process::Command::new(&self.program);
        if let Some(store) = &self.store {
            cmd.arg("--store").arg(store);
        }
        cmd.args(["--serve", "--write"]);
        self.spawn_piped(cmd, self.program.to_string_lossy().into_owned())
    }

    fn spawn_piped(&self, mut cmd: tokio::process::Command, program: String) -> Result<ServeChannel> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| TransportError::CannotStart { program, source })?;
        // Ctrl-C sends it SIGTERM: Nix then stops the build and its builder processes.
        let registered = child.id().map(crate::vocab::cancel::register_pid);
        let missing = || TransportError::NoStdio;
        let to_builder = child.stdin.take().ok_or_else(missing)?;
        let from_builder = child.stdout.take().ok_or_else(missing)?;
        let stderr = child.stderr.take().ok_or_else(missing)?;
        Ok(ServeChannel {
            from_builder: Box::pin(from_builder),
            to_builder: Box::pin(to_builder),
            stderr: Box::pin(stderr),
            keepalive: Box::new(ChildGuard(Some((child, registered)))),
            label: self.label(),
        })
    }
}

impl Transport for LocalTransport {
    fn label(&self) -> String {
        match &self.store {
            Some(s) => format!("local ({s})"),
            None => "local".to_string(),
        }
    }

    fn open_serve(&self) -> BoxFuture<'_, Result<ServeChannel>> {
        Box::pin(async move { self.spawn() })
    }

    fn exec(&self, command: &str) -> BoxFuture<'_, Result<ExecOutput>> {
        let command = command.to_string();
        Box::pin(async move {
            let out = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(&command)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output()
                .await
                .map_err(|source| TransportError::LocalExec { source })?;
            Ok(ExecOutput { status: out.status.code(), stdout: out.stdout, stderr: out.stderr })
        })
    }

    fn open_stream(&self, command: &str) -> BoxFuture<'_, Result<ServeChannel>> {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c").arg(command);
        Box::pin(async move { self.spawn_piped(cmd, "sh".into()) })
    }

    fn listen_unix(&self, path: &str) -> BoxFuture<'_, Result<Listening>> {
        let path = path.to_string();
        Box::pin(async move {
            let _ = std::fs::remove_file(&path);
            let listener = tokio::net::UnixListener::bind(&path)
                .map_err(|source| TransportError::Listen { path: path.clone(), source })?;
            let (tx, rx) = tokio::sync::mpsc::channel(16);
            let task = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    if tx.send(Box::new(stream) as Box<dyn Duplex>).await.is_err() {
                        break;
                    }
                }
            });
            Ok(Listening { incoming: rx, keepalive: Box::new(SocketGuard { task, path }) })
        })
    }
}

/// Stops accepting and removes the socket file.
struct SocketGuard {
    task: tokio::task::JoinHandle<()>,
    path: String,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How long a child may take to exit after its stdin closed.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// Owns the child process. Dropped after the channel's streams (so stdin is already closed):
/// waits in the background for a clean exit, then kills.
struct ChildGuard(Option<(tokio::process::Child, Option<crate::vocab::cancel::Registered>)>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let Some((mut child, registered)) = self.0.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if tokio::time::timeout(EXIT_GRACE, child.wait()).await.is_err() {
                        let _ = child.kill().await;
                    }
                    drop(registered);
                });
            }
            Err(_) => {
                let _ = child.start_kill();
            }
        }
    }
}
