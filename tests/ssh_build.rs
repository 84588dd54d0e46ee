//! `rvbuild build` over real SSH builders: loopback sshd hosts with their own Nix stores (see
//! support/hosts.rs) plus the local machine. A 32-derivation DAG placed over all three, each
//! derivation found in the store of the host it ran on; riscv64 work only where riscv64 runs;
//! a host killed mid-build; Ctrl-C leaving no remote process; an unknown host key refused.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::hosts::{self, DagSpec, Fleet};
use support::{rvbuild, text};

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

fn events(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The fleet's name for an rvbuild builder name (`ADDR:PORT` for a machines line with an
/// address), `local` for the local machine.
fn fleet_name(fleet: &Fleet, builder: &str) -> String {
    fleet
        .hosts
        .iter()
        .find(|h| builder == format!("{}:{}", h.addr, h.port) || builder == h.addr)
        .map(|h| h.name.clone())
        .unwrap_or_else(|| builder.to_string())
}

/// drv name → (host, ok) from `finished` events, hosts by their fleet names.
fn placements(fleet: &Fleet, ev: &[Value]) -> BTreeMap<String, (String, bool)> {
    ev.iter()
        .filter(|e| e["event"] == "finished")
        .map(|e| {
            let name = e["component"].as_str().unwrap_or_default().to_string();
            (name, (fleet_name(fleet, e["host"].as_str().unwrap_or_default()), e["ok"].as_bool().unwrap_or(false)))
        })
        .collect()
}

fn outputs(ev: &[Value]) -> BTreeMap<String, String> {
    ev.iter()
        .filter(|e| e["event"] == "output")
        .map(|e| {
            (
                e["component"].as_str().unwrap_or_default().to_string(),
                e["path"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn valid_locally(path: &str) -> bool {
    Command::new("nix-store").args(["--check-validity", path]).status().map(|s| s.success()).unwrap_or(false)
}

#[test]
fn ssh_build_places_a_dag_over_two_hosts_and_local_in_their_own_stores() {
    let fleet = hosts::start(hosts::STANDARD);
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = DagSpec::layered(32, 4, 1.0, 2000);
    let file = hosts::write_dag_nix(dir.path(), &spec);
    let machines = fleet.machines_file();
    let o = isolated(dir.path())
        .args(["--json", "build"])
        .arg(&file)
        .args(["-A", "all", "--no-out-link", "--local-jobs", "1", "--log-dir", "logs"])
        .arg(format!("--builders=@{}", machines.display()))
        .output()
        .expect("run rvbuild");
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let ev = events(&o.stdout);
    let placed = placements(&fleet, &ev);
    let outs = outputs(&ev);
    assert_eq!(placed.len(), 32, "every derivation finished once: {placed:?}");
    let mut hosts_used = BTreeSet::new();
    for (i, node) in spec.nodes.iter().enumerate() {
        let (host, ok) = placed.get(&node.name).unwrap_or_else(|| panic!("n{i} never finished: {t}"));
        assert!(ok, "{} failed", node.name);
        hosts_used.insert(host.clone());
        if node.system == "riscv64-linux" {
            assert!(host == "emu" || host == "rv", "{} (riscv64) ran on {host}, which cannot run riscv64", node.name);
        } else {
            assert!(host == "emu" || host == "local", "{} (x86_64) ran on {host}", node.name);
        }
        let out = outs.get(&node.name).unwrap_or_else(|| panic!("no output event for {}", node.name));
        assert!(valid_locally(out), "{out} is not valid in the local store");
        match host.as_str() {
            "local" => {}
            h => {
                let remote = fleet.host(h);
                assert!(remote.store_has(out), "{out} was built on {h} but is not in its store");
            }
        }
        let listing = fs::read_to_string(Path::new(out).join("inputs")).unwrap_or_default();
        assert_eq!(listing.lines().count(), node.deps.len(), "{} lists its inputs", node.name);
    }
    assert!(hosts_used.len() >= 3, "work went to local, emu and rv: {hosts_used:?}");
    // What the live view is fed: the pool, the scheduler's estimates and forecasts, and the
    // copies to and from each remote builder.
    let of = |kind: &str| ev.iter().filter(|e| e["event"] == kind).collect::<Vec<_>>();
    assert_eq!(of("builder").len(), 3, "local, emu and rv");
    assert!(of("started").iter().all(|e| e["estimate"].as_f64().is_some_and(|x| x > 0.0)), "{t}");
    let forecasts = of("forecast");
    assert!(forecasts.len() >= 2, "{t}");
    assert!(forecasts[0]["remaining"].as_f64().is_some_and(|x| x > 0.0) && forecasts[0]["total"] == 32, "{t}");
    for (name, (host, _)) in placed.iter().filter(|(_, (h, _))| h != "local") {
        let downloaded = of("copy").iter().any(|e| {
            e["component"] == name.as_str()
                && e["direction"] == "download"
                && e["done"] == true
                && e["bytes"].as_u64().is_some_and(|b| b >= 2000)
                && fleet_name(&fleet, e["host"].as_str().unwrap_or_default()) == *host
        });
        assert!(downloaded, "{name}'s outputs came back from {host} in a copy event");
    }
    // An x86_64 output built locally reaches a remote store only as an input of a derivation
    // built there; a sink (nothing depends on it) never leaves this machine.
    let last = spec.nodes.len() - 1;
    if placed[&spec.nodes[last].name].0 == "local" {
        assert!(fleet.hosts.iter().all(|h| !h.store_has(&outs[&spec.nodes[last].name])));
    }
    let logs: Vec<String> = fs::read_dir(dir.path().join("logs"))
        .expect("logs")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(logs.len(), 32, "a log per derivation: {logs:?}");
}

/// Starts `rvbuild build` in the background and returns it with a reader of its JSON events.
fn spawn_build(
    dir: &Path,
    file: &Path,
    fleet: &Fleet,
    extra: &[&str],
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let machines = fleet.machines_file();
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
    (child, BufReader::new(stdout))
}

/// Reads events until one matches; returns every event read.
fn read_until(r: &mut BufReader<std::process::ChildStdout>, what: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => panic!("rvbuild ended before the expected event; saw {seen:?}"),
            Ok(_) => {}
        }
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            let hit = what(&v);
            seen.push(v);
            if hit {
                return seen;
            }
        }
    }
}

#[test]
fn ssh_build_completes_when_a_builder_dies_mid_build() {
    let mut fleet = hosts::start(hosts::STANDARD);
    let dir = tempfile::tempdir().expect("tempdir");
    // x86_64 only: emu and local can build it, rv cannot.
    let spec = DagSpec::layered(12, 0, 1.5, 100);
    let file = hosts::write_dag_nix(dir.path(), &spec);
    let (mut child, mut r) = spawn_build(dir.path(), &file, &fleet, &["--local-jobs", "1"]);
    let emu_name = format!("{}:{}", fleet.host("emu").addr, fleet.host("emu").port);
    let mut seen = read_until(&mut r, |e| e["event"] == "started" && e["host"] == emu_name.as_str());
    fleet.host_mut("emu").kill_sshd();
    let killed_at = Instant::now();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut r, &mut rest).expect("read events");
    let status = child.wait().expect("wait");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    seen.extend(events(rest.as_bytes()));
    assert!(status.success(), "the build must survive losing emu: {err}");
    let placed = placements(&fleet, &seen);
    let done: BTreeSet<&String> = placed.iter().filter(|(_, (_, ok))| *ok).map(|(n, _)| n).collect();
    assert_eq!(done.len(), 12, "every derivation was built in the end: {placed:?}");
    assert!(
        seen.iter().any(|e| e["event"] == "note"
            && e["text"].as_str().unwrap_or_default().contains(&format!("builder {emu_name} is down"))),
        "the loss is reported: {seen:?}"
    );
    for (n, out) in outputs(&seen) {
        assert!(valid_locally(&out), "{n}: {out} not valid locally");
    }
    assert!(killed_at.elapsed() < Duration::from_secs(60), "no long hang after the loss");
}

#[test]
fn ssh_build_ctrl_c_stops_remote_builds_and_exits_130() {
    let fleet = hosts::start(hosts::STANDARD);
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = DagSpec::flat(4, "x86_64-linux");
    let mut spec = spec;
    for n in &mut spec.nodes {
        n.sleep = 60.0;
    }
    let file = hosts::write_dag_nix(dir.path(), &spec);
    let (mut child, mut r) = spawn_build(dir.path(), &file, &fleet, &["--local-jobs", "0"]);
    let _ = read_until(&mut r, |e| e["event"] == "started");
    // Let the remote build start its sleep.
    let emu = fleet.host("emu");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !emu.command_lines().iter().any(|c| c.contains("sleep 60")) {
        assert!(Instant::now() < deadline, "the remote build never started: {:?}", emu.command_lines());
        std::thread::sleep(Duration::from_millis(100));
    }
    let t0 = Instant::now();
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "exit code 130 after Ctrl-C");
    assert!(t0.elapsed() < Duration::from_secs(10), "stopped promptly: {:?}", t0.elapsed());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = emu
            .command_lines()
            .into_iter()
            .filter(|c| c.contains("nix-store --serve") || c.contains("sleep 60"))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "remote processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn ssh_build_refuses_an_unknown_host_key_with_its_fingerprint() {
    let fleet = hosts::start(&hosts::STANDARD[..1]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = hosts::write_dag_nix(dir.path(), &DagSpec::flat(1, "x86_64-linux"));
    let emu = fleet.host("emu");
    // No host key column, and the private HOME has no known_hosts.
    let line = format!("ssh://root@{}:{} x86_64-linux {} 1", emu.addr, emu.port, fleet.client_key.display());
    let o = isolated(dir.path())
        .arg("build")
        .arg(&file)
        .args(["-A", "all", "--no-out-link", "--local-jobs", "0", "--builders", &line])
        .output()
        .expect("run");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(t.contains("SHA256:"), "the fingerprint is shown: {t}");
    assert!(t.contains("--accept-new-host-keys"), "and how to accept it: {t}");
    assert!(!dir.path().join(".ssh/known_hosts").exists(), "nothing recorded without being asked");

    let o = isolated(dir.path())
        .arg("build")
        .arg(&file)
        .args(["-A", "all", "--no-out-link", "--local-jobs", "0", "--accept-new-host-keys", "--builders", &line])
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", text(&o));
    let kh = fs::read_to_string(dir.path().join(".ssh/known_hosts")).expect("known_hosts written");
    assert!(kh.contains(emu.host_key.split_whitespace().nth(1).unwrap_or("?")), "{kh}");
}

/// Peak resident memory (VmHWM, KiB) of a running process, or None once it has exited.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn ssh_build_streams_a_large_output_back_in_constant_memory() {
    const MIB: u64 = 1 << 20;
    let fleet = hosts::start(&hosts::STANDARD[..1]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = DagSpec::flat(1, "x86_64-linux");
    spec.nodes[0].out_bytes = 384 * MIB;
    let file = hosts::write_dag_nix(dir.path(), &spec);
    let (mut child, mut r) = spawn_build(dir.path(), &file, &fleet, &["--local-jobs", "0"]);
    let pid = child.id();
    let reader = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut r, &mut rest);
        rest
    });
    let mut peak = 0;
    while child.try_wait().ok().flatten().is_none() {
        if let Some(k) = peak_rss_kib(pid) {
            peak = peak.max(k);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().expect("wait");
    let events_text = reader.join().expect("reader");
    assert!(status.success(), "{events_text}");
    let ev = events(events_text.as_bytes());
    let out = outputs(&ev).into_values().next().expect("an output");
    assert!(valid_locally(&out), "{out}");
    let size = fs::metadata(Path::new(&out).join("data")).expect("data").len();
    assert_eq!(size, 384 * MIB);
    // The 384 MiB went through rvbuild (SSH channel -> local store) without being held.
    assert!(peak > 0 && peak < 96 * 1024, "peak RSS {peak} KiB while moving a 384 MiB output");
    eprintln!("peak RSS {peak} KiB for a 384 MiB output");
}

/// Every form the private key's secret could take in output: the key file's text, each line
/// of its base64 body, and the ed25519 secret itself (raw, hex, base64).
fn secret_forms(key_file: &Path) -> Vec<(String, Vec<u8>)> {
    use base64::Engine as _;
    let text = fs::read_to_string(key_file).expect("key file");
    let key = russh::keys::decode_secret_key(&text, None).expect("private key");
    let seed = key.key_data().ed25519().expect("ed25519").private.to_bytes().to_vec();
    let mut forms = vec![
        ("key file".to_string(), text.clone().into_bytes()),
        ("secret (raw)".to_string(), seed.clone()),
        ("secret (hex)".to_string(), seed.iter().map(|b| format!("{b:02x}")).collect::<String>().into_bytes()),
        ("secret (base64)".to_string(), base64::engine::general_purpose::STANDARD.encode(&seed).into_bytes()),
    ];
    for (i, line) in text.lines().filter(|l| !l.starts_with("-----") && l.len() >= 16).enumerate() {
        forms.push((format!("key file line {}", i + 2), line.as_bytes().to_vec()));
    }
    forms
}

/// The first secret form found in `haystack`.
fn secret_in<'f>(forms: &'f [(String, Vec<u8>)], haystack: &[u8]) -> Option<&'f str> {
    forms
        .iter()
        .find(|(_, needle)| haystack.windows(needle.len()).any(|w| w == needle.as_slice()))
        .map(|(f, _)| f.as_str())
}

