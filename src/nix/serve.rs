//! The client side of Nix's serve protocol (`nix-store --serve --write`): handshake, path
//! queries, NAR download and upload, BuildDerivation with typed results. It runs over any
//! [`ServeChannel`]; every store path the builder sends back is validated.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter,
};
use tokio::sync::mpsc;

use super::drv::BasicDerivation;
use super::nar_stream;
use super::store_path::{NarHash, StorePath};
use super::wire::{self, MAX_PATH, MAX_STRING};
use crate::transport::{BoxFuture, ServeChannel};
use crate::{Error, ErrorKind, Result};

const CLIENT_MAGIC: u64 = 0x390c_9deb;
const SERVER_MAGIC: u64 = 0x5452_eecb;
/// The version rvbuild offers: 2.7, what Nix 2.4 to 2.34 speak. Newer servers fall back to it
/// and still send the 2.7 `builtOutputs` form, which is the one checked against a real server.
pub const CLIENT_VERSION: u64 = 0x207;
/// The oldest server accepted: 2.4 (Nix 2.0 sends 2.4), the first with narHash in PathInfo.
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

/// What a builder knows about a valid store path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    pub path: StorePath,
    pub deriver: Option<StorePath>,
    pub references: BTreeSet<StorePath>,
    pub nar_size: u64,
    /// Absent only from servers below protocol 2.4.
    pub nar_hash: Option<NarHash>,
    /// Content address (`fixed:r:sha256:…`, `text:sha256:…`) or empty.
    pub ca: String,
    pub sigs: Vec<String>,
}

/// Limits for one build. 0 means "no limit" (Nix rejects larger-than-u32 values).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildOptions {
    pub max_silent_time_secs: u32,
    pub build_timeout_secs: u32,
    pub max_log_size: u64,
    pub keep_failed: bool,
}

/// BuildResult status codes (table 6 of the reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStatus {
    Built,
    Substituted,
    AlreadyValid,
    PermanentFailure,
    InputRejected,
    OutputRejected,
    TransientFailure,
    CachedFailure,
    TimedOut,
    MiscFailure,
    DependencyFailed,
    LogLimitExceeded,
    NotDeterministic,
    ResolvesToAlreadyValid,
    NoSubstituters,
    /// A code this client does not know; treated as a failure.
    Unknown(u64),
}

impl BuildStatus {
    pub fn from_code(code: u64) -> Self {
        use BuildStatus::*;
        match code {
            0 => Built,
            1 => Substituted,
            2 => AlreadyValid,
            3 => PermanentFailure,
            4 => InputRejected,
            5 => OutputRejected,
            6 => TransientFailure,
            7 => CachedFailure,
            8 => TimedOut,
            9 => MiscFailure,
            10 => DependencyFailed,
            11 => LogLimitExceeded,
            12 => NotDeterministic,
            13 => ResolvesToAlreadyValid,
            14 => NoSubstituters,
            n => Unknown(n),
        }
    }

    /// Whether the outputs are valid on the builder afterwards.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            BuildStatus::Built
                | BuildStatus::Substituted
                | BuildStatus::AlreadyValid
                | BuildStatus::ResolvesToAlreadyValid
        )
    }
}

/// The reply to BuildDerivation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildResult {
    pub status: BuildStatus,
    pub error_msg: String,
    pub times_built: u64,
    pub is_non_deterministic: bool,
    /// Unix seconds, 0 when the server does not send them.
    pub start_time: u64,
    pub stop_time: u64,
    /// Output name → path, from protocol 2.6 on (empty before). Newer Nix servers may send
    /// an empty map to 2.7 clients, so callers take output paths from the derivation.
    pub built_outputs: BTreeMap<String, StorePath>,
}

