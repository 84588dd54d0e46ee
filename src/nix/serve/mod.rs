//! The client side of Nix's serve protocol (`nix-store --serve --write`): handshake, path
//! queries, NAR download and upload, BuildDerivation with typed results. It runs over any
//! [`ServeChannel`]; every store path the builder sends back is validated.

pub mod channel;
mod messages;
mod nar_source;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;

use super::drv::BasicDerivation;
use super::error::NixError;
use super::nar_stream;
use super::store_path::{NarHash, StorePath, StorePathError};
use super::wire::{self, MAX_PATH};
use crate::{Error, Result};
use channel::ServeChannel;

pub use messages::{BuildOptions, BuildResult, BuildStatus, PathInfo};
use messages::{check_built_outputs, read_build_result, write_basic_derivation, write_build_options};
pub use nar_source::{FsNarSource, NarSource, NarStream};

const CLIENT_MAGIC: u64 = 0x390c_9deb;
const SERVER_MAGIC: u64 = 0x5452_eecb;
/// The version rvbuild offers: 2.7, what Nix 2.4 to 2.34 speak and newer servers fall back to.
/// (2.8 changes only the `builtOutputs` encoding, which rvbuild does not need: output paths
/// come from the derivation. The 2.8 reader exists for when this is raised.)
pub const CLIENT_VERSION: u64 = 0x207;
/// The oldest server accepted: 2.4 (what Nix 2.0 sends), the first with narHash in PathInfo.
pub const MIN_SERVER_VERSION: u64 = 0x204;

const OP_QUERY_VALID_PATHS: u64 = 1;
const OP_QUERY_PATH_INFOS: u64 = 2;
const OP_DUMP_STORE_PATH: u64 = 3;
const OP_IMPORT_PATHS: u64 = 4;
const OP_BUILD_DERIVATION: u64 = 8;
const OP_ADD_TO_STORE_NAR: u64 = 9;
const EXPORT_MAGIC: u64 = 0x4558_494e;

/// Lines of builder stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 40;
const CHUNK: usize = 64 * 1024;

/// Where builder stderr lines (build logs) go, besides the tail kept for errors.
pub type LogSink = mpsc::UnboundedSender<String>;

/// The last lines of the builder's stderr, filled by a background task.
#[derive(Clone, Default)]
struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    fn push(&self, line: String) {
        if let Ok(mut q) = self.0.lock() {
            if q.len() == STDERR_TAIL_LINES {
                q.pop_front();
            }
            q.push_back(line);
        }
    }

    fn text(&self) -> String {
        match self.0.lock() {
            Ok(q) => q.iter().cloned().collect::<Vec<_>>().join("\n"),
            Err(_) => String::new(),
        }
    }
}

/// One open serve session. Requests are strictly sequential (one request, one reply).
pub struct ServeClient {
    reader: BufReader<Pin<Box<dyn AsyncRead + Send>>>,
    writer: BufWriter<Pin<Box<dyn AsyncWrite + Send>>>,
    version: u64,
    label: String,
    stderr: StderrTail,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
    /// Set once the stream may be out of step (an error mid-message); later requests fail.
    broken: bool,
    _keepalive: Box<dyn Any + Send>,
}

