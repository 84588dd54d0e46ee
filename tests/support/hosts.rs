//! Loopback builder hosts for tests: each host is a real OpenSSH `sshd` on its own 127.0.0.N
//! address and port, started in a private mount namespace where a per-host directory is
//! bind-mounted over `/nix` (its own empty Nix store and database) and another over `/etc/nix`
//! (its own nix.conf with `system` / `extra-platforms`). Every session the sshd spawns inherits
//! that namespace, so `nix-store --serve` over SSH sees only the host's store. Needs root,
//! `unshare`/`nsenter` (util-linux), `sshd`/`ssh-keygen` (OpenSSH) and Nix on PATH.
//!
//! Also: a generator of test derivation graphs (plain `derivation`s with `/bin/sh` builders, no
//! nixpkgs) and `instantiate` for them.

use base64::Engine as _;
use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// What a test host should claim to be.
#[derive(Debug, Clone)]
pub struct HostSpec {
    pub name: &'static str,
    /// nix.conf `system`.
    pub system: &'static str,
    /// nix.conf `extra-platforms`.
    pub extra_platforms: &'static [&'static str],
    pub max_jobs: u32,
    /// Sessions get a PATH without Nix (to test "nix-store not found").
    pub without_nix: bool,
    /// Sessions reach the store through a nix-daemon that does not trust root (as a non-root
    /// SSH user outside `trusted-users` would): input-addressed builds are refused.
    pub untrusted_daemon: bool,
    /// Extra sshd_config lines.
    pub sshd_extra: &'static str,
    /// A tmpfs of this size (`mount -o size=`, e.g. `"4m"`) as the host's `/nix/store`: a store
    /// disk that fills up. Its contents do not survive [`Host::restart`].
    pub store_tmpfs: Option<&'static str>,
    /// A shell command that the standard output of the host's `nix-store --serve` runs
    /// through (`nix-store --serve … | FILTER`): a builder whose Nix sends something else than
    /// its store holds, or sends it slowly. Other `nix-store` commands run unchanged.
    pub serve_filter: Option<&'static str>,
}

impl HostSpec {
    pub const fn new(name: &'static str, system: &'static str) -> HostSpec {
        HostSpec {
            name,
            system,
            extra_platforms: &[],
            max_jobs: 2,
            without_nix: false,
            untrusted_daemon: false,
            sshd_extra: "",
            store_tmpfs: None,
            serve_filter: None,
        }
    }
}

/// The standard fleet: `emu` (x86_64-linux running riscv64/aarch64 through binfmt qemu-user)
/// and `rv` (claims to be a native riscv64-linux builder).
pub const STANDARD: &[HostSpec] = &[
    HostSpec {
        name: "emu",
        system: "x86_64-linux",
        extra_platforms: &["riscv64-linux", "aarch64-linux"],
        max_jobs: 2,
        without_nix: false,
        untrusted_daemon: false,
        sshd_extra: "",
        store_tmpfs: None,
        serve_filter: None,
    },
    HostSpec {
        name: "rv",
        system: "riscv64-linux",
        extra_platforms: &[],
        max_jobs: 2,
        without_nix: false,
        untrusted_daemon: false,
        sshd_extra: "",
        store_tmpfs: None,
        serve_filter: None,
    },
];

/// A running set of hosts; dropping it stops every sshd and its sessions.
pub struct Fleet {
    pub dir: TempDir,
    /// The private key (ed25519, no passphrase) every host accepts for root.
    pub client_key: PathBuf,
    /// known_hosts with every host's key (`[127.0.0.N]:PORT ssh-ed25519 …`).
    pub known_hosts: PathBuf,
    pub hosts: Vec<Host>,
}

/// One loopback builder host.
pub struct Host {
    pub name: String,
    pub addr: String,
    pub port: u16,
    pub system: String,
    pub extra_platforms: Vec<String>,
    pub max_jobs: u32,
    /// Whether a nix-daemon runs in the namespace (sessions use it).
    pub daemon: bool,
    /// The size of the tmpfs mounted as its `/nix/store`, if any.
    store_tmpfs: Option<String>,
    /// The directory mounted at `/nix` inside the host's namespace.
    pub root: PathBuf,
    /// The host's directory (config, keys, log).
    pub dir: PathBuf,
    /// The host's public key line (`ssh-ed25519 AAAA…`).
    pub host_key: String,
    sshd: Option<Child>,
    /// The mount namespace of the running sshd (`mnt:[…]`), and an open handle on it so that its
    /// identity cannot be reused by another test's namespace while this host is killed.
    ns: String,
    ns_handle: Option<fs::File>,
    pid: u32,
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn keygen(path: &Path) {
    run_ok(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "rvbuild-test", "-f"]).arg(path));
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// A loopback address and a port free on it right now.
fn free_endpoint(index: usize) -> (String, u16) {
    // Spread fleets of concurrent tests over 127.0.0.0/8 by process id and host index.
    let base = 2 + (std::process::id() as usize * 7 + index * 31) % 250;
    let addr = format!("127.0.0.{base}");
    let l = TcpListener::bind((addr.as_str(), 0)).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let port = l.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("local_addr: {e}"));
    (addr, port)
}