impl BuildResult {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }
}

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
                        let line = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\n', '\r'])
                            .to_string();
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
        if let Err(e) = sent {
            return Err(self.fail(e, "the handshake").await);
        }
        // Read the magic by hand: a short banner followed by EOF must still be shown.
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
            let e = io::Error::from(io::ErrorKind::UnexpectedEof);
            return Err(self.fail(e, "the handshake").await);
        }
        if have < first.len() || u64::from_le_bytes(first) != SERVER_MAGIC {
            // Show what arrived instead: usually a login banner or shell output.
            let mut got = first[..have].to_vec();
            if have == first.len() {
                let mut more = vec![0u8; 120];
                let n =
                    tokio::time::timeout(Duration::from_millis(300), self.reader.read(&mut more))
                        .await
                        .ok()
                        .and_then(|r| r.ok())
                        .unwrap_or(0);
                got.extend_from_slice(&more[..n]);
            }
            self.broken = true;
            return Err(Error::with_help(
                ErrorKind::Builder,
                format!(
                    "{}: protocol mismatch: expected the Nix serve protocol magic, got {:?}",
                    self.label,
                    String::from_utf8_lossy(&got)
                ),
                "something printed text before nix-store started (a login banner, motd or .bashrc output); make the remote shell print nothing for non-interactive commands",
            ));
        }
        let version = match wire::read_u64(&mut self.reader).await {
            Ok(v) => v,
            Err(e) => return Err(self.fail(e, "the handshake").await),
        };
        if version >> 8 != 2 || version < MIN_SERVER_VERSION {
            self.broken = true;
            return Err(Error::with_help(
                ErrorKind::Builder,
                format!(
                    "{}: serve protocol version {}.{} is not supported (need 2.{} or later)",
                    self.label,
                    version >> 8,
                    version & 0xff,
                    MIN_SERVER_VERSION & 0xff
                ),
                "upgrade Nix on the builder",
            ));
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

    /// The last lines the builder wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr.text()
    }

    /// Turns an I/O error into a builder error, with the builder's stderr when it hung up.
    async fn fail(&mut self, e: io::Error, during: &str) -> Error {
        self.broken = true;
        match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset => {
                // Give the stderr reader a moment to collect the builder's last words.
                if let Some(task) = self.stderr_task.take() {
                    let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
                }
                let tail = self.stderr.text();
                let tail = if tail.is_empty() {
                    "(nothing on stderr)".to_string()
                } else {
                    tail
                };
                Error::with_help(
                    ErrorKind::Builder,
                    format!(
                        "{}: the builder closed the connection during {during}; its stderr ends with:\n{tail}",
                        self.label
                    ),
                    "check that the builder's Nix works (`nix-store --serve --write` there) and that its user may write to the store",
                )
            }
            io::ErrorKind::InvalidData => Error::msg(
                ErrorKind::Builder,
                format!("{}: protocol error during {during}: {e}", self.label),
            ),
            _ => Error::msg(
                ErrorKind::Builder,
                format!("{}: I/O error during {during}: {e}", self.label),
            ),
        }
    }

    fn check_usable(&self) -> Result<()> {
        if self.broken {
            return Err(Error::msg(
                ErrorKind::Builder,
                format!(
                    "{}: the serve session failed earlier and cannot be used again",
                    self.label
                ),
            ));
        }
        Ok(())
    }

    fn bad_path(&mut self, what: &str, e: impl std::fmt::Display) -> Error {
        self.broken = true;
        Error::msg(
            ErrorKind::Builder,
            format!("{}: invalid store path in {what}: {e}", self.label),
        )
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

    /// QueryValidPaths: which of `paths` are valid on the builder.
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
        self.read_paths("the reply to QueryValidPaths").await
    }

    /// QueryPathInfos: information about the valid ones among `paths` (invalid are left out).
    pub async fn query_path_infos(
        &mut self,
        paths: &[StorePath],
    ) -> Result<BTreeMap<StorePath, PathInfo>> {
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
                let parsed = NarHash::parse(&h).map_err(|e| {
                    self.broken = true;
                    Error::msg(ErrorKind::Builder, format!("{}: {what}: {e}", self.label))
                })?;
                nar_hash = Some(parsed);
                let r = wire::read_string(&mut self.reader, MAX_PATH).await;
                ca = self.io(what, r).await?;
                let r = wire::read_strings(&mut self.reader, MAX_PATH).await;
                sigs = self.io(what, r).await?;
            }
            out.insert(
                path.clone(),
                PathInfo {
                    path,
                    deriver,
                    references,
                    nar_size,
                    nar_hash,
                    ca,
                    sigs,
                },
            );
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
            return Err(Error::msg(
                ErrorKind::Internal,
                format!("DumpStorePath of {path} needs its narSize (from QueryPathInfos)"),
            ));
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
            if let Err(e) = out.write_all(&buf[..n]).await {
                self.broken = true;
                return Err(Error::msg(
                    ErrorKind::Builder,
                    format!("writing the NAR of {path} from {}: {e}", self.label),
                ));
            }
            left -= n as u64;
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&hasher.finalize());
        Ok(NarHash(hash))
    }

    /// DumpStorePath restored into a new directory `dest` on this machine (file contents
    /// stream in chunks through a blocking restorer thread).
    pub async fn dump_store_path_to_dir(&mut self, info: &PathInfo, dest: &Path) -> Result<()> {
        let (mut sink, restorer) = nar_stream::spawn_restore(dest.to_path_buf());
        let dumped = self
            .dump_store_path(&info.path, info.nar_size, &mut sink)
            .await;
        drop(sink);
        let restored = restorer.await.map_err(|e| {
            Error::msg(
                ErrorKind::Internal,
                format!("NAR restorer thread failed: {e}"),
            )
        })?;
        let hash = dumped?;
        restored.map_err(|e| {
            Error::msg(
                ErrorKind::Builder,
                format!(
                    "restoring {} from {} into {}: {e}",
                    info.path,
                    self.label,
                    dest.display()
                ),
            )
        })?;
        check_hash(info, hash, &self.label)
    }

    /// AddToStoreNar (protocol 2.5): makes `info.path` valid on the builder from exactly
    /// `info.nar_size` NAR bytes read from `nar`.
    pub async fn add_to_store_nar(
        &mut self,
        info: &PathInfo,
        nar: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<()> {
        self.check_usable()?;
        if !self.supports_add_to_store_nar() {
            return Err(Error::msg(
                ErrorKind::Builder,
                format!(
                    "{}: protocol {}.{} has no AddToStoreNar; use ImportPaths",
                    self.label,
                    2,
                    self.minor()
                ),
            ));
        }
        let hash = info.nar_hash.ok_or_else(|| {
            Error::msg(
                ErrorKind::Internal,
                format!("AddToStoreNar of {} without a narHash", info.path),
            )
        })?;
        if info.nar_size == 0 {
            return Err(Error::msg(
                ErrorKind::Internal,
                format!("AddToStoreNar of {} with narSize 0", info.path),
            ));
        }
        let w = &mut self.writer;
        let sent = async {
            wire::write_u64(w, OP_ADD_TO_STORE_NAR).await?;
            wire::write_bytes(w, info.path.as_str().as_bytes()).await?;
            wire::write_bytes(
                w,
                info.deriver
                    .as_ref()
                    .map_or("", StorePath::as_str)
                    .as_bytes(),
            )
            .await?;
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
                Err(Error::msg(
                    ErrorKind::Builder,
                    format!("{}: {during}: unexpected reply {n}", self.label),
                ))
            }
        }
    }

    /// Copies exactly `info.nar_size` bytes from `nar` to the builder.
    async fn send_nar(
        &mut self,
        info: &PathInfo,
        nar: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<()> {
        let mut buf = vec![0u8; CHUNK];
        let mut left = info.nar_size;
        while left > 0 {
            let want = left.min(CHUNK as u64) as usize;
            let n = match nar.read(&mut buf[..want]).await {
                Ok(0) => {
                    self.broken = true;
                    return Err(Error::msg(
                        ErrorKind::Build,
                        format!(
                            "the NAR of {} ended {left} bytes before its narSize",
                            info.path
                        ),
                    ));
                }
                Ok(n) => n,
                Err(e) => {
                    self.broken = true;
                    return Err(Error::msg(
                        ErrorKind::Build,
                        format!("reading the NAR of {}: {e}", info.path),
                    ));
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
    pub async fn import_paths(
        &mut self,
        paths: &[PathInfo],
        nars: &mut dyn NarSource,
    ) -> Result<()> {
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
                wire::write_bytes(
                    w,
                    info.deriver
                        .as_ref()
                        .map_or("", StorePath::as_str)
                        .as_bytes(),
                )
                .await?;
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
                Err(Error::msg(
                    ErrorKind::Builder,
                    format!("{}: ImportPaths: unexpected reply {n}", self.label),
                ))
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
            Ok(Ok(res)) => Ok(res),
            Ok(Err(msg)) => {
                self.broken = true;
                Err(Error::msg(
                    ErrorKind::Builder,
                    format!("{}: {during}: {msg}", self.label),
                ))
            }
            Err(e) => Err(self.fail(e, &during).await),
        }
    }
}

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
            let s: NarStream<'s> = Box::pin(DumpReader {
                client: self,
                left: info.nar_size,
            });
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
                        format!(
                            "{} closed the connection in the middle of a NAR",
                            self.client.label
                        ),
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
            let s: NarStream<'s> = Box::pin(super::nar_stream::spawn_dump(
                std::path::PathBuf::from(info.path.as_str()),
            ));
            Ok(s)
        })
    }
}