impl ServeClient {
    /// Performs the handshake on a fresh channel. Builder stderr lines go to `log` if given.
    pub async fn connect(channel: ServeChannel, log: Option<LogSink>) -> Result<ServeClient> {
        let tail = StderrTail::default();
        let task_tail = tail.clone();
        let mut stderr = BufReader::new(channel.stderr);
        let stderr_task = tokio::spawn(async move {
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match stderr.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_string();
                        if let Some(log) = &log {
                            let _ = log.send(line.clone());
                        }
                        task_tail.push(line);
                    }
                }
            }
        });
        let mut client = ServeClient {
            reader: BufReader::with_capacity(CHUNK, channel.from_builder),
            writer: BufWriter::with_capacity(CHUNK, channel.to_builder),
            version: 0,
            label: channel.label,
            stderr: tail,
            stderr_task: Some(stderr_task),
            broken: false,
            _keepalive: channel.keepalive,
        };
        client.handshake().await?;
        Ok(client)
    }

    async fn handshake(&mut self) -> Result<()> {
        let sent = async {
            wire::write_u64(&mut self.writer, CLIENT_MAGIC).await?;
            wire::write_u64(&mut self.writer, CLIENT_VERSION).await?;
            self.writer.flush().await
        }
        .await;
        // Read the magic by hand: a short banner followed by EOF must still be shown. A peer
        // that printed a banner and exited may also have broken our write: what it sent is the
        // better explanation, so read it before reporting the write error.
        let mut first = [0u8; 8];
        let mut have = 0;
        while have < first.len() {
            match self.reader.read(&mut first[have..]).await {
                Ok(0) => break,
                Ok(n) => have += n,
                Err(e) => return Err(self.fail(e, "the handshake").await),
            }
        }
        if have == 0 {
            let e = sent.err().unwrap_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof));
            return Err(self.fail(e, "the handshake").await);
        }
        if have < first.len() || u64::from_le_bytes(first) != SERVER_MAGIC {
            // Show what arrived instead: usually a login banner or shell output.
            let mut got = first[..have].to_vec();
            if have == first.len() {
                let mut more = vec![0u8; 120];
                let n = tokio::time::timeout(Duration::from_millis(300), self.reader.read(&mut more))
                    .await
                    .ok()
                    .and_then(|r| r.ok())
                    .unwrap_or(0);
                got.extend_from_slice(&more[..n]);
            }
            self.broken = true;
            return Err(NixError::ProtocolMismatch {
                label: self.label.clone(),
                got: String::from_utf8_lossy(&got).into_owned(),
            }
            .into());
        }
        let version = match wire::read_u64(&mut self.reader).await {
            Ok(v) => v,
            Err(e) => return Err(self.fail(e, "the handshake").await),
        };
        if version >> 8 != 2 || version < MIN_SERVER_VERSION {
            self.broken = true;
            return Err(NixError::UnsupportedVersion {
                label: self.label.clone(),
                version,
                min_version: MIN_SERVER_VERSION,
            }
            .into());
        }
        self.version = version.min(CLIENT_VERSION);
        Ok(())
    }

    /// The negotiated protocol version as (major, minor).
    pub fn protocol_version(&self) -> (u8, u8) {
        ((self.version >> 8) as u8, (self.version & 0xff) as u8)
    }

    fn minor(&self) -> u64 {
        self.version & 0xff
    }

    /// Whether AddToStoreNar is available (protocol 2.5); otherwise use ImportPaths.
    pub fn supports_add_to_store_nar(&self) -> bool {
        self.minor() >= 5
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// False once an error left the stream out of step; open a new session then.
    pub fn is_usable(&self) -> bool {
        !self.broken
    }

    /// The last lines the builder wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr.text()
    }

    /// Turns an I/O error into a builder error, with the builder's stderr when it hung up.
    async fn fail(&mut self, e: io::Error, during: &str) -> Error {
        self.broken = true;
        // The transport knows better what went wrong (lost connection, Nix missing there). A
        // failed write means the peer is gone: the read side may carry that explanation.
        let mut explained = crate::vocab::error::TransportFailure::from_io(&e).cloned();
        if explained.is_none() && e.kind() == io::ErrorKind::BrokenPipe {
            let mut byte = [0u8; 1];
            if let Ok(Err(r)) = tokio::time::timeout(Duration::from_secs(2), self.reader.read(&mut byte)).await {
                explained = crate::vocab::error::TransportFailure::from_io(&r).cloned();
            }
        }
        if let Some(mut f) = explained {
            f.message = format!("{} (during {during})", f.message);
            return f.into_error();
        }
        match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                // Give the stderr reader a moment to collect the builder's last words.
                if let Some(task) = self.stderr_task.take() {
                    let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
                }
                let tail = self.stderr.text();
                let tail = if tail.is_empty() { "(nothing on stderr)".to_string() } else { tail };
                NixError::ConnectionClosed { label: self.label.clone(), during: during.to_string(), stderr_tail: tail }
                    .into()
            }
            io::ErrorKind::InvalidData => {
                NixError::Protocol { label: self.label.clone(), during: during.to_string(), source: e }.into()
            }
            _ => NixError::Io { label: self.label.clone(), during: during.to_string(), source: e }.into(),
        }
    }

    fn check_usable(&self) -> Result<()> {
        if self.broken {
            return Err(NixError::SessionBroken { label: self.label.clone() }.into());
        }
        Ok(())
    }

    fn bad_path(&mut self, what: &str, source: StorePathError) -> Error {
        self.broken = true;
        NixError::BadPath { label: self.label.clone(), what: what.to_string(), source }.into()
    }

    async fn read_paths(&mut self, what: &str) -> Result<BTreeSet<StorePath>> {
        let list = match wire::read_strings(&mut self.reader, MAX_PATH).await {
            Ok(l) => l,
            Err(e) => return Err(self.fail(e, what).await),
        };
        let mut out = BTreeSet::new();
        for s in list {
            out.insert(StorePath::parse(&s).map_err(|e| self.bad_path(what, e))?);
        }
        Ok(out)
    }

    /// Runs an I/O sequence, mapping its error.
    async fn io<T>(&mut self, during: &str, r: io::Result<T>) -> Result<T> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => Err(self.fail(e, during).await),
        }
    }

    /// QueryValidPaths: which of `paths` are valid on the builder (a reply naming other paths
    /// is refused).
    pub async fn query_valid_paths(
        &mut self,
        paths: &[StorePath],
        lock: bool,
        substitute: bool,
    ) -> Result<BTreeSet<StorePath>> {
        self.check_usable()?;
        let w = &mut self.writer;
        let sent = async {
            wire::write_u64(w, OP_QUERY_VALID_PATHS).await?;
            wire::write_bool(w, lock).await?;
            wire::write_bool(w, substitute).await?;
            wire::write_strings(w, paths.iter().map(StorePath::as_str)).await?;
            w.flush().await
        }
        .await;
        self.io("QueryValidPaths", sent).await?;
        let what = "the reply to QueryValidPaths";
        let valid = self.read_paths(what).await?;
        if let Some(path) = valid.iter().find(|p| !paths.contains(p)) {
            self.broken = true;
            return Err(NixError::UnrequestedPath {
                label: self.label.clone(),
                what: what.to_string(),
                path: path.clone(),
            }
            .into());
        }
        Ok(valid)
    }

    /// QueryPathInfos: information about the valid ones among `paths` (invalid are left out).
    /// A reply naming a path that was not asked for, or one twice, is refused.
    pub async fn query_path_infos(&mut self, paths: &[StorePath]) -> Result<BTreeMap<StorePath, PathInfo>> {
        self.check_usable()?;
        let w = &mut self.writer;
        let sent = async {
            wire::write_u64(w, OP_QUERY_PATH_INFOS).await?;
            wire::write_strings(w, paths.iter().map(StorePath::as_str)).await?;
            w.flush().await
        }
        .await;
        self.io("QueryPathInfos", sent).await?;
        let what = "the reply to QueryPathInfos";
        let mut out = BTreeMap::new();
        loop {
            let r = wire::read_string(&mut self.reader, MAX_PATH).await;
            let s = self.io(what, r).await?;
            if s.is_empty() {
                break;
            }
            let path = StorePath::parse(&s).map_err(|e| self.bad_path(what, e))?;
            if !paths.contains(&path) || out.contains_key(&path) {
                // Named twice or never asked for: a builder must not slip in other store paths.
                self.broken = true;
                return Err(
                    NixError::UnrequestedPath { label: self.label.clone(), what: what.to_string(), path }.into()
                );
            }
            let r = wire::read_string(&mut self.reader, MAX_PATH).await;
            let deriver = self.io(what, r).await?;
            let deriver = if deriver.is_empty() {
                None
            } else {
                Some(StorePath::parse(&deriver).map_err(|e| self.bad_path(what, e))?)
            };
            let references = self.read_paths(what).await?;
            let r = wire::read_u64(&mut self.reader).await;
            let _download_size = self.io(what, r).await?;
            let r = wire::read_u64(&mut self.reader).await;
            let nar_size = self.io(what, r).await?;
            let (mut nar_hash, mut ca, mut sigs) = (None, String::new(), Vec::new());
            if self.minor() >= 4 {
                let r = wire::read_string(&mut self.reader, 256).await;
                let h = self.io(what, r).await?;
                let parsed = NarHash::parse(&h).map_err(|source| {
                    self.broken = true;
                    NixError::BadNarHash { label: self.label.clone(), what: what.to_string(), source }
                })?;
                nar_hash = Some(parsed);
                let r = wire::read_string(&mut self.reader, MAX_PATH).await;
                ca = self.io(what, r).await?;
                let r = wire::read_strings(&mut self.reader, MAX_PATH).await;
                sigs = self.io(what, r).await?;
            }
            out.insert(path.clone(), PathInfo { path, deriver, references, nar_size, nar_hash, ca, sigs });
        }
        Ok(out)
    }

    /// DumpStorePath: writes the NAR of `path` to `out`. The protocol does not frame the NAR,
    /// so exactly `nar_size` bytes (from QueryPathInfos) are read. Returns the NAR's hash,
    /// which the caller compares with the expected one.
    pub async fn dump_store_path(
        &mut self,
        path: &StorePath,
        nar_size: u64,
        out: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<NarHash> {
        self.check_usable()?;
        if nar_size == 0 {
            // Every NAR is at least ~100 bytes; 0 means the size is unknown.
            return Err(NixError::NarSizeUnknown { path: path.clone() }.into());
        }
        let w = &mut self.writer;
        let sent = async {
            wire::write_u64(w, OP_DUMP_STORE_PATH).await?;
            wire::write_bytes(w, path.as_str().as_bytes()).await?;
            w.flush().await
        }
        .await;
        self.io("DumpStorePath", sent).await?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut left = nar_size;
        while left > 0 {
            let want = left.min(CHUNK as u64) as usize;
            let r = self.reader.read(&mut buf[..want]).await;
            let n = self.io(&format!("DumpStorePath {path}"), r).await?;
            if n == 0 {
                let e = io::Error::from(io::ErrorKind::UnexpectedEof);
                return Err(self.fail(e, &format!("DumpStorePath {path}")).await);
            }
            hasher.update(&buf[..n]);
            if let Err(source) = out.write_all(&buf[..n]).await {
                self.broken = true;
                return Err(NixError::WriteNar { path: path.clone(), label: self.label.clone(), source }.into());
            }
            left -= n as u64;
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&hasher.finalize());
        Ok(NarHash(hash))
    }

    /// DumpStorePath restored into a new directory `dest` on this machine (file contents
    /// stream in chunks through a blocking restorer thread). On any error, including a hash
    /// that differs from the announced one, nothing is left at `dest`.
    pub async fn dump_store_path_to_dir(&mut self, info: &PathInfo, dest: &Path) -> Result<()> {
        let (mut sink, restorer) = nar_stream::spawn_restore(dest.to_path_buf());
        let dumped = self.dump_store_path(&info.path, info.nar_size, &mut sink).await;
        drop(sink);
        let restored = restorer.await.map_err(|source| NixError::ThreadFailed { what: "NAR restorer", source })?;
        let restored = restored.map_err(|source| NixError::Restore {
            path: info.path.clone(),
            label: self.label.clone(),
            dest: dest.to_path_buf(),
            source,
        });
        let checked = match (dumped, restored) {
            (Ok(hash), Ok(_)) => check_hash(info, hash, &self.label),
            (Err(e), Ok(_)) => Err(e),
            // The restorer removed its partial tree; the stream's error explains more.
            (Err(e), Err(_)) => return Err(e),
            (Ok(_), Err(e)) => return Err(e.into()),
        };
        if checked.is_err() {
            // Restored, but not what was announced (or the stream failed after it): an
            // unverified tree is not kept.
            let is_dir = std::fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir());
            let _ = if is_dir { std::fs::remove_dir_all(dest) } else { std::fs::remove_file(dest) };
        }
        checked
    }

    /// AddToStoreNar (protocol 2.5): makes `info.path` valid on the builder from exactly
    /// `info.nar_size` NAR bytes read from `nar`.
    pub async fn add_to_store_nar(&mut self, info: &PathInfo, nar: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        self.check_usable()?;
        if !self.supports_add_to_store_nar() {
            return Err(NixError::NoAddToStoreNar { label: self.label.clone(), minor: self.minor() }.into());
        }
        let hash = info.nar_hash.ok_or_else(|| NixError::NoNarHash { path: info.path.clone() })?;
        if info.nar_size == 0 {
            return Err(NixError::NoNarSize { path: info.path.clone() }.into());
        }
        let w = &mut self.writer;
        let sent = async {
            wire::write_u64(w, OP_ADD_TO_STORE_NAR).await?;
            wire::write_bytes(w, info.path.as_str().as_bytes()).await?;
            wire::write_bytes(w, info.deriver.as_ref().map_or("", StorePath::as_str).as_bytes()).await?;
            wire::write_bytes(w, hash.to_base16().as_bytes()).await?;
            wire::write_strings(w, info.references.iter().map(StorePath::as_str)).await?;
            wire::write_u64(w, 0).await?; // registrationTime: the server uses "now"
            wire::write_u64(w, info.nar_size).await?;
            wire::write_bool(w, false).await?; // ultimate
            wire::write_strings(w, &info.sigs).await?;
            wire::write_bytes(w, info.ca.as_bytes()).await
        }
        .await;
        self.io("AddToStoreNar", sent).await?;
        self.send_nar(info, nar).await?;
        let r = self.writer.flush().await;
        self.io("AddToStoreNar", r).await?;
        let r = wire::read_u64(&mut self.reader).await;
        let during = format!("AddToStoreNar of {}", info.path);
        match self.io(&during, r).await? {
            1 => Ok(()),
            n => {
                self.broken = true;
                Err(NixError::UnexpectedReply { label: self.label.clone(), during, reply: n }.into())
            }
        }
    }

    /// Copies exactly `info.nar_size` bytes from `nar` to the builder.
    async fn send_nar(&mut self, info: &PathInfo, nar: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        let mut buf = vec![0u8; CHUNK];
        let mut left = info.nar_size;
        while left > 0 {
            let want = left.min(CHUNK as u64) as usize;
            let n = match nar.read(&mut buf[..want]).await {
                Ok(0) => {
                    self.broken = true;
                    return Err(NixError::NarTooShort { path: info.path.clone(), left }.into());
                }
                Ok(n) => n,
                Err(source) => {
                    self.broken = true;
                    return Err(NixError::ReadNar { path: info.path.clone(), source }.into());
                }
            };
            let r = self.writer.write_all(&buf[..n]).await;
            self.io(&format!("uploading {}", info.path), r).await?;
            left -= n as u64;
        }
        Ok(())
    }

    /// ImportPaths (export stream): the upload for servers below 2.5. `paths` must be in
    /// dependency order; each NAR is read from `nars` (exactly its narSize bytes).
    pub async fn import_paths(&mut self, paths: &[PathInfo], nars: &mut dyn NarSource) -> Result<()> {
        self.check_usable()?;
        let r = wire::write_u64(&mut self.writer, OP_IMPORT_PATHS).await;
        self.io("ImportPaths", r).await?;
        for info in paths {
            let r = wire::write_u64(&mut self.writer, 1).await;
            self.io("ImportPaths", r).await?;
            let mut nar = nars.open_nar(info).await?;
            self.send_nar(info, &mut nar).await?;
            drop(nar);
            let w = &mut self.writer;
            let sent = async {
                wire::write_u64(w, EXPORT_MAGIC).await?;
                wire::write_bytes(w, info.path.as_str().as_bytes()).await?;
                wire::write_strings(w, info.references.iter().map(StorePath::as_str)).await?;
                wire::write_bytes(w, info.deriver.as_ref().map_or("", StorePath::as_str).as_bytes()).await?;
                wire::write_u64(w, 0).await
            }
            .await;
            self.io("ImportPaths", sent).await?;
        }
        let sent = async {
            wire::write_u64(&mut self.writer, 0).await?;
            self.writer.flush().await
        }
        .await;
        self.io("ImportPaths", sent).await?;
        let r = wire::read_u64(&mut self.reader).await;
        match self.io("ImportPaths", r).await? {
            1 => Ok(()),
            n => {
                self.broken = true;
                Err(NixError::UnexpectedReply { label: self.label.clone(), during: "ImportPaths".into(), reply: n }
                    .into())
            }
        }
    }

    /// BuildDerivation: builds `drv` (whose inputs must be valid on the builder) and returns
    /// the typed result. Build logs stream to the log sink meanwhile.
    pub async fn build_derivation(
        &mut self,
        drv_path: &StorePath,
        drv: &BasicDerivation,
        opts: &BuildOptions,
    ) -> Result<BuildResult> {
        self.check_usable()?;
        let minor = self.minor();
        let w = &mut self.writer;
        let sent = async {
            wire::write_u64(w, OP_BUILD_DERIVATION).await?;
            wire::write_bytes(w, drv_path.as_str().as_bytes()).await?;
            write_basic_derivation(w, drv).await?;
            write_build_options(w, opts, minor).await?;
            w.flush().await
        }
        .await;
        let during = format!("BuildDerivation {drv_path}");
        self.io(&during, sent).await?;
        let r = read_build_result(&mut self.reader, minor).await;
        match r {
            Ok(Ok(res)) => match check_built_outputs(&res, drv) {
                Ok(()) => Ok(res),
                Err(source) => Err(NixError::BadBuildResult { label: self.label.clone(), during, source }.into()),
            },
            Ok(Err(source)) => {
                self.broken = true;
                Err(NixError::BadBuildResult { label: self.label.clone(), during, source }.into())
            }
            Err(e) => Err(self.fail(e, &during).await),
        }
    }
}

