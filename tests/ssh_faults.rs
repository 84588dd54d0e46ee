//! Builder faults at the moment that hurts, against real loopback sshd builders with their own
//! Nix stores (support/hosts.rs) and real Nix builds: a builder lost while its build process
//! runs, one lost halfway through the download of a large output, one whose `nix-store` sends
//! a NAR that does not match the hash it announces, one whose store disk is full, and one
//! restarted during the build that is taken back. After each, the local store holds only
//! complete, verified outputs and nothing half-written.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::hosts::{self, Fleet, Host, HostSpec};
use support::{rvbuild, text};

const MIB: u64 = 1 << 20;

/// rvbuild with a private HOME and an empty nix.conf: the pool is exactly `--builders` plus
/// the local machine running x86_64-linux only.
fn isolated(dir: &Path) -> Command {
    let conf = dir.join("nixconf");
    fs::create_dir_all(&conf).expect("mkdir");
    fs::write(conf.join("nix.conf"), "").expect("nix.conf");
    let mut c = rvbuild();
    c.env("HOME", dir).env("RVBUILD_NIX_CONF_DIR", &conf).env("CI", "true").env_remove("SSH_AUTH_SOCK");
    c.current_dir(dir);
    c
}

/// One test derivation: a `/bin/sh -c SCRIPT` builder (no double quotes, no `${` in SCRIPT);
/// `$dep0`, `$dep1`, … are the outputs of its dependencies.
struct Drv {
    name: &'static str,
    system: &'static str,
    script: String,
    deps: Vec<usize>,
}

impl Drv {
    fn new(name: &'static str, system: &'static str, script: impl Into<String>) -> Drv {
        Drv { name, system, script: script.into(), deps: Vec::new() }
    }
}

/// Writes `faults.nix` (each derivation by name, plus `all`) with a fresh nonce, so no output
/// exists anywhere yet.
fn write_nix(dir: &Path, drvs: &[Drv]) -> PathBuf {
    let nonce = hosts::nonce();
    let mut s = String::from("let\n");
    for d in drvs {
        let deps: String = d.deps.iter().enumerate().map(|(k, &i)| format!(" dep{k} = {};", drvs[i].name)).collect();
        s.push_str(&format!(
            "  {name} = derivation {{ name = \"{name}\"; system = \"{system}\"; builder = \"/bin/sh\"; \
             args = [ \"-c\" \"{script}\" ]; PATH = \"/usr/bin:/bin\"; nonce = \"{nonce}\";{deps} }};\n",
            name = d.name,
            system = d.system,
            script = d.script,
        ));
    }
    let names: Vec<&str> = drvs.iter().map(|d| d.name).collect();
    s.push_str(&format!("in {{ inherit {}; all = [ {} ]; }}\n", names.join(" "), names.join(" ")));
    let p = dir.join("faults.nix");
    fs::write(&p, s).expect("write faults.nix");
    p
}

/// The output path of each derivation of `file`, in order.
fn output_paths(file: &Path) -> Vec<String> {
    hosts::instantiate(file)
        .iter()
        .map(|drv| {
            let o = Command::new("nix-store").args(["-q", "--outputs", drv]).output().expect("nix-store -q");
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        })
        .collect()
}

/// A machines file for the fleet, each host with the given speed factor (the scheduler puts
/// the first work on the fastest host).
fn machines(fleet: &Fleet, speeds: &[(&str, u32)]) -> PathBuf {
    let mut text = String::new();
    for h in &fleet.hosts {
        let mut cols: Vec<String> = h.machines_line(fleet).split_whitespace().map(str::to_string).collect();
        if let Some((_, s)) = speeds.iter().find(|(n, _)| *n == h.name) {
            cols[4] = s.to_string();
        }
        text.push_str(&cols.join(" "));
        text.push('\n');
    }
    let p = fleet.dir.path().join("machines-speeds");
    fs::write(&p, text).expect("machines");
    p
}