/// Checks a streamed NAR's hash against the advertised one.
pub fn check_hash(info: &PathInfo, got: NarHash, from: &str) -> Result<()> {
    match info.nar_hash {
        Some(want) if want != got => Err(Error::msg(
            ErrorKind::Builder,
            format!(
                "{from}: the NAR of {} has hash {got}, but {want} was announced",
                info.path
            ),
        )),
        _ => Ok(()),
    }
}

async fn write_build_options<W: AsyncWrite + Unpin>(
    w: &mut W,
    opts: &BuildOptions,
    minor: u64,
) -> io::Result<()> {
    wire::write_u64(w, u64::from(opts.max_silent_time_secs)).await?;
    wire::write_u64(w, u64::from(opts.build_timeout_secs)).await?;
    if minor >= 2 {
        wire::write_u64(w, opts.max_log_size).await?;
    }
    if minor >= 3 {
        wire::write_u64(w, 0).await?; // nrRepeats: servers reject anything else
        wire::write_bool(w, false).await?; // enforceDeterminism
    }
    if minor >= 7 {
        wire::write_bool(w, opts.keep_failed).await?;
    }
    Ok(())
}

async fn write_basic_derivation<W: AsyncWrite + Unpin>(
    w: &mut W,
    drv: &BasicDerivation,
) -> io::Result<()> {
    wire::write_u64(w, drv.outputs.len() as u64).await?;
    for (name, out) in &drv.outputs {
        wire::write_bytes(w, name.as_bytes()).await?;
        wire::write_bytes(w, out.path.as_bytes()).await?;
        wire::write_bytes(w, out.hash_algo.as_bytes()).await?;
        wire::write_bytes(w, out.hash.as_bytes()).await?;
    }
    wire::write_strings(w, drv.input_srcs.iter().map(StorePath::as_str)).await?;
    wire::write_bytes(w, drv.platform.as_bytes()).await?;
    wire::write_bytes(w, drv.builder.as_bytes()).await?;
    wire::write_strings(w, &drv.args).await?;
    wire::write_u64(w, drv.env.len() as u64).await?;
    for (k, v) in &drv.env {
        wire::write_bytes(w, k.as_bytes()).await?;
        wire::write_bytes(w, v.as_bytes()).await?;
    }
    Ok(())
}

