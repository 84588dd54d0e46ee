//! Where ImportPaths gets NARs from: another serve session's DumpStorePath (read in place,
//! exactly narSize bytes) or this machine's filesystem.

use std::io;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWriteExt};

use super::channel::BoxFuture;
use super::{OP_DUMP_STORE_PATH, PathInfo, ServeClient};
use crate::Result;
use crate::nix::wire;

/// A NAR stream borrowed from its source.
pub type NarStream<'s> = Pin<Box<dyn AsyncRead + Send + 's>>;

/// Where [`ServeClient::import_paths`] gets each path's NAR (exactly `info.nar_size` bytes).
pub trait NarSource: Send {
    fn open_nar<'s>(&'s mut self, info: &'s PathInfo) -> BoxFuture<'s, Result<NarStream<'s>>>;
}

/// Another serve session: each NAR is a DumpStorePath read straight from its stream.
impl NarSource for ServeClient {
    fn open_nar<'s>(&'s mut self, info: &'s PathInfo) -> BoxFuture<'s, Result<NarStream<'s>>> {
        Box::pin(async move {
            self.check_usable()?;
            let w = &mut self.writer;
            let sent = async {
                wire::write_u64(w, OP_DUMP_STORE_PATH).await?;
                wire::write_bytes(w, info.path.as_str().as_bytes()).await?;
                w.flush().await
            }
            .await;
            self.io("DumpStorePath", sent).await?;
            // Broken until the whole NAR has been read.
            self.broken = info.nar_size > 0;
            let s: NarStream<'s> = Box::pin(DumpReader { client: self, left: info.nar_size });
            Ok(s)
        })
    }
}

/// Reads exactly the announced NAR size from a session, then marks it usable again.
struct DumpReader<'s> {
    client: &'s mut ServeClient,
    left: u64,
}

impl AsyncRead for DumpReader<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        use std::task::Poll;
        if self.left == 0 || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let want = (buf.remaining() as u64).min(self.left) as usize;
        let mut limited = tokio::io::ReadBuf::new(buf.initialize_unfilled_to(want));
        match Pin::new(&mut self.client.reader).poll_read(cx, &mut limited) {
            Poll::Ready(Ok(())) => {
                let n = limited.filled().len();
                if n == 0 {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{} closed the connection in the middle of a NAR", self.client.label),
                    )));
                }
                buf.advance(n);
                self.left -= n as u64;
                if self.left == 0 {
                    self.client.broken = false;
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// Store paths read from this machine's filesystem (the NAR written by rvbuild).
pub struct FsNarSource;

impl NarSource for FsNarSource {
    fn open_nar<'s>(&'s mut self, info: &'s PathInfo) -> BoxFuture<'s, Result<NarStream<'s>>> {
        Box::pin(async move {
            let s: NarStream<'s> =
                Box::pin(super::nar_stream::spawn_dump(std::path::PathBuf::from(info.path.as_str())));
            Ok(s)
        })
    }
}