/// rvbuild's name for a host (`ADDR:PORT`).
fn builder_name(h: &Host) -> String {
    format!("{}:{}", h.addr, h.port)
}

/// A running `rvbuild --json build`: its events arrive on a channel as they are printed.
struct Build {
    child: Child,
    rx: mpsc::Receiver<Value>,
    seen: Vec<Value>,
    stderr: std::thread::JoinHandle<String>,
}

impl Build {
    fn start(dir: &Path, file: &Path, machines: &Path, extra: &[&str]) -> Build {
        let mut child = isolated(dir)
            .args(["--json", "build"])
            .arg(file)
            .args(["-A", "all", "--no-out-link", "--log-dir", "logs"])
            .arg(format!("--builders=@{}", machines.display()))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rvbuild");
        let stdout = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut s);
            s
        });
        Build { child, rx, seen: Vec::new(), stderr }
    }

    /// Takes the events printed so far.
    fn drain(&mut self) {
        while let Ok(v) = self.rx.try_recv() {
            self.seen.push(v);
        }
    }

    /// Waits (at most `limit`) for an event matching `what`; returns it.
    fn wait_for(&mut self, limit: Duration, what: impl Fn(&Value) -> bool) -> Value {
        if let Some(v) = self.seen.iter().find(|v| what(v)) {
            return v.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if what(&v) {
                        return v;
                    }
                }
                Err(_) => panic!("no such event within {limit:?}; saw {:?}", self.seen),
            }
        }
    }

    /// Waits for the end (three minutes at most): exit code, every event, stderr.
    fn finish(mut self) -> (Option<i32>, Vec<Value>, String) {
        let deadline = Instant::now() + Duration::from_secs(180);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.drain();
                panic!("rvbuild did not end within 3 minutes; saw {:?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(v) = self.rx.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(v);
        }
        let err = self.stderr.join().unwrap_or_default();
        (status.code(), self.seen, err)
    }
}

fn is(ev: &Value, kind: &str) -> bool {
    ev["event"] == kind
}

/// `finished` events of `component`: (host, ok) in order.
fn finishes(ev: &[Value], component: &str) -> Vec<(String, bool)> {
    ev.iter()
        .filter(|e| is(e, "finished") && e["component"] == component)
        .map(|e| (e["host"].as_str().unwrap_or_default().to_string(), e["ok"].as_bool().unwrap_or(false)))
        .collect()
}

fn notes(ev: &[Value]) -> Vec<String> {
    ev.iter().filter(|e| is(e, "note")).map(|e| e["text"].as_str().unwrap_or_default().to_string()).collect()
}

/// Asserts that `path` is valid in the local store and its contents match the registered
/// hash (`nix-store --verify-path`).
fn assert_verified_locally(path: &str) {
    let valid = Command::new("nix-store").args(["--check-validity", path]).status().expect("nix-store");
    assert!(valid.success(), "{path} is not valid in the local store");
    let o = Command::new("nix-store").args(["--verify-path", path]).output().expect("nix-store --verify-path");
    assert!(o.status.success(), "{path} does not match its registered hash: {}", text(&o));
}

