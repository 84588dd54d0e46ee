//! The SSH transport (russh): one connection per builder, opened on first use, shared by all
//! of its channels and reopened when it died; one exec channel per serve session running
//! `nix-store --serve --write`, and exec channels for probes. Host keys are checked strictly
//! (see `ssh_hostkey`), keys tried in OpenSSH's order (see `ssh_auth`), keepalives notice a dead
//! host, and every failure is a [`TransportFailure`] whose class tells an unreachable builder
//! from a setup problem. Remote Unix-socket forwards (`streamlocal-forward@openssh.com`) bring
//! connections made on the builder back to rvbuild (the split compile's helpers).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use russh::client::{self, Handle, Msg};
use russh::keys::{Algorithm, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};

use super::ssh_auth::{self, KeySources};
use super::ssh_channel::{self, ChannelContext};
use super::ssh_hostkey::{self, Peer, Verdict};
use super::{BoxFuture, Duplex, ExecOutput, FailureClass, Listening, ServeChannel, Transport, TransportFailure};
use crate::builders::machines::Scheme;
use crate::builders::{Builder, HostKeyStatus};
use crate::{Error, Result};

/// The remote command of a serve session.
pub const SERVE_COMMAND: &str = "nix-store --serve --write";

/// How the SSH transport behaves. [`SshOptions::default`] reads `HOME` and `SSH_AUTH_SOCK`.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// Record unknown host keys in [`known_hosts_file`](Self::known_hosts_file) and accept them
    /// (`--accept-new-host-keys`). A key that differs from a known one is refused regardless.
    pub accept_new_host_keys: bool,
    /// Where new host keys are recorded; None = `~/.ssh/known_hosts`.
    pub known_hosts_file: Option<PathBuf>,
    /// Limit for name lookup, TCP connect and the SSH handshake, each.
    pub connect_timeout: Duration,
    /// Keepalive probe after this much silence from the server...
    pub keepalive_interval: Duration,
    /// ...and the connection is dropped after this many unanswered probes.
    pub keepalive_max: usize,
    /// For `~/.ssh/id_*` and the default known_hosts file; None = no default keys.
    pub home: Option<PathBuf>,
    /// ssh-agent socket; None = no agent.
    pub agent_socket: Option<PathBuf>,
    /// User when the builder names none; None = the local user name.
    pub default_user: Option<String>,
}

impl Default for SshOptions {
    fn default() -> Self {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        SshOptions {
            accept_new_host_keys: false,
            known_hosts_file: None,
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(5),
            keepalive_max: 3,
            home: var("HOME"),
            agent_socket: var("SSH_AUTH_SOCK"),
            default_user: None,
        }
    }
}

/// A builder reached over SSH.
pub struct SshTransport {
    name: String,
    host: String,
    port: u16,
    user: String,
    identity: Vec<PathBuf>,
    source: String,
    opts: SshOptions,
    /// What is known about the host key; updated when a new key is recorded.
    host_key: Arc<StdMutex<HostKeyStatus>>,
    conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
    /// Remote Unix-socket forwards by socket path: where their connections go.
    forwards: Forwards,
}

type Forwards = Arc<StdMutex<HashMap<String, tokio::sync::mpsc::Sender<Box<dyn Duplex>>>>>;

/// The shared connection. Dropping the last reference disconnects.
struct Connection {
    handle: Option<Handle<Client>>,
}

impl Connection {
    fn handle(&self) -> Option<&Handle<Client>> {
        self.handle.as_ref()
    }

    fn is_closed(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_closed())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let Some(h) = self.handle.take() else { return };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = h.disconnect(Disconnect::ByApplication, "", "").await;
            });
        }
    }
}