/// Checks a streamed NAR's hash against the advertised one.
pub fn check_hash(info: &PathInfo, got: NarHash, from: &str) -> Result<()> {
    match info.nar_hash {
        Some(want) if want != got => {
            Err(NixError::HashMismatch { from: from.to_string(), path: info.path.clone(), got, want }.into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASKED: &str = "/nix/store/7sqpqjj28pjaqp6b2yf385gnhgbq09lz-a";
    const EVIL: &str = "/nix/store/11111111111111111111111111111111-evil";

    /// A client whose builder answers with the scripted `replies` (a malicious builder cannot
    /// be a real Nix; this one is written byte by byte).
    async fn scripted(replies: Vec<u8>) -> ServeClient {
        let mut stream = Vec::new();
        wire::write_u64(&mut stream, SERVER_MAGIC).await.expect("w");
        wire::write_u64(&mut stream, 0x207).await.expect("w");
        stream.extend_from_slice(&replies);
        let channel = ServeChannel {
            from_builder: Box::pin(std::io::Cursor::new(stream)),
            to_builder: Box::pin(tokio::io::sink()),
            stderr: Box::pin(tokio::io::empty()),
            keepalive: Box::new(()),
            label: "scripted".into(),
        };
        ServeClient::connect(channel, None).await.expect("handshake")
    }

    async fn path_info(out: &mut Vec<u8>, path: &str) {
        wire::write_bytes(out, path.as_bytes()).await.expect("w");
        wire::write_bytes(out, b"").await.expect("w"); // deriver
        wire::write_strings(out, Vec::<String>::new()).await.expect("w"); // references
        wire::write_u64(out, 0).await.expect("w"); // download size
        wire::write_u64(out, 120).await.expect("w"); // narSize
        let hash = format!("sha256:{}", "0".repeat(52));
        wire::write_bytes(out, hash.as_bytes()).await.expect("w");
        wire::write_bytes(out, b"").await.expect("w"); // ca
        wire::write_strings(out, Vec::<String>::new()).await.expect("w"); // sigs
    }

    #[tokio::test]
    async fn path_infos_for_paths_not_asked_for_are_refused() {
        let asked = StorePath::parse(ASKED).expect("path");
        for extra in [EVIL, ASKED] {
            let mut reply = Vec::new();
            path_info(&mut reply, ASKED).await;
            path_info(&mut reply, extra).await;
            wire::write_bytes(&mut reply, b"").await.expect("w");
            let mut c = scripted(reply).await;
            let err = c.query_path_infos(std::slice::from_ref(&asked)).await.expect_err("refused");
            assert!(err.to_string().contains(extra) && err.to_string().contains("not asked for"), "{err}");
            assert_eq!(err.kind(), crate::ErrorKind::Builder);
            assert!(!c.is_usable());
        }
        // QueryValidPaths too.
        let mut reply = Vec::new();
        wire::write_strings(&mut reply, [ASKED, EVIL]).await.expect("w");
        let err = scripted(reply).await.query_valid_paths(std::slice::from_ref(&asked), false, false).await;
        assert!(err.expect_err("refused").to_string().contains(EVIL));
        // The honest answer passes.
        let mut reply = Vec::new();
        path_info(&mut reply, ASKED).await;
        wire::write_bytes(&mut reply, b"").await.expect("w");
        let got = scripted(reply).await.query_path_infos(std::slice::from_ref(&asked)).await.expect("valid");
        assert_eq!(got.keys().collect::<Vec<_>>(), [&asked]);
    }

    #[tokio::test]
    async fn a_nar_with_another_hash_than_announced_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, b"hi\n").expect("write");
        let mut nar = Vec::new();
        crate::nix::nar::dump_path(&file, &mut nar).expect("dump");
        assert_eq!(nar.len(), 120, "path_info announces 120 bytes");
        let mut reply = Vec::new();
        path_info(&mut reply, ASKED).await;
        wire::write_bytes(&mut reply, b"").await.expect("w");
        reply.extend_from_slice(&nar);
        let mut c = scripted(reply).await;
        let asked = StorePath::parse(ASKED).expect("path");
        let infos = c.query_path_infos(std::slice::from_ref(&asked)).await.expect("infos");
        let dest = dir.path().join("out");
        let err = c.dump_store_path_to_dir(&infos[&asked], &dest).await.expect_err("hash differs");
        assert!(err.to_string().contains("was announced"), "{err}");
        assert!(std::fs::symlink_metadata(&dest).is_err(), "the unverified file was removed");
    }

    #[tokio::test]
    async fn a_build_result_naming_other_outputs_is_refused() {
        let drv_path = StorePath::parse("/nix/store/22222222222222222222222222222222-a.drv").expect("drv");
        let out =
            crate::nix::drv::DerivationOutput { path: ASKED.into(), hash_algo: String::new(), hash: String::new() };
        let drv = BasicDerivation {
            outputs: [("out".to_string(), out)].into(),
            input_srcs: BTreeSet::new(),
            platform: "x86_64-linux".into(),
            builder: "/bin/sh".into(),
            args: Vec::new(),
            env: BTreeMap::new(),
        };
        for (path, ok) in [(EVIL, false), (ASKED, true)] {
            let mut reply = Vec::new();
            wire::write_u64(&mut reply, 0).await.expect("w"); // status: Built
            wire::write_bytes(&mut reply, b"").await.expect("w"); // errorMsg
            for v in [1u64, 0, 100, 105] {
                // timesBuilt, isNonDeterministic, startTime, stopTime
                wire::write_u64(&mut reply, v).await.expect("w");
            }
            wire::write_u64(&mut reply, 1).await.expect("w"); // one builtOutputs entry
            wire::write_bytes(&mut reply, b"sha256:00!out").await.expect("w");
            let base = path.trim_start_matches("/nix/store/");
            let json = format!(r#"{{"id":"sha256:00!out","outPath":"{base}","signatures":[]}}"#);
            wire::write_bytes(&mut reply, json.as_bytes()).await.expect("w");
            let mut c = scripted(reply).await;
            let r = c.build_derivation(&drv_path, &drv, &BuildOptions::default()).await;
            match r {
                Ok(res) => assert!(ok && res.is_success(), "{res:?}"),
                Err(e) => {
                    assert!(!ok, "{e}");
                    assert!(e.to_string().contains(EVIL) && e.to_string().contains(ASKED), "{e}");
                    assert_eq!(e.kind(), crate::ErrorKind::Builder);
                }
            }
        }
    }
}
