//! What the remote-build benchmarks share: loopback builder hosts (tests/support/hosts.rs),
//! an ssh_config so that Nix's own ssh client reaches hosts on their ports, a generator of
//! sleep-derivation graphs whose builders read a per-host slowdown, and timed runs of
//! `nix-build --builders …` (with a default and with a multiplexing ssh_config) and
//! `rvbuild build` on the same work, counting the SSH connections each opens.
#![allow(dead_code)]

use base64::Engine as _;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "../../tests/support/hosts.rs"]
pub mod hosts;
pub mod quick;

use hosts::Fleet;

/// How Nix's own ssh client is set up for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NixSsh {
    /// One alias per host and nothing more: every remote build opens a new connection.
    Default,
    /// `ControlMaster auto`, `ControlPath`, `ControlPersist`: one connection per host, reused
    /// by every later build, as experienced Nix users configure it.
    Multiplexed,
}

impl NixSsh {
    pub fn label(self) -> &'static str {
        match self {
            NixSsh::Default => "nix-build, default ssh_config",
            NixSsh::Multiplexed => "nix-build, ssh ControlMaster",
        }
    }
}

/// An ssh_config with one alias per host (its address, port, the fleet key, strict
/// checking against the fleet's known_hosts), for `NIX_SSHOPTS=-F FILE`; with
/// [`NixSsh::Multiplexed`] each host also gets a control master that outlives the sessions.
pub fn ssh_config(fleet: &Fleet, mode: NixSsh) -> PathBuf {
    let mut s = String::new();
    for h in &fleet.hosts {
        let _ = writeln!(
            s,
            "Host {name}\n  HostName {addr}\n  Port {port}\n  User root\n  IdentityFile {key}\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {kh}\n  StrictHostKeyChecking yes\n  BatchMode yes",
            name = h.name,
            addr = h.addr,
            port = h.port,
            key = fleet.client_key.display(),
            kh = fleet.known_hosts.display(),
        );
        if mode == NixSsh::Multiplexed {
            let _ = writeln!(
                s,
                "  ControlMaster auto\n  ControlPath {}/cm-%C\n  ControlPersist 600",
                fleet.dir.path().display()
            );
        }
        s.push('\n');
    }
    let name = match mode {
        NixSsh::Default => "ssh_config",
        NixSsh::Multiplexed => "ssh_config-mux",
    };
    let p = fleet.dir.path().join(name);
    fs::write(&p, s).expect("write ssh_config");
    p
}

