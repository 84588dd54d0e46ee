//! The russh transport against real OpenSSH sshd hosts with their own Nix stores (the loopback
//! harness in support/hosts.rs): serve sessions, copies and remote builds, strict host keys,
//! authentication errors, a host without Nix, and a host whose sshd dies mid-session.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rvbuild::builders::{Builder, HostKeyStatus, PoolOptions, Sources, load_pool};
use rvbuild::nix::copy::{build_remote, copy_closure};
use rvbuild::nix::dag::load_closure;
use rvbuild::nix::serve::{BuildOptions, ServeClient};
use rvbuild::nix::store_path::StorePath;
use rvbuild::profile::build::LocalJobs;
use rvbuild::transport::{FailureClass, LocalTransport, SshOptions, SshTransport, Transport, is_connection_failure};
use support::hosts::{self, DagSpec, Fleet, Host, HostSpec};

/// An error as the user sees it: message and help.
fn full(err: &rvbuild::Error) -> String {
    use miette::Diagnostic;
    format!("{err}\nhelp: {}", err.help().map(|h| h.to_string()).unwrap_or_default())
}

/// The pool entry for one machines line, with `home` as the user's home (its .ssh).
fn builder(line: &str, home: &Path) -> Builder {
    let nix = home.join("etc-nix");
    std::fs::create_dir_all(&nix).expect("mkdir");
    let sources = Sources { nix_conf_dir: nix, home: Some(home.into()), ssh_dir: home.join("etc-ssh"), cores: 1 };
    let opts =
        PoolOptions { builders: Some(line.to_string()), local_jobs: Some(LocalJobs::Count(0)), ..Default::default() };
    let mut pool = load_pool(None, &opts, &sources).expect("pool");
    assert_eq!(pool.len(), 1);
    pool.remove(0)
}

/// Options that use nothing of this machine's ~/.ssh or agent.
fn options(home: &Path) -> SshOptions {
    SshOptions {
        home: Some(home.into()),
        agent_socket: None,
        known_hosts_file: Some(home.join(".ssh/known_hosts")),
        connect_timeout: Duration::from_secs(5),
        ..SshOptions::default()
    }
}

/// A machines line for `host` without the host-key column, logging in with `key`.
fn line_without_key(host: &Host, key: &Path) -> String {
    format!("ssh://root@{}:{} {} {} 2", host.addr, host.port, host.system, key.display())
}

fn transport(fleet: &Fleet, host: &Host, home: &Path) -> SshTransport {
    SshTransport::new(&builder(&host.machines_line(fleet), home), options(home)).expect("transport")
}

async fn serve(t: &SshTransport) -> rvbuild::Result<ServeClient> {
    ServeClient::connect(t.open_serve().await?, None).await
}

async fn local() -> ServeClient {
    ServeClient::connect(LocalTransport::new().open_serve().await.expect("local nix-store"), None)
        .await
        .expect("local handshake")
}

