//! One SSH exec channel as a [`ServeChannel`]: a pump task splits the channel's messages into a
//! stdout stream (data) and a stderr stream (extended data 1) and, when the channel ends,
//! explains an unusual end as a [`TransportFailure`] on the stdout stream (connection lost,
//! `nix-store` missing: exit 127, user not trusted by the remote Nix). The writer sends EOF when
//! shut down or dropped; dropping the guard ends the remote command (EOF, then TERM if it has not
//! exited, then channel close).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Sig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};

use super::{FailureClass, ServeChannel, TransportFailure};

/// Chunks in flight per stream before the pump waits for the reader. While it waits, russh's
/// own per-channel queue fills and its event loop stops reading the connection, which pauses
/// every channel to this builder: readers must keep reading (ServeClient drains stderr in a
/// task and reads replies as they come).
const QUEUE: usize = 64;
/// How long a remote command may take to exit after EOF before it gets SIGTERM.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Texts the remote Nix prints when the SSH user is not trusted by its daemon.
const UNTRUSTED: &[&str] = &[
    "not privileged to build input-addressed derivations",
    "lacks a valid signature",
    "lacks a signature by a trusted key",
    "is not a trusted user",
];

/// What the channel pump needs to know for its messages.
#[derive(Clone)]
pub(crate) struct ChannelContext {
    /// `builder NAME (USER@HOST:PORT)`
    pub who: String,
    pub user: String,
    pub command: String,
}

type Chunk = io::Result<Vec<u8>>;

/// An [`AsyncRead`] over chunks sent by the pump; an `Err` chunk ends the stream with that error.
struct ChunkReader {
    rx: mpsc::Receiver<Chunk>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ChunkReader {
    fn new(rx: mpsc::Receiver<Chunk>) -> Self {
        ChunkReader { rx, buf: Vec::new(), pos: 0, done: false }
    }
}

impl AsyncRead for ChunkReader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.pos < self.buf.len() {
                let n = out.remaining().min(self.buf.len() - self.pos);
                let start = self.pos;
                out.put_slice(&self.buf[start..start + n]);
                self.pos += n;
                return Poll::Ready(Ok(()));
            }
            if self.done {
                return Poll::Ready(Ok(()));
            }
            match ready!(self.rx.poll_recv(cx)) {
                Some(Ok(v)) => {
                    self.buf = v;
                    self.pos = 0;
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Poll::Ready(Err(e));
                }
                None => self.done = true,
            }
        }
    }
}

/// The channel's stdin: EOF on shutdown, and on drop when not shut down.
struct EofWriter {
    inner: Pin<Box<dyn AsyncWrite + Send>>,
    half: Arc<ChannelWriteHalf<Msg>>,
    /// Shared with the guard, so EOF is sent once.
    eof_sent: Arc<AtomicBool>,
}

impl AsyncWrite for EofWriter {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.inner.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = ready!(self.inner.as_mut().poll_shutdown(cx));
        self.eof_sent.store(true, Ordering::SeqCst);
        Poll::Ready(r)
    }
}

impl Drop for EofWriter {
    fn drop(&mut self) {
        if self.eof_sent.swap(true, Ordering::SeqCst) {
            return;
        }
        let half = self.half.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = half.eof().await;
            });
        }
    }
}

/// Keeps the connection alive while the channel is used; on drop, ends the remote command.
struct SessionGuard {
    half: Arc<ChannelWriteHalf<Msg>>,
    eof_sent: Arc<AtomicBool>,
    exited: watch::Receiver<bool>,
    conn: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let half = self.half.clone();
        let mut exited = self.exited.clone();
        let conn = self.conn.take();
        let send_eof = !self.eof_sent.swap(true, Ordering::SeqCst);
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        rt.spawn(async move {
            if send_eof {
                let _ = half.eof().await;
            }
            if !*exited.borrow() {
                let _ = tokio::time::timeout(EXIT_GRACE, exited.wait_for(|e| *e)).await;
            }
            if !*exited.borrow() {
                let _ = half.signal(Sig::TERM).await;
                let _ = tokio::time::timeout(EXIT_GRACE, exited.wait_for(|e| *e)).await;
            }
            let _ = half.close().await;
            drop(conn);
        });
    }
}

/// Wraps an exec'd channel. `conn` is kept alive for as long as the channel is.
pub(crate) fn serve_channel(
    channel: russh::Channel<Msg>,
    conn: Box<dyn std::any::Any + Send + Sync>,
    ctx: ChannelContext,
    label: String,
) -> ServeChannel {
    let (rd, wr) = channel.split();
    let wr = Arc::new(wr);
    let (out_tx, out_rx) = mpsc::channel(QUEUE);
    let (err_tx, err_rx) = mpsc::channel(QUEUE);
    let (exit_tx, exit_rx) = watch::channel(false);
    let eof_sent = Arc::new(AtomicBool::new(false));
    tokio::spawn(pump(rd, out_tx, err_tx, exit_tx, ctx));
    ServeChannel {
        from_builder: Box::pin(ChunkReader::new(out_rx)),
        to_builder: Box::pin(EofWriter {
            inner: Box::pin(wr.make_writer()),
            half: wr.clone(),
            eof_sent: eof_sent.clone(),
        }),
        stderr: Box::pin(ChunkReader::new(err_rx)),
        keepalive: Box::new(SessionGuard { half: wr, eof_sent, exited: exit_rx, conn: Some(conn) }),
        label,
    }
}