/// The russh event handler: checks the server's key.
struct Client {
    status: Arc<StdMutex<HostKeyStatus>>,
    peer: Peer,
    accept_new: bool,
    record_in: PathBuf,
    /// Why the key was refused, for the error after russh gives up.
    refusal: Arc<StdMutex<Option<TransportFailure>>>,
    forwards: Forwards,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> std::result::Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            self.refuse(TransportFailure::new(
                FailureClass::Setup,
                format!("{}: the host presented a certificate; rvbuild checks only plain host keys", self.peer.who),
                None,
            ));
            return Ok(false);
        };
        let status = match self.status.lock() {
            Ok(s) => s.clone(),
            Err(_) => HostKeyStatus::Unknown,
        };
        match ssh_hostkey::check(&status, key, &self.peer, self.accept_new, &self.record_in) {
            Verdict::Trusted => Ok(true),
            Verdict::Recorded { key, at } => {
                if let Ok(mut s) = self.status.lock() {
                    *s = HostKeyStatus::KnownHosts { keys: vec![key], at: vec![at] };
                }
                Ok(true)
            }
            Verdict::Refused(f) => {
                self.refuse(f);
                Ok(false)
            }
        }
    }

    /// A connection to a socket rvbuild asked to forward: handed to its listener; anything
    /// else is refused (dropping `reply` rejects the channel).
    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        channel: russh::Channel<Msg>,
        socket_path: &str,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> std::result::Result<(), Self::Error> {
        let tx = self.forwards.lock().ok().and_then(|m| m.get(socket_path).cloned());
        if let Some(tx) = tx {
            reply.accept().await;
            let _ = tx.try_send(Box::new(channel.into_stream()));
        }
        Ok(())
    }
}

impl Client {
    fn refuse(&self, f: TransportFailure) {
        if let Ok(mut r) = self.refusal.lock() {
            *r = Some(f);
        }
    }
}

impl SshTransport {
    /// A transport to `builder` (an `ssh://` or `ssh-ng://` builder of the inventory).
    pub fn new(builder: &Builder, opts: SshOptions) -> Result<SshTransport> {
        if builder.scheme == Scheme::Local {
            return Err(super::error::TransportError::NotAnSshHost { builder: builder.name.clone() }.into());
        }
        let user = builder.user.clone().or_else(|| opts.default_user.clone()).unwrap_or_else(local_user);
        Ok(SshTransport {
            name: builder.name.clone(),
            host: builder.host.clone(),
            port: builder.port,
            user,
            identity: builder.identity.clone(),
            source: builder.source.clone(),
            host_key: Arc::new(StdMutex::new(builder.host_key.clone())),
            opts,
            conn: tokio::sync::Mutex::new(None),
            forwards: Arc::default(),
        })
    }

    /// `builder NAME (USER@HOST:PORT)`, the subject of every message.
    pub fn who(&self) -> String {
        let at = format!("{}@{}:{}", self.user, self.host, self.port);
        if self.name_is_address() { format!("builder {at}") } else { format!("builder {} ({at})", self.name) }
    }

    /// Whether the builder's name says no more than its address.
    fn name_is_address(&self) -> bool {
        self.name == self.host || self.name == format!("{}:{}", self.host, self.port)
    }

    /// The known_hosts file new keys are recorded in.
    pub fn record_file(&self) -> PathBuf {
        self.opts
            .known_hosts_file
            .clone()
            .unwrap_or_else(|| ssh_hostkey::default_record_file(self.opts.home.as_deref()))
    }

    /// What is known about the host key now (after a recorded new key: that key).
    pub fn host_key_status(&self) -> HostKeyStatus {
        self.host_key.lock().map(|s| s.clone()).unwrap_or(HostKeyStatus::Unknown)
    }

    fn fail(&self, class: FailureClass, msg: String, help: Option<String>) -> Error {
        TransportFailure::new(class, msg, help).into_error()
    }