/// Reads a BuildResult. The outer error is I/O; the inner one a semantic problem (bad path).
async fn read_build_result<R: AsyncRead + Unpin>(
    r: &mut R,
    minor: u64,
) -> io::Result<std::result::Result<BuildResult, String>> {
    let status = BuildStatus::from_code(wire::read_u64(r).await?);
    let error_msg = wire::read_string(r, MAX_STRING).await?;
    let mut res = BuildResult {
        status,
        error_msg,
        times_built: 0,
        is_non_deterministic: false,
        start_time: 0,
        stop_time: 0,
        built_outputs: BTreeMap::new(),
    };
    if minor >= 3 {
        res.times_built = wire::read_u64(r).await?;
        res.is_non_deterministic = wire::read_bool(r).await?;
        res.start_time = wire::read_u64(r).await?;
        res.stop_time = wire::read_u64(r).await?;
    }
    if minor >= 8 {
        // Output name → (full store path, signatures).
        let n = wire::read_u64(r).await?;
        if n > wire::MAX_LIST {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{n} built outputs"),
            ));
        }
        for _ in 0..n {
            let name = wire::read_string(r, MAX_PATH).await?;
            let path = wire::read_string(r, MAX_PATH).await?;
            let _sigs = wire::read_strings(r, MAX_PATH).await?;
            match StorePath::parse(&path) {
                Ok(p) => {
                    res.built_outputs.insert(name, p);
                }
                Err(e) => return Ok(Err(format!("built output {name:?}: {e}"))),
            }
        }
    } else if minor >= 6 {
        let n = wire::read_u64(r).await?;
        if n > wire::MAX_LIST {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{n} built outputs"),
            ));
        }
        for _ in 0..n {
            let key = wire::read_string(r, MAX_PATH).await?;
            let json = wire::read_string(r, MAX_STRING).await?;
            match parse_realisation(&key, &json) {
                Ok((name, path)) => {
                    res.built_outputs.insert(name, path);
                }
                Err(msg) => return Ok(Err(msg)),
            }
        }
    }
    Ok(Ok(res))
}