fn realise(drv: &str) -> String {
    let o = Command::new("nix-store").args(["--realise", drv]).output().expect("nix-store");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn locally_valid(path: &str) -> bool {
    Command::new("nix-store").args(["--check-validity", path]).status().expect("nix-store").success()
}

/// Waits until no `nix-store --serve` runs in the host's namespace.
fn no_serve_left(host: &Host) -> bool {
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        if !host.command_lines().iter().any(|c| c.contains("nix-store --serve")) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_serve_copies_and_builds_on_the_host() {
    let fleet = hosts::start(&hosts::STANDARD[..1]);
    let emu = fleet.host("emu");
    let home = tempfile::tempdir().expect("home");
    let any = rvbuild::transport::for_builder(&builder(&emu.machines_line(&fleet), home.path()), &options(home.path()));
    assert_eq!(any.expect("transport").label(), format!("ssh://root@{}:{}", emu.addr, emu.port));
    let t = transport(&fleet, emu, home.path());

    let probe = t.exec("nix-store --version; echo err >&2; exit 3").await.expect("exec");
    assert_eq!(probe.status, Some(3));
    assert!(String::from_utf8_lossy(&probe.stdout).contains("nix-store (Nix)"), "{probe:?}");
    assert_eq!(probe.stderr, b"err\n");

    // Two nodes: n1 depends on n0. n0 is built here, n1 on emu.
    let dir = tempfile::tempdir().expect("dir");
    let spec = DagSpec::layered(2, 0, 0.0, 1000);
    let drvs = hosts::instantiate(&hosts::write_dag_nix(dir.path(), &spec));
    let n0_out = realise(&drvs[0]);
    let dag = load_closure(std::slice::from_ref(&drvs[1])).expect("dag");
    let i = dag.index_of(&drvs[1]).expect("n1");
    let n1_out = dag.node(i).drv.outputs["out"].path.clone();
    assert!(!locally_valid(&n1_out));

    let mut remote = serve(&t).await.expect("serve session over ssh");
    assert_eq!(remote.protocol_version(), (2, 7));
    let n0 = StorePath::parse(&n0_out).expect("path");
    assert!(remote.query_valid_paths(std::slice::from_ref(&n0), false, false).await.expect("query").is_empty());
    let mut here = local().await;
    let stats = copy_closure(&mut here, &mut remote, std::slice::from_ref(&n0)).await.expect("copy to emu");
    assert_eq!(stats.copied, std::slice::from_ref(&n0));
    assert!(emu.store_has(&n0_out));

    let result = build_remote(&mut here, &mut remote, &dag, i, &BuildOptions::default()).await.expect("build");
    assert!(result.is_success(), "{result:?}");
    assert!(locally_valid(&n1_out), "the output was fetched back");
    assert!(emu.store_has(&n1_out), "the output was built on emu");
    let inputs = std::fs::read_to_string(format!("{n1_out}/inputs")).expect("inputs file");
    assert_eq!(inputs.trim(), n0_out);

    // Closing the session ends the remote nix-store; so does dropping the transport.
    drop(remote);
    assert!(no_serve_left(emu), "nix-store --serve left running: {:?}", emu.command_lines());
    let _again = serve(&t).await.expect("second session on the same connection");
    drop(_again);
    drop(t);
    assert!(no_serve_left(emu), "nix-store --serve left running: {:?}", emu.command_lines());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_unknown_host_key_is_refused_until_accepted() {
    let fleet = hosts::start(&hosts::STANDARD[..1]);
    let emu = fleet.host("emu");
    let home = tempfile::tempdir().expect("home");
    let line = line_without_key(emu, &fleet.client_key);
    let b = builder(&line, home.path());
    assert_eq!(b.host_key, HostKeyStatus::Unknown);

    let t = SshTransport::new(&b, options(home.path())).expect("transport");
    let err = t.open_serve().await.err().expect("unknown key must be refused");
    let text = full(&err);
    let fp = String::from_utf8_lossy(
        &Command::new("ssh-keygen")
            .arg("-lf")
            .arg(emu.dir.join("ssh_host_ed25519_key.pub"))
            .output()
            .expect("kg")
            .stdout,
    )
    .split_whitespace()
    .nth(1)
    .expect("fingerprint")
    .to_string();
    assert!(text.contains(&fp) && text.contains("ssh-ed25519"), "{text}");
    assert!(text.contains(&format!("{}:{}", emu.addr, emu.port)), "{text}");
    assert!(text.contains("--accept-new-host-keys") && text.contains(".ssh/known_hosts"), "{text}");
    assert_eq!(err.failure_class(), Some(FailureClass::Setup));
    assert!(!home.path().join(".ssh/known_hosts").exists());

    let mut opts = options(home.path());
    opts.accept_new_host_keys = true;
    let t = SshTransport::new(&b, opts).expect("transport");
    serve(&t).await.expect("accepted and recorded");
    let kh = std::fs::read_to_string(home.path().join(".ssh/known_hosts")).expect("recorded");
    assert_eq!(kh, format!("[{}]:{} {}\n", emu.addr, emu.port, emu.host_key));

    // Now the inventory knows the key, and strict checking passes without the flag.
    let b = builder(&line, home.path());
    assert!(matches!(b.host_key, HostKeyStatus::KnownHosts { .. }), "{:?}", b.host_key);
    let t = SshTransport::new(&b, options(home.path())).expect("transport");
    serve(&t).await.expect("known key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_changed_host_key_is_refused_even_with_accept_new() {
    let fleet = hosts::start(&hosts::STANDARD[..1]);
    let emu = fleet.host("emu");
    let home = tempfile::tempdir().expect("home");
    let other = home.path().join("other");
    let o = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other).status();
    assert!(o.expect("ssh-keygen").success());
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let other_key: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    std::fs::create_dir_all(home.path().join(".ssh")).expect("mkdir");
    std::fs::write(
        home.path().join(".ssh/known_hosts"),
        format!("# first line\n[{}]:{} {} {}\n", emu.addr, emu.port, other_key[0], other_key[1]),
    )
    .expect("known_hosts");
    let b = builder(&line_without_key(emu, &fleet.client_key), home.path());
    let mut opts = options(home.path());
    opts.accept_new_host_keys = true;
    let t = SshTransport::new(&b, opts).expect("transport");
    let err = t.open_serve().await.err().expect("changed key must be refused");
    let text = full(&err);
    assert!(text.contains("MISMATCH") && text.contains("man-in-the-middle"), "{text}");
    assert!(text.contains(&format!("{}:2", home.path().join(".ssh/known_hosts").display())), "{text}");
    assert_eq!(text.matches("SHA256:").count(), 2, "both fingerprints: {text}");
    assert_eq!(err.failure_class(), Some(FailureClass::Setup));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_wrong_or_encrypted_client_key_is_an_auth_error() {
    let fleet = hosts::start(&hosts::STANDARD[..1]);
    let emu = fleet.host("emu");
    let home = tempfile::tempdir().expect("home");
    let wrong = home.path().join("wrong");
    let locked = home.path().join("locked");
    for (k, pass) in [(&wrong, ""), (&locked, "secret passphrase")] {
        let s = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", pass, "-f"]).arg(k).status();
        assert!(s.expect("ssh-keygen").success());
    }
    let mut line = emu.machines_line(&fleet);
    line = line.replace(&fleet.client_key.display().to_string(), &wrong.display().to_string());
    let t = SshTransport::new(&builder(&line, home.path()), options(home.path())).expect("transport");
    let err = t.open_serve().await.err().expect("wrong key");
    let text = full(&err);
    assert!(text.contains("authentication as `root` was rejected"), "{text}");
    assert!(text.contains(&wrong.display().to_string()) && text.contains("SHA256:"), "{text}");
    assert!(text.contains("authorized_keys"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert_eq!(err.failure_class(), Some(FailureClass::Setup));

    let line = line.replace(&wrong.display().to_string(), &locked.display().to_string());
    let t = SshTransport::new(&builder(&line, home.path()), options(home.path())).expect("transport");
    let text = full(&t.open_serve().await.err().expect("encrypted key"));
    assert!(text.contains("ssh-add") && text.contains(&locked.display().to_string()), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_host_without_nix_is_named() {
    let spec = HostSpec { without_nix: true, ..HostSpec::new("bare", "x86_64-linux") };
    let fleet = hosts::start(&[spec]);
    let bare = fleet.host("bare");
    let home = tempfile::tempdir().expect("home");
    let t = transport(&fleet, bare, home.path());
    let err = serve(&t).await.err().expect("no nix-store there");
    let text = full(&err);
    assert!(text.contains("`nix-store` was not found") && text.contains("exit status 127"), "{text}");
    assert!(text.contains("install Nix"), "{text}");
    assert!(text.contains(&format!("builder root@{}:{}", bare.addr, bare.port)), "{text}");
    assert_eq!(err.failure_class(), Some(FailureClass::Setup));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_killed_sshd_fails_fast_and_the_transport_reconnects() {
    let mut fleet = hosts::start(&hosts::STANDARD[..1]);
    let home = tempfile::tempdir().expect("home");
    let t = transport(&fleet, fleet.host("emu"), home.path());
    let mut remote = serve(&t).await.expect("serve");
    let probe = StorePath::parse("/nix/store/00000000000000000000000000000000-x").expect("path");
    remote.query_valid_paths(std::slice::from_ref(&probe), false, false).await.expect("query");

    fleet.host_mut("emu").kill_sshd();
    let start = Instant::now();
    let err = remote.query_valid_paths(std::slice::from_ref(&probe), false, false).await.expect_err("dead host");
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    assert!(is_connection_failure(&err), "{err:?}");
    let text = full(&err);
    assert!(text.contains("lost the SSH connection") || text.contains("killed there by signal"), "{text}");

    // Nothing listens now: refused, named, and classed as unreachable.
    let err = t.open_serve().await.err().expect("down");
    let text = full(&err);
    assert!(text.contains("connection refused"), "{text}");
    assert!(is_connection_failure(&err));

    fleet.host_mut("emu").restart();
    let mut again = serve(&t).await.expect("reconnected after restart");
    again.query_valid_paths(std::slice::from_ref(&probe), false, false).await.expect("query after restart");
    assert!(t.is_connected().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_untrusted_user_is_named() {
    let spec = HostSpec { untrusted_daemon: true, ..HostSpec::new("strict", "x86_64-linux") };
    let fleet = hosts::start(&[spec]);
    let strict = fleet.host("strict");
    let home = tempfile::tempdir().expect("home");
    let t = transport(&fleet, strict, home.path());
    let dir = tempfile::tempdir().expect("dir");
    let drvs = hosts::instantiate(&hosts::write_dag_nix(dir.path(), &DagSpec::flat(1, "x86_64-linux")));
    let dag = load_closure(std::slice::from_ref(&drvs[0])).expect("dag");
    let mut remote = serve(&t).await.expect("serve through the daemon");
    let mut here = local().await;
    let err = build_remote(&mut here, &mut remote, &dag, 0, &BuildOptions::default()).await.expect_err("untrusted");
    let text = full(&err);
    assert!(text.contains("`root` is not a trusted user") && text.contains("trusted-users = root"), "{text}");
    assert_eq!(err.failure_class(), Some(FailureClass::Setup));
}

/// A private ssh-agent for one test; killed on drop.
struct Agent {
    child: std::process::Child,
    socket: std::path::PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child =
            Command::new("ssh-agent").arg("-D").arg("-a").arg(&socket).stdout(std::process::Stdio::null()).spawn();
        let child = child.expect("ssh-agent");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "ssh-agent did not create its socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        Agent { child, socket }
    }

    /// `ssh-add KEY`, answering the passphrase prompt through SSH_ASKPASS.
    fn add(&self, key: &Path, passphrase: &str, dir: &Path) {
        let askpass = dir.join("askpass.sh");
        std::fs::write(&askpass, format!("#!/bin/sh\necho '{passphrase}'\n")).expect("askpass");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let o = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("ssh-add");
        assert!(o.status.success(), "ssh-add: {}", String::from_utf8_lossy(&o.stderr));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_agent_keys_log_in_also_for_encrypted_identity_files() {
    let fleet = hosts::start(&hosts::STANDARD[..1]);
    let emu = fleet.host("emu");
    let home = tempfile::tempdir().expect("home");
    let agent = Agent::start(home.path());

    // An encrypted key the host accepts, named in the machines line: usable only via the agent.
    let locked = home.path().join("locked");
    let s = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "pass phrase", "-f"]).arg(&locked).status();
    assert!(s.expect("ssh-keygen").success());
    let authorized = fleet.dir.path().join("authorized_keys");
    let mut keys = std::fs::read_to_string(&authorized).expect("authorized_keys");
    keys.push_str(&std::fs::read_to_string(locked.with_extension("pub")).expect("pub"));
    std::fs::write(&authorized, keys).expect("authorized_keys");
    let line =
        emu.machines_line(&fleet).replace(&fleet.client_key.display().to_string(), &locked.display().to_string());
    let mut opts = options(home.path());
    opts.agent_socket = Some(agent.socket.clone());
    let b = builder(&line, home.path());
    let t = SshTransport::new(&b, opts.clone()).expect("transport");
    let text = full(&t.open_serve().await.err().expect("the agent does not hold it yet"));
    assert!(text.contains("ssh-add"), "{text}");
    agent.add(&locked, "pass phrase", home.path());
    let t = SshTransport::new(&b, opts.clone()).expect("transport");
    serve(&t).await.expect("the encrypted identity through the agent");

    // No identity file at all: the agent's keys are tried.
    let no_identity = emu.machines_line(&fleet).replace(&fleet.client_key.display().to_string(), "-");
    let b = builder(&no_identity, home.path());
    assert!(b.identity.is_empty());
    let t = SshTransport::new(&b, opts).expect("transport");
    serve(&t).await.expect("agent key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_hung_host_is_noticed_by_keepalives() {
    let fleet = hosts::start(&hosts::STANDARD[..1]);
    let emu = fleet.host("emu");
    let home = tempfile::tempdir().expect("home");
    let mut opts = options(home.path());
    opts.keepalive_interval = Duration::from_millis(500);
    opts.keepalive_max = 2;
    let t = SshTransport::new(&builder(&emu.machines_line(&fleet), home.path()), opts).expect("transport");
    let mut remote = serve(&t).await.expect("serve");
    let probe = StorePath::parse("/nix/store/00000000000000000000000000000000-x").expect("path");
    emu.freeze(true);
    let start = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        remote.query_valid_paths(std::slice::from_ref(&probe), false, false),
    )
    .await;
    emu.freeze(false);
    let err = r.expect("keepalives must end the wait").expect_err("hung host");
    assert!(start.elapsed() < Duration::from_secs(8), "took {:?}", start.elapsed());
    assert!(is_connection_failure(&err), "{}", full(&err));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_dropping_a_session_mid_build_stops_the_remote_build() {
    let fleet = hosts::start(&hosts::STANDARD[..1]);
    let emu = fleet.host("emu");
    let home = tempfile::tempdir().expect("home");
    let t = transport(&fleet, emu, home.path());
    let dir = tempfile::tempdir().expect("dir");
    let spec = DagSpec::layered(1, 0, 120.0, 0);
    let drvs = hosts::instantiate(&hosts::write_dag_nix(dir.path(), &spec));
    let dag = load_closure(std::slice::from_ref(&drvs[0])).expect("dag");
    let mut remote = serve(&t).await.expect("serve");
    let mut here = local().await;
    let opts = BuildOptions::default();
    let build = build_remote(&mut here, &mut remote, &dag, 0, &opts);
    assert!(tokio::time::timeout(Duration::from_secs(2), build).await.is_err(), "the build sleeps for minutes");
    assert!(emu.command_lines().iter().any(|c| c.contains("sleep 120")), "{:?}", emu.command_lines());
    drop(remote);
    assert!(no_serve_left(emu), "left running: {:?}", emu.command_lines());
    assert!(!emu.command_lines().iter().any(|c| c.contains("sleep")), "{:?}", emu.command_lines());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_standard_fleet_builds_each_system_where_declared() {
    let fleet = hosts::start(hosts::STANDARD);
    let home = tempfile::tempdir().expect("home");
    let dir = tempfile::tempdir().expect("dir");
    // Three independent nodes: one x86_64-linux, two riscv64-linux.
    let spec = DagSpec {
        nodes: vec![
            hosts::Node { name: "x".into(), system: "x86_64-linux".into(), deps: vec![], sleep: 0.0, out_bytes: 1 },
            hosts::Node { name: "r".into(), system: "riscv64-linux".into(), deps: vec![], sleep: 0.0, out_bytes: 1 },
            hosts::Node { name: "r2".into(), system: "riscv64-linux".into(), deps: vec![], sleep: 0.0, out_bytes: 1 },
        ],
    };
    let drvs = hosts::instantiate(&hosts::write_dag_nix(dir.path(), &spec));
    let opts = BuildOptions::default();
    let mut here = local().await;
    let build = |host: &str, i: usize| {
        let t = transport(&fleet, fleet.host(host), home.path());
        let dag = load_closure(std::slice::from_ref(&drvs[i])).expect("dag");
        (t, dag)
    };
    // riscv64 on the "native" rv host and on emu (extra-platforms); x86_64 is refused by rv.
    for (host, i, ok) in [("rv", 1, true), ("emu", 2, true), ("rv", 0, false)] {
        let (t, dag) = build(host, i);
        let mut remote = serve(&t).await.expect("serve");
        let r = build_remote(&mut here, &mut remote, &dag, 0, &opts).await.expect("build request");
        assert_eq!(r.is_success(), ok, "{host} building {}: {r:?}", drvs[i]);
        if !ok {
            assert!(r.error_msg.contains("x86_64-linux") && r.error_msg.contains("riscv64-linux"), "{r:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_more_sessions_than_sshd_allows_per_connection_open_another_connection() {
    let spec = HostSpec { sshd_extra: "MaxSessions 2", ..HostSpec::new("small", "x86_64-linux") };
    let fleet = hosts::start(&[spec]);
    let home = tempfile::tempdir().expect("home");
    let t = transport(&fleet, fleet.host("small"), home.path());
    let mut sessions = Vec::new();
    for i in 0..5 {
        sessions.push(serve(&t).await.unwrap_or_else(|e| panic!("session {i}: {}", full(&e))));
    }
    let probe = StorePath::parse("/nix/store/00000000000000000000000000000000-x").expect("path");
    for s in &mut sessions {
        s.query_valid_paths(std::slice::from_ref(&probe), false, false).await.expect("every session works");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_unreachable_builders_are_named_and_classed() {
    let home = tempfile::tempdir().expect("home");
    let mut opts = options(home.path());
    opts.connect_timeout = Duration::from_secs(2);

    // A port that accepts TCP but never speaks SSH: the handshake times out.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let b = builder(&format!("ssh://root@127.0.0.1:{port} x86_64-linux"), home.path());
    let t = SshTransport::new(&b, opts.clone()).expect("transport");
    let start = Instant::now();
    let err = t.open_serve().await.err().expect("silent port");
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    let text = full(&err);
    assert!(text.contains(&format!("127.0.0.1:{port}")) && text.contains("handshake timed out"), "{text}");
    assert!(is_connection_failure(&err));

    // A name that cannot resolve.
    let b = builder("ssh://root@no-such-builder.invalid x86_64-linux", home.path());
    let t = SshTransport::new(&b, opts).expect("transport");
    let err = t.exec("true").await.expect_err("no such host");
    let text = full(&err);
    assert!(text.contains("no-such-builder.invalid"), "{text}");
    assert!(text.contains("cannot resolve") || text.contains("timed out"), "{text}");
    assert!(is_connection_failure(&err));
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_unsupported_serve_protocol_reaches_the_user() {
    // Inside the host's namespace its store directory is /nix: a fake nix-store there answers
    // the handshake with protocol 1.3.
    let spec =
        HostSpec { sshd_extra: "SetEnv PATH=/nix/fake-bin:/usr/bin:/bin", ..HostSpec::new("old", "x86_64-linux") };
    let fleet = hosts::start(&[spec]);
    let old = fleet.host("old");
    let bin = old.root.join("fake-bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let fake = bin.join("nix-store");
    std::fs::write(&fake, "#!/bin/sh\nprintf '\\313\\356\\122\\124\\0\\0\\0\\0\\3\\1\\0\\0\\0\\0\\0\\0'\n")
        .expect("fake");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let home = tempfile::tempdir().expect("home");
    let t = transport(&fleet, old, home.path());
    let err = serve(&t).await.err().expect("old protocol");
    let text = full(&err);
    assert!(text.contains("serve protocol version 1.3 is not supported") && text.contains("upgrade Nix"), "{text}");
    assert!(text.contains(&format!("{}:{}", old.addr, old.port)), "{text}");
    assert_eq!(err.failure_class(), None, "not a transport failure");
}