    /// Opens a new connection: name lookup, TCP, SSH handshake with host-key check, login.
    async fn connect(&self) -> Result<Connection> {
        let peer = Peer { who: self.who(), host: self.host.clone(), port: self.port, source: self.source.clone() };
        let status = self.host_key_status();
        if let Some(f) = ssh_hostkey::refuse_early(&status, &peer) {
            return Err(f.into_error());
        }
        let t = self.opts.connect_timeout;
        let unreachable = |m: String| self.fail(FailureClass::Unreachable, m, Some(UNREACHABLE_HELP.into()));
        let addrs: Vec<std::net::SocketAddr> =
            match tokio::time::timeout(t, tokio::net::lookup_host((self.host.as_str(), self.port))).await {
                Ok(Ok(a)) => a.collect(),
                Ok(Err(e)) => {
                    return Err(unreachable(format!("{}: cannot resolve host name `{}`: {e}", peer.who, self.host)));
                }
                Err(_) => {
                    return Err(unreachable(format!("{}: looking up `{}` timed out after {t:?}", peer.who, self.host)));
                }
            };
        let mut problems = Vec::new();
        let mut stream = None;
        for a in &addrs {
            match tokio::time::timeout(t, tokio::net::TcpStream::connect(a)).await {
                Ok(Ok(s)) => {
                    stream = Some(s);
                    break;
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    problems.push(format!("{a}: connection refused (no sshd listening)"))
                }
                Ok(Err(e)) => problems.push(format!("{a}: {e}")),
                Err(_) => problems.push(format!("{a}: timed out after {t:?}")),
            }
        }
        let Some(stream) = stream else {
            return Err(unreachable(format!("{}: cannot connect: {}", peer.who, problems.join("; "))));
        };
        let _ = stream.set_nodelay(true);

        let refusal = Arc::new(StdMutex::new(None));
        let handler = Client {
            status: self.host_key.clone(),
            peer: peer.clone(),
            accept_new: self.opts.accept_new_host_keys,
            record_in: self.record_file(),
            refusal: refusal.clone(),
            forwards: self.forwards.clone(),
        };
        let config = client::Config {
            keepalive_interval: Some(self.opts.keepalive_interval),
            keepalive_max: self.opts.keepalive_max,
            inactivity_timeout: None,
            nodelay: true,
            preferred: russh::Preferred { key: preferred_host_keys(&status).into(), ..Default::default() },
            ..Default::default()
        };
        let handshake = tokio::time::timeout(t, client::connect_stream(Arc::new(config), stream, handler)).await;
        let mut handle = match handshake {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                if let Some(f) = refusal.lock().ok().and_then(|mut r| r.take()) {
                    return Err(f.into_error());
                }
                return Err(unreachable(format!("{}: the SSH handshake failed: {e}", peer.who)));
            }
            Err(_) => return Err(unreachable(format!("{}: the SSH handshake timed out after {t:?}", peer.who))),
        };
        let sources = KeySources {
            identity_files: &self.identity,
            agent_socket: self.opts.agent_socket.as_deref(),
            home: self.opts.home.as_deref(),
        };
        match tokio::time::timeout(t, ssh_auth::authenticate(&mut handle, &self.user, &sources, &peer.who)).await {
            Ok(Ok(())) => Ok(Connection { handle: Some(handle) }),
            Ok(Err(f)) => Err(f.into_error()),
            Err(_) => Err(unreachable(format!("{}: authentication timed out after {t:?}", peer.who))),
        }
    }

    /// The live shared connection, opened if there is none or the old one died.
    async fn connection(&self) -> Result<Arc<Connection>> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref()
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        *slot = None;
        let c = Arc::new(self.connect().await?);
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn forget(&self, dead: &Arc<Connection>) {
        let mut slot = self.conn.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, dead)) {
            *slot = None;
        }
    }

    /// A new session channel with `command` started; retried once on a fresh connection when
    /// the cached one turns out dead.
    async fn open_exec(&self, command: &str) -> Result<(Arc<Connection>, russh::Channel<Msg>)> {
        let mut last = String::new();
        for _ in 0..2 {
            let conn = self.connection().await?;
            let Some(handle) = conn.handle() else {
                self.forget(&conn).await;
                continue;
            };
            match handle.channel_open_session().await {
                Ok(ch) => match ch.exec(true, command).await {
                    Ok(()) => return Ok((conn, ch)),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            self.forget(&conn).await;
        }
        Err(self.fail(
            FailureClass::Unreachable,
            format!("{}: cannot open an SSH session channel: {last}", self.who()),
            Some(UNREACHABLE_HELP.into()),
        ))
    }

    fn context(&self, command: &str) -> ChannelContext {
        ChannelContext { who: self.who(), user: self.user.clone(), command: command.to_string() }
    }

    /// Whether a connection is open right now (for tests and status displays).
    pub async fn is_connected(&self) -> bool {
        self.conn.lock().await.as_ref().is_some_and(|c| !c.is_closed())
    }
}

const UNREACHABLE_HELP: &str =
    "check that the builder is up and sshd listens on that address and port (`ssh -p PORT USER@HOST true`)";

impl Transport for SshTransport {
    fn label(&self) -> String {
        if self.port == 22 {
            format!("ssh://{}@{}", self.user, self.host)
        } else {
            format!("ssh://{}@{}:{}", self.user, self.host, self.port)
        }
    }

    fn open_serve(&self) -> BoxFuture<'_, Result<ServeChannel>> {
        Box::pin(async move {
            let (conn, ch) = self.open_exec(SERVE_COMMAND).await?;
            let label = if self.name_is_address() { self.label() } else { format!("{} ({})", self.label(), self.name) };
            Ok(ssh_channel::serve_channel(ch, Box::new(conn), self.context(SERVE_COMMAND), label))
        })
    }

    fn open_stream(&self, command: &str) -> BoxFuture<'_, Result<ServeChannel>> {
        let command = command.to_string();
        Box::pin(async move {
            let (conn, ch) = self.open_exec(&command).await?;
            Ok(ssh_channel::serve_channel(ch, Box::new(conn), self.context(&command), self.label()))
        })
    }

    fn listen_unix(&self, path: &str) -> BoxFuture<'_, Result<Listening>> {
        let path = path.to_string();
        Box::pin(async move {
            let conn = self.connection().await?;
            let (tx, rx) = tokio::sync::mpsc::channel(16);
            if let Ok(mut m) = self.forwards.lock() {
                m.insert(path.clone(), tx);
            }
            let asked = match conn.handle() {
                Some(h) => h.streamlocal_forward(path.as_str()).await.map_err(|e| e.to_string()),
                None => Err("the connection is closed".to_string()),
            };
            let guard = ForwardGuard { conn, path: path.clone(), forwards: self.forwards.clone() };
            if let Err(e) = asked {
                return Err(self.fail(
                    FailureClass::Setup,
                    format!("{}: sshd refused to forward the Unix socket {path}: {e}", self.who()),
                    Some("allow it in the builder's sshd_config (AllowStreamLocalForwarding yes)".into()),
                ));
            }
            Ok(Listening { incoming: rx, keepalive: Box::new(guard) })
        })
    }

    fn exec(&self, command: &str) -> BoxFuture<'_, Result<ExecOutput>> {
        let command = command.to_string();
        Box::pin(async move {
            let (_conn, mut ch) = self.open_exec(&command).await?;
            let _ = ch.eof().await;
            let mut out = ExecOutput::default();
            let mut closed = false;
            while let Some(msg) = ch.wait().await {
                match msg {
                    ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, .. } => out.stderr.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => out.status = i32::try_from(exit_status).ok(),
                    ChannelMsg::Failure => {
                        return Err(self.fail(
                            FailureClass::Setup,
                            format!("{}: sshd refused to run `{command}`", self.who()),
                            None,
                        ));
                    }
                    ChannelMsg::Close => {
                        closed = true;
                        break;
                    }
                    _ => {}
                }
            }
            if !closed && out.status.is_none() {
                return Err(self.fail(
                    FailureClass::Unreachable,
                    format!("{}: lost the SSH connection while running `{command}`", self.who()),
                    Some(UNREACHABLE_HELP.into()),
                ));
            }
            Ok(out)
        })
    }
}