/// Starts one sshd per spec and waits until each accepts connections.
pub fn start(specs: &[HostSpec]) -> Fleet {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "the loopback builder hosts need root (unshare -m, bind mounts, sshd)");
    let dir = tempfile::Builder::new().prefix("rvbuild-hosts").tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let client_key = dir.path().join("client_key");
    keygen(&client_key);
    let client_pub = read(&dir.path().join("client_key.pub"));
    let authorized = dir.path().join("authorized_keys");
    write(&authorized, &client_pub);
    let mut fleet = Fleet { known_hosts: dir.path().join("known_hosts"), client_key, hosts: Vec::new(), dir };
    let mut known = String::new();
    for (i, spec) in specs.iter().enumerate() {
        let host = Host::create(&fleet, spec, i, &authorized);
        let _ = writeln!(known, "[{}]:{} {}", host.addr, host.port, host.host_key);
        fleet.hosts.push(host);
    }
    write(&fleet.known_hosts, &known);
    for h in &mut fleet.hosts {
        h.launch();
    }
    fleet
}

impl Fleet {
    /// The host called `name`.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts.iter().find(|h| h.name == name).unwrap_or_else(|| panic!("no host {name} in the fleet"))
    }

    pub fn host_mut(&mut self, name: &str) -> &mut Host {
        self.hosts.iter_mut().find(|h| h.name == name).unwrap_or_else(|| panic!("no host {name} in the fleet"))
    }

    /// A machines file with one line per host (written into the fleet directory).
    pub fn machines_file(&self) -> PathBuf {
        let text: String = self.hosts.iter().map(|h| h.machines_line(self) + "\n").collect();
        let p = self.dir.path().join("machines");
        write(&p, &text);
        p
    }

    /// `NIX_SSHOPTS` for Nix's own ssh client (identity, known_hosts, strict checking).
    pub fn nix_sshopts(&self) -> String {
        format!(
            "-i {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes",
            self.client_key.display(),
            self.known_hosts.display()
        )
    }

    /// OpenSSH's client command for `host`, ready for arguments (the remote command).
    pub fn ssh(&self, host: &Host) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.nix_sshopts().split_whitespace())
            .args(["-p", &host.port.to_string()])
            .arg(format!("root@{}", host.addr))
            .stdin(Stdio::null());
        c
    }
}