/// Ends the control masters a multiplexed run left behind, so the next run starts cold.
pub fn close_masters(fleet: &Fleet, config: &Path) {
    for h in &fleet.hosts {
        let _ = Command::new("ssh")
            .arg("-F")
            .arg(config)
            .args(["-O", "exit", &h.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// SSH connections the fleet's hosts have accepted so far (sshd logs each at VERBOSE).
pub fn connections(fleet: &Fleet) -> usize {
    fleet.hosts.iter().map(|h| h.log().matches("Connection from ").count()).sum()
}

/// One timed run: wall seconds and the SSH connections it opened to the builders.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub secs: f64,
    pub connections: usize,
}

/// Nix's `--builders` value for the hosts (by alias), `slots` jobs each, speed 1.
pub fn nix_builders(fleet: &Fleet, system: &str, slots: u32) -> String {
    fleet.hosts.iter().map(|h| format!("ssh://{} {system} - {slots} 1 - - -", h.name)).collect::<Vec<_>>().join(" ; ")
}

/// rvbuild's `--builders` value: the same hosts, same slots and speed, with port and host key.
pub fn rvbuild_builders(fleet: &Fleet, system: &str, slots: u32) -> String {
    fleet
        .hosts
        .iter()
        .map(|h| {
            format!(
                "ssh://root@{}:{} {system} {} {slots} 1 - - {}",
                h.addr,
                h.port,
                fleet.client_key.display(),
                base64::engine::general_purpose::STANDARD.encode(&h.host_key)
            )
        })
        .collect::<Vec<_>>()
        .join(" ; ")
}

/// One derivation of a sleep graph: its name, seconds of sleep at slowdown 1, inputs.
pub struct Sleep {
    pub name: String,
    pub seconds: f64,
    pub deps: Vec<usize>,
}

/// A `.nix` file with one derivation per node and `all`. Each builder sleeps `seconds ×
/// slowdown`, where the slowdown is read on the host that runs it from `/nix/slowdown`
/// (absent = 1): the hosts are unequal, and rvbuild is not told.
pub fn write_sleep_dag(dir: &Path, nodes: &[Sleep], nonce: &str) -> PathBuf {
    let mut s = String::from("let\n");
    for (i, n) in nodes.iter().enumerate() {
        let inputs: Vec<String> = n.deps.iter().map(|d| format!("\"${{n{d}}}\"")).collect();
        let script = format!(
            "f=1; [ -r /nix/slowdown ] && f=$(cat /nix/slowdown); \
             t=$(awk -v a={secs} -v b=$f 'BEGIN {{ print a * b }}'); sleep $t; \
             echo {name} > $out",
            secs = n.seconds,
            name = n.name,
        );
        let _ = writeln!(
            s,
            "  n{i} = derivation {{ name = \"{name}\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; \
             args = [ \"-c\" \"{script}\" ]; PATH = \"/usr/bin:/bin\"; inputs = [ {inputs} ]; nonce = \"{nonce}\"; }};",
            name = n.name,
            inputs = inputs.join(" "),
        );
    }
    let all: Vec<String> = (0..nodes.len()).map(|i| format!("n{i}")).collect();
    let _ = writeln!(s, "in {{ all = [ {} ]; }}", all.join(" "));
    let p = dir.join(format!("sleep-{nonce}.nix"));
    fs::write(&p, s).expect("write dag");
    p
}

/// `nix-build FILE -A all --builders B` with Nix's own ssh client set up as `ssh` says;
/// returns the run and Nix's stderr (it names the machine of each remote build).
pub fn time_nix_build(fleet: &Fleet, file: &Path, builders: &str, local_jobs: u32, ssh: NixSsh) -> (Run, String) {
    let cfg = ssh_config(fleet, ssh);
    let before = connections(fleet);
    let t = Instant::now();
    let o = Command::new("nix-build")
        .arg(file)
        .args(["-A", "all", "--no-out-link", "--builders", builders, "--max-jobs", &local_jobs.to_string()])
        .args(["--option", "builders-use-substitutes", "false", "--option", "substituters", ""])
        .env("NIX_SSHOPTS", format!("-F {}", cfg.display()))
        .stdin(Stdio::null())
        .output()
        .expect("run nix-build");
    let secs = t.elapsed().as_secs_f64();
    close_masters(fleet, &cfg);
    assert!(
        o.status.success(),
        "nix-build failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let run = Run { secs, connections: connections(fleet) - before };
    (run, String::from_utf8_lossy(&o.stderr).into_owned())
}

/// `rvbuild build FILE -A all --builders B --local-jobs N`; returns the run and the JSON
/// events.
pub fn time_rvbuild(
    fleet: &Fleet,
    file: &Path,
    builders: &str,
    local_jobs: u32,
    extra: &[&str],
) -> (Run, Vec<serde_json::Value>) {
    let dir = file.parent().unwrap_or(Path::new("."));
    let conf = dir.join("nixconf");
    fs::create_dir_all(&conf).expect("mkdir");
    fs::write(conf.join("nix.conf"), "").expect("nix.conf");
    let before = connections(fleet);
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_rvbuild"))
        .args(["--json", "build"])
        .arg(file)
        .args(["-A", "all", "--no-out-link", "--local-jobs", &local_jobs.to_string()])
        .arg(format!("--builders={builders}"))
        .args(extra)
        .env("RVBUILD_NIX_CONF_DIR", &conf)
        // A fresh cache: no probe results and no build history; what rvbuild knows of the
        // hosts it learns during the run.
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("CI", "true")
        .stdin(Stdio::null())
        .output()
        .expect("run rvbuild");
    let secs = t.elapsed().as_secs_f64();
    assert!(o.status.success(), "rvbuild failed: {}", String::from_utf8_lossy(&o.stderr));
    let ev = String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    (Run { secs, connections: connections(fleet) - before }, ev)
}

/// A nonce for fresh derivations.
pub fn nonce() -> String {
    hosts::nonce()
}