/// Ends a remote Unix-socket forward: no more connections are taken, sshd is asked to close
/// the socket, and the connection is kept until then.
struct ForwardGuard {
    conn: Arc<Connection>,
    path: String,
    forwards: Forwards,
}

impl Drop for ForwardGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.forwards.lock() {
            m.remove(&self.path);
        }
        let conn = self.conn.clone();
        let path = std::mem::take(&mut self.path);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Some(h) = conn.handle() {
                    let _ = h.cancel_streamlocal_forward(path).await;
                }
            });
        }
    }
}

/// The default host-key algorithms, those of the known key types first (so the server shows
/// the key we can check, as OpenSSH does).
fn preferred_host_keys(status: &HostKeyStatus) -> Vec<Algorithm> {
    let known: Vec<String> = match status {
        HostKeyStatus::Machines { key } => vec![key.key_type.clone()],
        HostKeyStatus::KnownHosts { keys, .. } => keys.iter().map(|k| k.key_type.clone()).collect(),
        _ => Vec::new(),
    };
    let family =
        |a: &Algorithm| if matches!(a, Algorithm::Rsa { .. }) { "ssh-rsa".to_string() } else { a.as_str().to_string() };
    let mut algs: Vec<Algorithm> = russh::Preferred::DEFAULT.key.to_vec();
    algs.sort_by_key(|a| !known.contains(&family(a)));
    algs
}

/// The local user name (ssh's default login name).
fn local_user() -> String {
    for k in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(k)
            && !u.is_empty()
        {
            return u;
        }
    }
    // SAFETY: getpwuid returns a pointer into static storage or null; it is read at once.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned();
        }
    }
    "root".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::HostKey;

    #[test]
    fn known_key_types_come_first() {
        let st = HostKeyStatus::Machines { key: HostKey { key_type: "ssh-rsa".into(), key: String::new() } };
        let algs = preferred_host_keys(&st);
        assert!(matches!(algs[0], Algorithm::Rsa { .. }), "{algs:?}");
        assert_eq!(preferred_host_keys(&HostKeyStatus::Unknown)[0], Algorithm::Ed25519);
    }
}