impl Host {
    fn create(fleet: &Fleet, spec: &HostSpec, index: usize, authorized: &Path) -> Host {
        let dir = fleet.dir.path().join(spec.name);
        let root = dir.join("nix");
        let etc = dir.join("etc-nix");
        for d in [&root.join("store"), &etc] {
            fs::create_dir_all(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        }
        let mut conf = format!(
            "build-users-group =\nsandbox = false\nsubstituters =\nexperimental-features = nix-command\nmax-jobs = {}\nsystem = {}\n",
            spec.max_jobs, spec.system
        );
        if !spec.extra_platforms.is_empty() {
            let _ = writeln!(conf, "extra-platforms = {}", spec.extra_platforms.join(" "));
        }
        let key = dir.join("ssh_host_ed25519_key");
        keygen(&key);
        let host_key =
            read(&dir.join("ssh_host_ed25519_key.pub")).split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        let (addr, port) = free_endpoint(index);
        let mut cfg = format!(
            "ListenAddress {addr}:{port}\nHostKey {key}\nPidFile {pid}\nAuthorizedKeysFile {authorized}\n\
             PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPrintMotd no\nPrintLastLog no\nAcceptEnv none\nLogLevel VERBOSE\n",
            key = key.display(),
            pid = dir.join("sshd.pid").display(),
            authorized = authorized.display(),
        );
        // A builder's shell reads its own empty home, not the machine's dotfiles: this image's
        // /root/.bashrc runs `pyenv init`, whose rehash lock, once left behind (presumably by a
        // session killed mid-login), made every later login wait 60 s and write to stderr.
        let home = dir.join("home");
        fs::create_dir_all(&home).unwrap_or_else(|e| panic!("{}: {e}", home.display()));
        // sshd takes only its first SetEnv line, so every variable goes onto one.
        let mut env = vec![format!("HOME={}", home.display())];
        if spec.without_nix {
            env.push("PATH=/nonexistent".into());
        }
        if let Some(filter) = spec.serve_filter {
            // Inside the namespace this directory is /nix/rvbuild-bin.
            let bin = root.join("rvbuild-bin");
            fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
            let real = which("nix-store");
            let wrapper = bin.join("nix-store");
            write(
                &wrapper,
                &format!(
                    "#!/bin/sh\ncase \"$*\" in\n  *--serve*) '{real}' \"$@\" | {filter} ;;\n  *) exec '{real}' \"$@\" ;;\nesac\n",
                    real = real.display()
                ),
            );
            run_ok(Command::new("chmod").arg("755").arg(&wrapper));
            let real_dir = real.parent().map(|p| p.display().to_string()).unwrap_or_default();
            env.push(format!("PATH=/nix/rvbuild-bin:{real_dir}:/usr/local/bin:/usr/bin:/bin"));
        }
        if spec.untrusted_daemon {
            env.push("NIX_REMOTE=daemon".into());
            conf.push_str("trusted-users = nobody\nallowed-users = *\n");
        }
        for line in spec.sshd_extra.lines() {
            match line.strip_prefix("SetEnv ") {
                Some(vars) => env.extend(vars.split_whitespace().map(str::to_string)),
                None => {
                    cfg.push_str(line);
                    cfg.push('\n');
                }
            }
        }
        let _ = writeln!(cfg, "SetEnv {}", env.join(" "));
        write(&dir.join("sshd_config"), &cfg);
        write(&etc.join("nix.conf"), &conf);
        Host {
            name: spec.name.to_string(),
            addr,
            port,
            system: spec.system.to_string(),
            extra_platforms: spec.extra_platforms.iter().map(|s| s.to_string()).collect(),
            max_jobs: spec.max_jobs,
            daemon: spec.untrusted_daemon,
            store_tmpfs: spec.store_tmpfs.map(str::to_string),
            root,
            dir,
            host_key,
            sshd: None,
            ns: String::new(),
            ns_handle: None,
            pid: 0,
        }
    }

    /// Starts sshd in a fresh private mount namespace and waits for it to listen. The store is
    /// initialised first: two sessions that a fresh store meets at once would both create its
    /// gcroots link, and one would fail.
    fn launch(&mut self) {
        let daemon = if self.daemon { "nix-daemon >/dev/null 2>&1 & " } else { "" };
        let tmpfs = match &self.store_tmpfs {
            Some(size) => format!("mount -t tmpfs -o size={size},mode=1775 rvbuild-store /nix/store; "),
            None => String::new(),
        };
        let script = format!(
            "set -e; mkdir -p /run/sshd; mount --bind '{root}' /nix; {tmpfs}mount --bind '{etc}' /etc/nix; nix-store --init; {daemon}exec /usr/sbin/sshd -D -e -f '{cfg}'",
            root = self.root.display(),
            etc = self.dir.join("etc-nix").display(),
            cfg = self.dir.join("sshd_config").display(),
        );
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("sshd.log"))
            .unwrap_or_else(|e| panic!("sshd.log: {e}"));
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start unshare/sshd: {e}"));
        self.pid = child.id();
        self.sshd = Some(child);
        let target: SocketAddr =
            format!("{}:{}", self.addr, self.port).parse().unwrap_or_else(|e| panic!("address: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(c) = self.sshd.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("sshd for {} exited ({status}):\n{}", self.name, self.log());
            }
            if TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "sshd for {} did not listen on {target}:\n{}", self.name, self.log());
            std::thread::sleep(Duration::from_millis(30));
        }
        let ns_path = format!("/proc/{}/ns/mnt", self.pid);
        self.ns_handle = Some(fs::File::open(&ns_path).unwrap_or_else(|e| panic!("{ns_path}: {e}")));
        let socket = self.root.join("var/nix/daemon-socket/socket");
        while self.daemon && !socket.exists() {
            assert!(Instant::now() < deadline, "nix-daemon for {} did not create {}", self.name, socket.display());
            std::thread::sleep(Duration::from_millis(30));
        }
        self.ns = fs::read_link(&ns_path)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|e| panic!("namespace of sshd {}: {e}", self.pid));
        let own = fs::read_link("/proc/self/ns/mnt").map(|p| p.display().to_string()).unwrap_or_default();
        assert_ne!(self.ns, own, "sshd for {} is not in its own mount namespace", self.name);
    }

    /// The sshd log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// `ssh://root@ADDR:PORT systems key maxJobs speed features mandatory base64-hostkey`.
    pub fn machines_line(&self, fleet: &Fleet) -> String {
        let mut systems = vec![self.system.clone()];
        systems.extend(self.extra_platforms.iter().cloned());
        format!(
            "ssh://root@{}:{} {} {} {} 1 - - {}",
            self.addr,
            self.port,
            systems.join(","),
            fleet.client_key.display(),
            self.max_jobs,
            base64::engine::general_purpose::STANDARD.encode(&self.host_key)
        )
    }

    /// Pids of every process of the host: those in its mount namespace and every descendant of
    /// its sshd (Nix may move a build into a namespace of its own).
    pub fn processes(&self) -> Vec<u32> {
        if self.ns.is_empty() {
            return Vec::new();
        }
        let Ok(rd) = fs::read_dir("/proc") else { return Vec::new() };
        let all: Vec<u32> =
            rd.filter_map(|e| e.ok()).filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok())).collect();
        let parent = |pid: u32| -> Option<u32> {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid …`; comm may contain spaces and parentheses.
            stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
        };
        let parents: Vec<(u32, Option<u32>)> = all.iter().map(|&p| (p, parent(p))).collect();
        let mut mine: Vec<u32> = all
            .iter()
            .copied()
            .filter(|pid| {
                fs::read_link(format!("/proc/{pid}/ns/mnt"))
                    .map(|p| p.display().to_string() == self.ns)
                    .unwrap_or(false)
            })
            .collect();
        loop {
            let more: Vec<u32> = parents
                .iter()
                .filter(|(p, pp)| !mine.contains(p) && pp.is_some_and(|pp| mine.contains(&pp)))
                .map(|(p, _)| *p)
                .collect();
            if more.is_empty() {
                break;
            }
            mine.extend(more);
        }
        mine
    }

    /// Command lines of the processes in the host's namespace.
    pub fn command_lines(&self) -> Vec<String> {
        self.processes()
            .into_iter()
            .filter_map(|pid| fs::read(format!("/proc/{pid}/cmdline")).ok())
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_string())
            .collect()
    }

    /// Kills sshd and every session process of the host: all of them are stopped first (so the
    /// process tree stays intact and nothing forks away), then killed.
    pub fn kill_sshd(&mut self) {
        for _ in 0..20 {
            let mut pids = self.processes();
            if pids.is_empty() {
                break;
            }
            signal(&pids, libc::SIGSTOP);
            pids = self.processes();
            signal(&pids, libc::SIGKILL);
            std::thread::sleep(Duration::from_millis(20));
            if let Some(c) = self.sshd.as_mut() {
                let _ = c.try_wait();
            }
        }
        if let Some(mut c) = self.sshd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.ns.clear();
        self.ns_handle = None;
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) every process of the host: a host that hangs with
    /// its TCP connections still open, as behind a dead network.
    pub fn freeze(&self, frozen: bool) {
        signal(&self.processes(), if frozen { libc::SIGSTOP } else { libc::SIGCONT });
    }

    /// Starts sshd again (same address, port, keys and store) after [`kill_sshd`](Self::kill_sshd).
    pub fn restart(&mut self) {
        self.kill_sshd();
        self.launch();
    }

    /// Runs `sh -c cmd` inside the host's namespace (its /nix and /etc/nix).
    pub fn run(&self, cmd: &str) -> Output {
        assert!(self.sshd.is_some(), "host {} is not running", self.name);
        Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-m", "sh", "-c", cmd])
            .output()
            .unwrap_or_else(|e| panic!("nsenter: {e}"))
    }

    /// Whether `path` is valid in the host's store.
    pub fn store_has(&self, path: &str) -> bool {
        self.run(&format!("nix-store --check-validity '{path}'")).status.success()
    }
}

/// The absolute path of `program` on PATH.
fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

fn signal(pids: &[u32], sig: i32) {
    for &pid in pids {
        // SAFETY: kill(2) with a pid read from /proc has no memory effects.
        unsafe {
            libc::kill(pid as i32, sig);
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            h.kill_sshd();
        }
    }
}

/// One derivation of a test graph.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub system: String,
    /// Indices of earlier nodes it depends on.
    pub deps: Vec<usize>,
    /// Seconds the builder sleeps (fractions allowed).
    pub sleep: f64,
    /// Bytes of output written (besides the dependency listing).
    pub out_bytes: u64,
}

/// A derivation graph to generate: nodes in topological order (deps point backwards).
#[derive(Debug, Clone, Default)]
pub struct DagSpec {
    pub nodes: Vec<Node>,
}

impl DagSpec {
    /// A layered graph of `n` nodes: node i depends on up to two earlier nodes; every
    /// `riscv_every`-th node (0 = none) is riscv64-linux, the rest x86_64-linux.
    pub fn layered(n: usize, riscv_every: usize, sleep: f64, out_bytes: u64) -> DagSpec {
        let nodes = (0..n)
            .map(|i| {
                let mut deps = Vec::new();
                if i >= 1 {
                    deps.push((i - 1) / 2);
                }
                if i >= 3 {
                    deps.push(i - 3);
                }
                deps.sort();
                deps.dedup();
                let system = if riscv_every > 0 && i % riscv_every == riscv_every - 1 {
                    "riscv64-linux"
                } else {
                    "x86_64-linux"
                };
                Node { name: format!("n{i}"), system: system.into(), deps, sleep, out_bytes }
            })
            .collect();
        DagSpec { nodes }
    }

    /// `n` independent trivial nodes (for throughput benchmarks).
    pub fn flat(n: usize, system: &str) -> DagSpec {
        let nodes = (0..n)
            .map(|i| Node { name: format!("t{i}"), system: system.into(), deps: Vec::new(), sleep: 0.0, out_bytes: 0 })
            .collect();
        DagSpec { nodes }
    }
}

/// A value unique to this call (per test run), so derivations never hit earlier outputs.
pub fn nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{t:x}-{}-{}", std::process::id(), COUNT.fetch_add(1, Ordering::Relaxed))
}

/// Writes `dag.nix` into `dir`: an attribute set `{ n0 = derivation …; … }` plus `all`, a list
/// of every node. Builders are `/bin/sh` scripts that sleep, list their inputs and write
/// `out_bytes` bytes. A fresh nonce is baked into every derivation.
pub fn write_dag_nix(dir: &Path, spec: &DagSpec) -> PathBuf {
    let nonce = nonce();
    let mut s = String::from("let\n");
    for (i, n) in spec.nodes.iter().enumerate() {
        for d in &n.deps {
            assert!(*d < i, "node {i} depends on later node {d}");
        }
        let inputs: Vec<String> = n.deps.iter().map(|d| format!("\"${{n{d}}}\"")).collect();
        // Inside a Nix string: `${` must be escaped as `''${` only in '' strings; here we use
        // plain strings, where `\$` is not needed for `$VAR` (only `${` is special).
        let script = format!(
            "set -e; mkdir -p $out; for i in $inputs; do echo $i >> $out/inputs; done; \
             sleep {sleep}; head -c {bytes} /dev/zero > $out/data; echo {name} > $out/name",
            sleep = n.sleep,
            bytes = n.out_bytes,
            name = n.name
        );
        let _ = writeln!(
            s,
            "  n{i} = derivation {{ name = \"{name}\"; system = \"{system}\"; builder = \"/bin/sh\"; \
             args = [ \"-c\" \"{script}\" ]; PATH = \"/usr/bin:/bin\"; inputs = [ {inputs} ]; nonce = \"{nonce}\"; }};",
            name = n.name,
            system = n.system,
            inputs = inputs.join(" "),
        );
    }
    s.push_str("in {\n");
    for i in 0..spec.nodes.len() {
        let _ = writeln!(s, "  inherit n{i};");
    }
    let all: Vec<String> = (0..spec.nodes.len()).map(|i| format!("n{i}")).collect();
    let _ = writeln!(s, "  all = [ {} ];\n}}", all.join(" "));
    let p = dir.join("dag.nix");
    write(&p, &s);
    p
}

/// The .drv paths of every node of a file from [`write_dag_nix`], in node order.
pub fn instantiate(file: &Path) -> Vec<String> {
    let out = run_ok(Command::new("nix-instantiate").arg(file).args(["-A", "all"]));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).filter(|l| !l.is_empty()).collect()
}
