//! Bridges between the blocking NAR code (filesystem walks in [`super::nar`]) and tokio
//! streams: a NAR of a local path as an `AsyncRead`, and an `AsyncWrite` that restores the
//! NAR written to it into a directory. Chunks travel over bounded channels, so memory stays
//! constant whatever the file sizes.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::nar::{self, NarError};

const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the two sides.
const DEPTH: usize = 8;

/// Streams the NAR of `path` (dumped on a blocking thread). A dump error reaches the reader
/// as an I/O error.
pub fn spawn_dump(path: PathBuf) -> NarReader {
    let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>(DEPTH);
    tokio::task::spawn_blocking(move || {
        let mut w = ChunkSender { tx: tx.clone(), buf: Vec::with_capacity(CHUNK) };
        let res = nar::dump_path(&path, &mut w)
            .and_then(|()| w.flush().map_err(|source| NarError::Stream { offset: 0, source }));
        if let Err(e) = res {
            // The reader may be gone already; nothing else to tell then.
            let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
        }
    });
    NarReader { rx, buf: Vec::new(), pos: 0 }
}

/// The reading end of [`spawn_dump`].
pub struct NarReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

impl AsyncRead for NarReader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        while self.pos == self.buf.len() {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = out.remaining().min(self.buf.len() - self.pos);
        let start = self.pos;
        out.put_slice(&self.buf[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// The blocking side of [`spawn_dump`]: collects writes into chunks.
struct ChunkSender {
    tx: mpsc::Sender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the NAR reader went away"))
    }
}

/// Restores the NAR written to the returned writer into `dest` (which must not exist) on a
/// blocking thread. Drop or shut down the writer, then await the handle for the result.
/// If restoring fails, later writes are discarded so a protocol stream can still be drained.
pub fn spawn_restore(dest: PathBuf) -> (RestoreWriter, JoinHandle<Result<u64, NarError>>) {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(DEPTH);
    let handle = tokio::task::spawn_blocking(move || {
        let mut reader = ChunkReceiver { rx, buf: Vec::new(), pos: 0 };
        let size = nar::restore(&mut reader, &dest)?;
        let mut rest = [0u8; 1];
        let trailing = reader.read(&mut rest).map_err(|source| NarError::Stream { offset: size, source });
        if !matches!(trailing, Ok(0)) {
            // The tree is whole, but the stream was not what was announced: do not keep it.
            let is_dir = std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir());
            let _ = if is_dir { std::fs::remove_dir_all(&dest) } else { std::fs::remove_file(&dest) };
            trailing?;
            return Err(NarError::Format { offset: size, msg: "data after the end of the NAR".into() });
        }
        Ok(size)
    });
    (RestoreWriter { tx: Some(tx), pending: None }, handle)
}

/// The blocking side of [`spawn_restore`].
struct ChunkReceiver {
    rx: mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReceiver {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.blocking_recv() {
                Some(chunk) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

type PermitFuture =
    dyn std::future::Future<Output = Result<mpsc::OwnedPermit<Vec<u8>>, mpsc::error::SendError<()>>> + Send;

/// The writing end of [`spawn_restore`].
pub struct RestoreWriter {
    tx: Option<mpsc::Sender<Vec<u8>>>,
    /// The capacity request in flight; kept across polls so its waker stays registered.
    pending: Option<Pin<Box<PermitFuture>>>,
}

impl AsyncWrite for RestoreWriter {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            let Some(tx) = self.tx.clone() else {
                return Poll::Ready(Ok(buf.len()));
            };
            self.pending = Some(Box::pin(tx.reserve_owned()));
        }
        let Some(fut) = self.pending.as_mut() else {
            return Poll::Ready(Ok(buf.len()));
        };
        match fut.as_mut().poll(cx) {
            Poll::Ready(Ok(permit)) => {
                self.pending = None;
                permit.send(buf.to_vec());
                Poll::Ready(Ok(buf.len()))
            }
            Poll::Ready(Err(_)) => {
                self.pending = None;
                self.tx = None;
                Poll::Ready(Ok(buf.len()))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx = None;
        self.pending = None;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn dump_and_restore_through_async_streams() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("src");
        std::fs::create_dir(&src).expect("mkdir");
        std::fs::write(src.join("big"), vec![7u8; 1_000_003]).expect("write");
        std::os::unix::fs::symlink("big", src.join("l")).expect("symlink");
        let mut want = Vec::new();
        nar::dump_path(&src, &mut want).expect("dump");

        let mut got = Vec::new();
        spawn_dump(src.clone()).read_to_end(&mut got).await.expect("read");
        assert!(got == want);

        let dest = dir.path().join("dest");
        let (mut w, handle) = spawn_restore(dest.clone());
        for chunk in got.chunks(10_000) {
            w.write_all(chunk).await.expect("write");
        }
        w.shutdown().await.expect("shutdown");
        drop(w);
        assert_eq!(handle.await.expect("join").expect("restore"), want.len() as u64);
        assert_eq!(std::fs::read(dest.join("big")).expect("read").len(), 1_000_003);
    }

    #[tokio::test]
    async fn errors_reach_the_other_side() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sink = Vec::new();
        let err = spawn_dump(dir.path().join("missing")).read_to_end(&mut sink).await;
        assert!(err.expect_err("missing path").to_string().contains("missing"));

        let (mut w, handle) = spawn_restore(dir.path().join("out"));
        // Not a NAR: the restorer fails, the writer keeps accepting (draining) bytes.
        for _ in 0..100 {
            w.write_all(&[1u8; 4096]).await.expect("drained");
        }
        drop(w);
        assert!(handle.await.expect("join").is_err());

        // A whole NAR followed by more bytes: refused, and the restored tree removed.
        let src = dir.path().join("f");
        std::fs::write(&src, b"data").expect("write");
        let mut nar_bytes = Vec::new();
        nar::dump_path(&src, &mut nar_bytes).expect("dump");
        nar_bytes.extend_from_slice(b"TRAILING");
        let dest = dir.path().join("trailing");
        let (mut w, handle) = spawn_restore(dest.clone());
        w.write_all(&nar_bytes).await.expect("write");
        drop(w);
        let err = handle.await.expect("join").expect_err("trailing data");
        assert!(err.to_string().contains("after the end"), "{err}");
        assert!(std::fs::symlink_metadata(&dest).is_err(), "the restored file was removed");
    }
}