fn scan_for_secrets(forms: &[(String, Vec<u8>)], what: &str, haystack: &[u8]) {
    assert_eq!(secret_in(forms, haystack), None, "{what} contains a form of the private key");
}

/// The private key used to log in to builders never appears in rvbuild's events (JSON), its
/// plain output, its build logs or the known_hosts it writes: not on success, not when the
/// key is refused.
#[test]
fn ssh_build_never_shows_private_key_material() {
    let fleet = hosts::start(&hosts::STANDARD[..1]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = hosts::write_dag_nix(dir.path(), &DagSpec::flat(2, "x86_64-linux"));
    let emu = fleet.host("emu");
    let forms = secret_forms(&fleet.client_key);
    // The scanner finds a secret planted in the middle of some output.
    let planted = [b"{\"event\":\"x\",\"k\":\"".as_slice(), &forms[3].1, b"\"}"].concat();
    assert_eq!(secret_in(&forms, &planted), Some("secret (base64)"));
    let line = format!("ssh://root@{}:{} x86_64-linux {} 2", emu.addr, emu.port, fleet.client_key.display());
    let o = isolated(dir.path())
        .args(["--json", "--verbose", "build"])
        .arg(&file)
        .args(["-A", "all", "--no-out-link", "--local-jobs", "0", "--accept-new-host-keys", "--log-dir", "logs"])
        .args(["--builders", &line])
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", text(&o));
    let ev = events(&o.stdout);
    assert!(ev.iter().filter(|e| e["event"] == "finished").count() == 2, "both built remotely: {}", text(&o));
    scan_for_secrets(&forms, "the JSON events", &o.stdout);
    scan_for_secrets(&forms, "stderr", &o.stderr);
    let mut logs = 0;
    for e in fs::read_dir(dir.path().join("logs")).expect("logs") {
        let p = e.expect("entry").path();
        scan_for_secrets(&forms, &p.display().to_string(), &fs::read(&p).expect("log"));
        logs += 1;
    }
    assert!(logs >= 2, "the build logs were scanned");
    scan_for_secrets(&forms, "known_hosts", &fs::read(dir.path().join(".ssh/known_hosts")).expect("known_hosts"));

    // A key the builder refuses: the error names the file and its fingerprint, nothing more.
    let other = dir.path().join("other_key");
    let st = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other).status();
    assert!(st.is_ok_and(|s| s.success()), "ssh-keygen");
    let forms = secret_forms(&other);
    let line = format!("ssh://root@{}:{} x86_64-linux {} 1", emu.addr, emu.port, other.display());
    let fresh = dir.path().join("fresh");
    fs::create_dir(&fresh).expect("mkdir");
    let file = hosts::write_dag_nix(&fresh, &DagSpec::flat(1, "x86_64-linux"));
    for json in [true, false] {
        let mut c = isolated(dir.path());
        if json {
            c.arg("--json");
        }
        let o = c
            .args(["--verbose", "build"])
            .arg(&file)
            .args(["-A", "all", "--no-out-link", "--local-jobs", "0", "--builders", &line])
            .output()
            .expect("run");
        let t = text(&o);
        assert_eq!(o.status.code(), Some(4), "{t}");
        assert!(t.contains(&other.display().to_string()) && t.contains("SHA256:"), "names the key file: {t}");
        scan_for_secrets(&forms, "the output of a refused login", t.as_bytes());
    }
}