/// Waits until one of the fleet's hosts runs a process whose command line contains `what`;
/// returns that host's name.
fn wait_for_process(fleet: &Fleet, what: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        for h in &fleet.hosts {
            if h.command_lines().iter().any(|c| c.contains(what)) {
                return h.name.clone();
            }
        }
        assert!(Instant::now() < deadline, "no host ran `{what}` within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ssh_faults_builder_killed_while_its_build_runs_completes_elsewhere() {
    let mut fleet = hosts::start(&[HostSpec::new("a", "x86_64-linux"), HostSpec::new("b", "x86_64-linux")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(
        dir.path(),
        &[Drv::new("slow", "x86_64-linux", "mkdir $out; sleep 4.31; head -c 1048576 /dev/urandom > $out/data")],
    );
    let out = output_paths(&file).remove(0);
    let m = machines(&fleet, &[]);
    let mut build = Build::start(dir.path(), &file, &m, &["--local-jobs", "0"]);
    // The remote build process itself is running: kill its host then, sshd and all.
    let victim = wait_for_process(&fleet, "sleep 4.31", Duration::from_secs(30));
    build.drain();
    assert!(finishes(&build.seen, "slow").is_empty(), "the build had not ended when its host was killed");
    fleet.host_mut(&victim).kill_sshd();
    let victim_name = builder_name(fleet.host(&victim));
    let (code, ev, err) = build.finish();
    assert_eq!(code, Some(0), "the build must survive losing {victim}: {err}\n{ev:?}");
    let runs = finishes(&ev, "slow");
    assert_eq!(runs.first(), Some(&(victim_name.clone(), false)), "the first run died with {victim}: {runs:?}");
    let (last_host, ok) = runs.last().cloned().unwrap_or_default();
    assert!(ok && last_host != victim_name, "rebuilt elsewhere: {runs:?}");
    assert!(
        notes(&ev).iter().any(|n| n.contains(&format!("builder {victim_name} is down"))),
        "the loss is reported: {:?}",
        notes(&ev)
    );
    assert_verified_locally(&out);
    assert_eq!(fs::metadata(Path::new(&out).join("data")).expect("data").len(), MIB);
    let other = fleet.hosts.iter().find(|h| h.name != victim).expect("the other host");
    assert!(other.store_has(&out), "built on {}", other.name);
}

/// Passes `nix-store --serve`'s output on in 64 KiB reads, pausing 10 ms after each full one:
/// bulk NAR data flows at about 6 MiB/s, small replies at once.
const THROTTLE: &str = "perl -e 'binmode STDIN; binmode STDOUT; while (my $n = sysread(STDIN, my $b, 65536)) { \
                        syswrite(STDOUT, $b); select(undef, undef, undef, 0.01) if $n == 65536 }'";

#[test]
fn ssh_faults_builder_killed_halfway_through_the_download_completes_elsewhere() {
    const SIZE: u64 = 32 * MIB;
    let slow = |name| HostSpec { serve_filter: Some(THROTTLE), ..HostSpec::new(name, "x86_64-linux") };
    let mut fleet = hosts::start(&[slow("a"), slow("b")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(
        dir.path(),
        &[Drv::new("big", "x86_64-linux", format!("mkdir $out; head -c {SIZE} /dev/urandom > $out/data"))],
    );
    let out = output_paths(&file).remove(0);
    let partial = Path::new(&out).join("data");
    let m = machines(&fleet, &[]);
    let build = Build::start(dir.path(), &file, &m, &["--local-jobs", "0"]);
    // Nix restores a NAR straight into the final store path: watch it grow, then kill the
    // builder that sends it when half of it has arrived.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut victim = None;
    let at_kill = loop {
        assert!(Instant::now() < deadline, "the download never got halfway; saw {:?}", build.seen);
        let size = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if size > 0 && victim.is_none() {
            victim = fleet.hosts.iter().find(|h| h.store_has(&out)).map(|h| h.name.clone());
            assert!(victim.is_some(), "a download started but no host has built {out}");
        }
        if size >= SIZE / 2
            && let Some(v) = &victim
        {
            fleet.host_mut(v).kill_sshd();
            break size;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let victim = victim.unwrap_or_default();
    assert!(at_kill < SIZE, "killed before the download ended ({at_kill} of {SIZE} bytes)");
    let victim_name = builder_name(fleet.host(&victim));
    let (code, ev, err) = build.finish();
    assert_eq!(code, Some(0), "the build must survive losing {victim} mid-download: {err}\n{ev:?}");
    let runs = finishes(&ev, "big");
    assert_eq!(runs.first(), Some(&(victim_name.clone(), false)), "{runs:?}");
    let (last_host, ok) = runs.last().cloned().unwrap_or_default();
    assert!(ok && last_host != victim_name, "fetched from the other builder: {runs:?}");
    assert_verified_locally(&out);
    assert_eq!(fs::metadata(&partial).expect("data").len(), SIZE);
    eprintln!("killed {victim} with {at_kill} of {SIZE} bytes downloaded");
}

#[test]
fn ssh_faults_download_cut_off_with_no_other_builder_leaves_nothing_on_disk() {
    const SIZE: u64 = 16 * MIB;
    let mut fleet = hosts::start(&[HostSpec { serve_filter: Some(THROTTLE), ..HostSpec::new("a", "x86_64-linux") }]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(
        dir.path(),
        &[Drv::new("cut", "x86_64-linux", format!("mkdir $out; head -c {SIZE} /dev/urandom > $out/data"))],
    );
    let out = output_paths(&file).remove(0);
    let partial = Path::new(&out).join("data");
    let m = machines(&fleet, &[]);
    let build = Build::start(dir.path(), &file, &m, &["--local-jobs", "0"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        let size = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if size >= SIZE / 4 {
            fleet.host_mut("a").kill_sshd();
            break size;
        }
        assert!(Instant::now() < deadline, "the download never started; saw {:?}", build.seen);
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(at_kill < SIZE, "killed before the download ended ({at_kill} of {SIZE} bytes)");
    // Nothing can build it now: the build fails once the reconnection attempts are used up.
    let (code, _, err) = build.finish();
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains(&builder_name(fleet.host("a"))), "{err}");
    let valid = Command::new("nix-store").args(["--check-validity", &out]).status().expect("nix-store");
    assert!(!valid.success(), "{out} must not be registered locally");
    assert!(!Path::new(&out).exists(), "the half-written {out} was removed");
}

#[test]
fn ssh_faults_ctrl_c_during_a_download_leaves_nothing_on_disk() {
    const SIZE: u64 = 16 * MIB;
    let fleet = hosts::start(&[HostSpec { serve_filter: Some(THROTTLE), ..HostSpec::new("a", "x86_64-linux") }]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(
        dir.path(),
        &[Drv::new("stopped", "x86_64-linux", format!("mkdir $out; head -c {SIZE} /dev/urandom > $out/data"))],
    );
    let out = output_paths(&file).remove(0);
    let partial = Path::new(&out).join("data");
    let m = machines(&fleet, &[]);
    let build = Build::start(dir.path(), &file, &m, &["--local-jobs", "0"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) < SIZE / 4 {
        assert!(Instant::now() < deadline, "the download never started; saw {:?}", build.seen);
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(build.child.id() as i32, libc::SIGINT);
    }
    let (code, _, err) = build.finish();
    assert_eq!(code, Some(130), "{err}");
    assert!(!Path::new(&out).exists(), "the half-written {out} was removed");
}

/// Rewrites every `RVBUILD-HONEST-BYTES` in what `nix-store --serve` sends: the builder's
/// store holds (and its QueryPathInfos announces the hash of) the honest bytes, its NARs
/// carry others.
const FORGE: &str = "perl -e 'binmode STDIN; binmode STDOUT; while (sysread(STDIN, my $b, 65536)) { \
                     $b =~ s/RVBUILD-HONEST-BYTES/RVBUILD-FORGED-BYTES/g; syswrite(STDOUT, $b) }'";

/// A derivation whose output is the marker line, many times.
fn marked(name: &'static str) -> Drv {
    Drv::new(name, "x86_64-linux", "mkdir $out; yes RVBUILD-HONEST-BYTES | head -n 4000 > $out/data")
}

#[test]
fn ssh_faults_wrong_output_is_rejected_and_rebuilt_elsewhere() {
    let forger = HostSpec { serve_filter: Some(FORGE), ..HostSpec::new("forger", "x86_64-linux") };
    let fleet = hosts::start(&[forger, HostSpec::new("honest", "x86_64-linux")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), &[marked("m0")]);
    let out = output_paths(&file).remove(0);
    // The forger looks ten times faster: the scheduler gives it the work first.
    let m = machines(&fleet, &[("forger", 10)]);
    let (code, ev, err) = Build::start(dir.path(), &file, &m, &["--local-jobs", "0"]).finish();
    assert_eq!(code, Some(0), "{err}\n{ev:?}");
    let forger = builder_name(fleet.host("forger"));
    let honest = builder_name(fleet.host("honest"));
    assert_eq!(finishes(&ev, "m0"), vec![(forger.clone(), false), (honest, true)]);
    let n = notes(&ev);
    assert!(
        n.iter().any(|t| t.contains(&format!("builder {forger} sent an output that does not match its hash"))
            && t.contains("not used again")),
        "{n:?}"
    );
    assert!(fleet.host("forger").store_has(&out), "the forger did build it");
    assert_verified_locally(&out);
    let data = fs::read_to_string(Path::new(&out).join("data")).expect("data");
    assert!(data.starts_with("RVBUILD-HONEST-BYTES\n") && !data.contains("FORGED"), "the honest bytes");
}

#[test]
fn ssh_faults_wrong_output_with_no_other_builder_fails_naming_the_host_and_keeps_nothing() {
    let forger = HostSpec { serve_filter: Some(FORGE), ..HostSpec::new("forger", "x86_64-linux") };
    let fleet = hosts::start(&[forger]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(dir.path(), &[marked("m1")]);
    let out = output_paths(&file).remove(0);
    let m = machines(&fleet, &[]);
    let (code, ev, err) = Build::start(dir.path(), &file, &m, &["--local-jobs", "0"]).finish();
    let forger = builder_name(fleet.host("forger"));
    assert_eq!(code, Some(4), "a builder fault (exit 4): {err}");
    assert!(err.contains(&forger) && err.contains("hash"), "the message names the host and the hash: {err}");
    assert!(err.contains("nix-store --verify --check-contents"), "and says what to check: {err}");
    assert!(fleet.host("forger").store_has(&out), "the forger did build it");
    let valid = Command::new("nix-store").args(["--check-validity", &out]).status().expect("nix-store");
    assert!(!valid.success(), "{out} must not be registered locally");
    assert!(!Path::new(&out).exists(), "nothing of the rejected NAR is left on disk at {out}");
    assert!(notes(&ev).iter().any(|t| t.contains(&forger)), "{ev:?}");
}

#[test]
fn ssh_faults_full_store_is_classified_and_the_work_moves_elsewhere() {
    let full = HostSpec { store_tmpfs: Some("2m"), ..HostSpec::new("full", "x86_64-linux") };
    let fleet = hosts::start(&[full, HostSpec::new("roomy", "x86_64-linux")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_nix(
        dir.path(),
        &[Drv::new("fat", "x86_64-linux", "mkdir $out; head -c 8388608 /dev/urandom > $out/data")],
    );
    let out = output_paths(&file).remove(0);
    let m = machines(&fleet, &[("full", 10)]);
    let (code, ev, err) = Build::start(dir.path(), &file, &m, &["--local-jobs", "0"]).finish();
    assert_eq!(code, Some(0), "{err}\n{ev:?}");
    let full = builder_name(fleet.host("full"));
    let roomy = builder_name(fleet.host("roomy"));
    let n = notes(&ev);
    assert_eq!(finishes(&ev, "fat"), vec![(full.clone(), false), (roomy, true)], "{n:?}");
    assert!(
        n.iter()
            .any(|t| t.contains(&format!("builder {full} has no space left on its disk"))
                && t.contains("not used again")),
        "{n:?}"
    );
    assert_verified_locally(&out);
    assert_eq!(fs::metadata(Path::new(&out).join("data")).expect("data").len(), 8 * MIB);
}

#[test]
fn ssh_faults_full_store_refusing_an_upload_moves_the_work_elsewhere() {
    // Both hosts build riscv64 only, so the input (x86_64) is built here and uploaded.
    let full = HostSpec { store_tmpfs: Some("2m"), ..HostSpec::new("full", "riscv64-linux") };
    let fleet = hosts::start(&[full, HostSpec::new("roomy", "riscv64-linux")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut user = Drv::new("user", "riscv64-linux", "mkdir $out; wc -c < $dep0/data > $out/size");
    user.deps = vec![0];
    let file = write_nix(
        dir.path(),
        &[Drv::new("input", "x86_64-linux", "mkdir $out; head -c 4194304 /dev/urandom > $out/data"), user],
    );
    let outs = output_paths(&file);
    let m = machines(&fleet, &[("full", 10)]);
    let (code, ev, err) = Build::start(dir.path(), &file, &m, &["--local-jobs", "1"]).finish();
    assert_eq!(code, Some(0), "{err}\n{ev:?}");
    let full = builder_name(fleet.host("full"));
    let roomy = builder_name(fleet.host("roomy"));
    assert_eq!(finishes(&ev, "input"), vec![("local".to_string(), true)]);
    assert_eq!(finishes(&ev, "user"), vec![(full.clone(), false), (roomy, true)]);
    let n = notes(&ev);
    assert!(
        n.iter().any(|t| t.contains(&format!("builder {full} has no space left on its disk"))
            && t.contains("No space left on device")),
        "{n:?}"
    );
    assert!(!fleet.host("full").store_has(&outs[0]), "the upload did not become valid on the full host");
    assert_verified_locally(&outs[1]);
    let size = fs::read_to_string(Path::new(&outs[1]).join("size")).expect("size");
    assert_eq!(size.trim(), (4 * MIB).to_string());
}

#[test]
fn ssh_faults_restarted_builder_is_taken_back_within_the_build() {
    // rv is the only riscv64 builder; the local machine builds the x86_64 derivation meanwhile.
    let mut fleet = hosts::start(&[HostSpec::new("rv", "riscv64-linux")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r1 = Drv::new("r1", "riscv64-linux", "mkdir $out; echo $dep0 > $out/input");
    r1.deps = vec![0];
    let file = write_nix(
        dir.path(),
        &[
            Drv::new("r0", "riscv64-linux", "mkdir $out; sleep 3.37; echo r0 > $out/data"),
            r1,
            Drv::new("x0", "x86_64-linux", "mkdir $out; sleep 38; echo x0 > $out/data"),
        ],
    );
    let outs = output_paths(&file);
    let m = machines(&fleet, &[]);
    let mut build = Build::start(dir.path(), &file, &m, &["--local-jobs", "1"]);
    wait_for_process(&fleet, "sleep 3.37", Duration::from_secs(30));
    fleet.host_mut("rv").kill_sshd();
    let rv = builder_name(fleet.host("rv"));
    build.wait_for(Duration::from_secs(20), |e| {
        is(e, "note") && e["text"].as_str().unwrap_or_default().contains(&format!("builder {rv} is down"))
    });
    // Down for longer than the reconnection attempts that work stranded on it waits for
    // (1 + 2 + 4 + 8 s): it is still tried while x0 builds.
    std::thread::sleep(Duration::from_secs(17));
    fleet.host_mut("rv").restart();
    let restarted = Instant::now();
    build.wait_for(Duration::from_secs(20), |e| {
        is(e, "note") && e["text"].as_str().unwrap_or_default() == format!("builder {rv} is back")
    });
    assert!(restarted.elapsed() < Duration::from_secs(15), "taken back within one retry interval (10 s)");
    let (code, ev, err) = build.finish();
    assert_eq!(code, Some(0), "{err}\n{ev:?}");
    assert_eq!(finishes(&ev, "r0"), vec![(rv.clone(), false), (rv.clone(), true)], "r0 ran on rv again");
    assert_eq!(finishes(&ev, "r1"), vec![(rv.clone(), true)]);
    assert_eq!(finishes(&ev, "x0"), vec![("local".to_string(), true)]);
    for o in &outs {
        assert_verified_locally(o);
    }
    assert!(fleet.host("rv").store_has(&outs[1]), "r1 was built on the restarted rv");
}