async fn pump(
    mut rd: ChannelReadHalf,
    out: mpsc::Sender<Chunk>,
    err: mpsc::Sender<Chunk>,
    exited: watch::Sender<bool>,
    ctx: ChannelContext,
) {
    let mut status: Option<u32> = None;
    let mut signal: Option<String> = None;
    let mut got_stdout = false;
    let mut closed = false;
    let mut refused = false;
    let mut tail = String::new();
    while let Some(msg) = rd.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                got_stdout = true;
                // A reader that went away is fine: keep draining so the connection never stalls.
                let _ = out.send(Ok(data.to_vec())).await;
            }
            ChannelMsg::ExtendedData { data, ext: 1 } => {
                tail.push_str(&String::from_utf8_lossy(&data));
                if tail.len() > 8192 {
                    let cut = tail.len() - 4096;
                    let cut = (cut..tail.len()).find(|i| tail.is_char_boundary(*i)).unwrap_or(tail.len());
                    tail.drain(..cut);
                }
                let _ = err.send(Ok(data.to_vec())).await;
            }
            ChannelMsg::ExitStatus { exit_status } => {
                status = Some(exit_status);
                let _ = exited.send(true);
            }
            ChannelMsg::ExitSignal { signal_name, .. } => {
                signal = Some(format!("{signal_name:?}"));
                let _ = exited.send(true);
            }
            // The only request sent with want_reply is the exec: it was refused, and nothing
            // will come on this channel.
            ChannelMsg::Failure => {
                refused = true;
                break;
            }
            ChannelMsg::Close => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    let _ = exited.send(true);
    if let Some(f) = ending(&ctx, status, signal.as_deref(), got_stdout, closed, refused, &tail) {
        let _ = out.send(Err(f.into_io())).await;
    }
}

/// Explains how a channel ended, when that is more than "the command exited".
pub(crate) fn ending(
    ctx: &ChannelContext,
    status: Option<u32>,
    signal: Option<&str>,
    got_stdout: bool,
    closed: bool,
    refused: bool,
    stderr_tail: &str,
) -> Option<TransportFailure> {
    let program = ctx.command.split_whitespace().next().unwrap_or("the command");
    if refused {
        return Some(TransportFailure::new(
            FailureClass::Setup,
            format!("{}: sshd refused to run `{}`", ctx.who, ctx.command),
            Some("check the builder's sshd_config (ForceCommand, command= in authorized_keys, MaxSessions)".into()),
        ));
    }
    match (status, signal) {
        (None, Some(sig)) => {
            return Some(TransportFailure::new(
                FailureClass::Unreachable,
                format!("{}: `{}` was killed there by signal {sig}", ctx.who, ctx.command),
                Some("the builder may be shutting down or out of memory; its work can be retried elsewhere".into()),
            ));
        }
        (None, None) => {
            let how = if closed { "the SSH session ended without an exit status" } else { "lost the SSH connection" };
            return Some(TransportFailure::new(
                FailureClass::Unreachable,
                format!("{}: {how} while `{}` was running", ctx.who, ctx.command),
                Some("the builder went down or the network failed; its work can be retried elsewhere".into()),
            ));
        }
        _ => {}
    }
    if status == Some(127) && !got_stdout {
        return Some(TransportFailure::new(
            FailureClass::Setup,
            format!(
                "{}: `{program}` was not found there (exit status 127): {}",
                ctx.who,
                last_line(stderr_tail).unwrap_or("command not found")
            ),
            Some(format!(
                "install Nix on the builder, and make `{program}` reachable on the PATH of non-interactive SSH sessions \
                 (check with `ssh HOST {program} --version`)"
            )),
        ));
    }
    if let Some(line) = stderr_tail.lines().find(|l| UNTRUSTED.iter().any(|u| l.contains(u))) {
        return Some(TransportFailure::new(
            FailureClass::Setup,
            format!(
                "{}: the remote Nix refused the request because `{}` is not a trusted user there: {}",
                ctx.who,
                ctx.user,
                line.trim()
            ),
            Some(format!(
                "add `trusted-users = {}` to nix.conf on the builder and restart nix-daemon there{}",
                ctx.user,
                if ctx.user == "root" { "" } else { " (or connect as root)" }
            )),
        ));
    }
    None
}

fn last_line(s: &str) -> Option<&str> {
    s.lines().rev().map(str::trim).find(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ChannelContext {
        ChannelContext {
            who: "builder b (nix@h:22)".into(),
            user: "nix".into(),
            command: "nix-store --serve --write".into(),
        }
    }

    #[test]
    fn endings_are_classified() {
        let c = ctx();
        assert!(ending(&c, Some(0), None, true, true, false, "").is_none());
        assert!(ending(&c, Some(1), None, false, true, false, "error: unknown serve command 42").is_none());
        let lost = ending(&c, None, None, true, false, false, "").expect("lost");
        assert_eq!(lost.class, FailureClass::Unreachable);
        let refused = ending(&c, None, None, false, false, true, "").expect("refused");
        assert!(refused.class == FailureClass::Setup && refused.message.contains("sshd refused"));
        let killed = ending(&c, None, Some("KILL"), true, true, false, "").expect("killed");
        assert!(killed.class == FailureClass::Unreachable && killed.message.contains("signal KILL"));
        let missing = ending(&c, Some(127), None, false, true, false, "bash: line 1: nix-store: command not found\n")
            .expect("127");
        assert_eq!(missing.class, FailureClass::Setup);
        assert!(missing.message.contains("`nix-store` was not found") && missing.message.contains("command not found"));
        assert!(missing.help.unwrap_or_default().contains("install Nix"));
        let untrusted = ending(
            &c,
            Some(1),
            None,
            true,
            true,
            false,
            "error: you are not privileged to build input-addressed derivations\n",
        )
        .expect("untrusted");
        assert!(untrusted.message.contains("`nix` is not a trusted user"));
        assert!(untrusted.help.unwrap_or_default().contains("trusted-users = nix"));
    }
}