/// One 2.6/2.7 `builtOutputs` entry: key `sha256:<hash>!<output>`, value a JSON realisation
/// whose `outPath` is a base name.
fn parse_realisation(key: &str, json: &str) -> std::result::Result<(String, StorePath), String> {
    let name = key
        .rsplit_once('!')
        .map(|(_, n)| n)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("built output key {key:?} has no '!<output>'"))?;
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| format!("built output {name:?} is not JSON: {e}"))?;
    let out = v
        .get("outPath")
        .and_then(|p| p.as_str())
        .ok_or_else(|| format!("built output {name:?} has no outPath"))?;
    let path = if out.starts_with('/') {
        StorePath::parse(out)
    } else {
        StorePath::from_base_name(out)
    }
    .map_err(|e| format!("built output {name:?}: {e}"))?;
    Ok((name.to_string(), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "/nix/store/7sqpqjj28pjaqp6b2yf385gnhgbq09lz-a";

    async fn result_bytes(minor: u64, outputs: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        wire::write_u64(&mut b, 0).await.expect("w");
        wire::write_bytes(&mut b, b"").await.expect("w");
        if minor >= 3 {
            for v in [1, 0, 100, 105] {
                wire::write_u64(&mut b, v).await.expect("w");
            }
        }
        if minor >= 6 {
            wire::write_u64(&mut b, outputs.len() as u64)
                .await
                .expect("w");
            for (k, v) in outputs {
                wire::write_bytes(&mut b, k.as_bytes()).await.expect("w");
                if minor >= 8 {
                    wire::write_bytes(&mut b, v.as_bytes()).await.expect("w");
                    wire::write_strings(&mut b, ["sig:1"]).await.expect("w");
                } else {
                    wire::write_bytes(&mut b, v.as_bytes()).await.expect("w");
                }
            }
        }
        b
    }

    #[tokio::test]
    async fn build_result_encodings() {
        let json = r#"{"dependentRealisations":{},"id":"sha256:00!out","outPath":"7sqpqjj28pjaqp6b2yf385gnhgbq09lz-a","signatures":[]}"#;
        for (minor, outputs) in [
            (2u64, vec![]),
            (5, vec![]),
            (7, vec![("sha256:abcd!out", json)]),
            (8, vec![("out", OUT)]),
        ] {
            let bytes = result_bytes(minor, &outputs).await;
            let mut r = bytes.as_slice();
            let res = read_build_result(&mut r, minor)
                .await
                .expect("io")
                .expect("valid");
            assert!(r.is_empty(), "2.{minor}: all bytes consumed");
            assert_eq!(res.status, BuildStatus::Built);
            assert_eq!(res.times_built, if minor >= 3 { 1 } else { 0 });
            assert_eq!(res.stop_time, if minor >= 3 { 105 } else { 0 });
            assert_eq!(
                res.built_outputs.get("out").map(StorePath::as_str),
                (minor >= 6).then_some(OUT)
            );
        }
    }

    #[tokio::test]
    async fn bad_built_outputs_are_rejected() {
        for (k, v) in [
            (
                "no-bang",
                r#"{"outPath":"7sqpqjj28pjaqp6b2yf385gnhgbq09lz-a"}"#,
            ),
            ("x!out", "not json"),
            ("x!out", r#"{"outPath":"../../etc/passwd"}"#),
            ("x!out", r#"{"id":"x"}"#),
        ] {
            let bytes = result_bytes(7, &[(k, v)]).await;
            let res = read_build_result(&mut bytes.as_slice(), 7)
                .await
                .expect("io");
            assert!(res.is_err(), "{k} {v}");
        }
        let bytes = result_bytes(8, &[("out", "/tmp/evil")]).await;
        assert!(
            read_build_result(&mut bytes.as_slice(), 8)
                .await
                .expect("io")
                .is_err()
        );
    }

    #[test]
    fn statuses() {
        assert!(BuildStatus::from_code(0).is_success());
        assert!(BuildStatus::from_code(13).is_success());
        assert_eq!(BuildStatus::from_code(8), BuildStatus::TimedOut);
        assert!(!BuildStatus::from_code(14).is_success());
        assert_eq!(BuildStatus::from_code(99), BuildStatus::Unknown(99));
        assert!(!BuildStatus::Unknown(99).is_success());
    }

    #[tokio::test]
    async fn build_options_at_2_7_are_six_words() {
        let opts = BuildOptions {
            max_silent_time_secs: 5,
            build_timeout_secs: 7,
            max_log_size: 9,
            keep_failed: true,
        };
        let mut b = Vec::new();
        write_build_options(&mut b, &opts, 7).await.expect("w");
        let words: Vec<u64> = b
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
            .collect();
        assert_eq!(words, [5, 7, 9, 0, 0, 1]);
        let mut old = Vec::new();
        write_build_options(&mut old, &opts, 1).await.expect("w");
        assert_eq!(old.len(), 16);
    }

    proptest::proptest! {
        #[test]
        fn build_result_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300), minor in 0u64..10) {
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let _ = rt.block_on(read_build_result(&mut bytes.as_slice(), minor));
        }
    }
}
