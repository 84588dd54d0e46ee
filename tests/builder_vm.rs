//! Real RISC-V and ARM64 builders: Debian with Nix and sshd in full-system QEMU
//! (scripts/builder-vm.sh), used by rvbuild like a board on the desk. One test per
//! architecture boots its VM once and goes through, in order: `rvbuild builders probe` (the
//! VM's own system, Nix version, cores and natively measured speed), `rvbuild plan` with the VM
//! in the pool (native against emulated and cross, with the VM's measured speed), a board whose
//! `init` builds on the VM (`--strategy userland=native`) while the kernel stays the local
//! cross build, that board booted in QEMU to its marker, and last the VM powered off (QEMU
//! killed) while a derivation builds there: the build completes on another builder.
//!
//! Both tests are in the `qemu` group (.config/nextest.toml: one at a time, no other guest
//! beside them), with a longer timeout: each VM takes both cores under TCG, and the first run on
//! a machine also makes the VM's root image.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::hosts::{self, HostSpec};
use support::{built, repo_root, rvbuild, text};

/// A running builder VM; `down` on drop.
struct Vm {
    arch: &'static str,
    port: u16,
    /// The machines line `builder-vm.sh up` printed.
    line: String,
    key: PathBuf,
    known_hosts: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Vm {
    fn up(arch: &'static str) -> Vm {
        let port = free_port();
        let start = Instant::now();
        let o = Command::new("bash")
            .arg(repo_root().join("scripts/builder-vm.sh"))
            .args(["up", arch, "--port", &port.to_string(), "--cpus", "2", "--mem", "2048"])
            .output()
            .expect("run scripts/builder-vm.sh");
        assert!(o.status.success(), "builder-vm.sh up {arch} failed:\n{}", text(&o));
        eprintln!("{arch} VM up in {:.0} s (image made first if it was missing)", start.elapsed().as_secs_f64());
        let line = String::from_utf8_lossy(&o.stdout).lines().last().unwrap_or_default().to_string();
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols.len(), 8, "a machines line: {line}");
        assert_eq!(cols[0], format!("ssh://root@127.0.0.1:{port}"), "{line}");
        let key = PathBuf::from(cols[2]);
        let known_hosts = key.parent().expect("key dir").join("known_hosts");
        Vm { arch, port, line, key, known_hosts }
    }

    fn name(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs `cmd` on the VM as root, with strict host-key checking against its real key.
    fn ssh(&self, cmd: &str) -> Output {
        Command::new("ssh")
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=20"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .arg("-i")
            .arg(&self.key)
            .args(["-p", &self.port.to_string(), "root@127.0.0.1", cmd])
            .output()
            .expect("run ssh")
    }

    fn store_has(&self, path: &str) -> bool {
        self.ssh(&format!("nix-store --check-validity {path}")).status.success()
    }

    /// The QEMU process of this VM.
    fn qemu_pid(&self) -> u32 {
        let pid_file = self.key.parent().expect("run dir").join("pid");
        fs::read_to_string(&pid_file).ok().and_then(|s| s.trim().parse().ok()).expect("the VM's pid file")
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(repo_root().join("scripts/builder-vm.sh")).args(["down", self.arch]).output();
    }
}

/// rvbuild with a private HOME (its own probe cache) and an empty nix.conf: the pool is the
/// `--builders` given plus the local machine running x86_64-linux only.
fn isolated(home: &Path) -> Command {
    with_nix_conf(home, "")
}

/// Like `isolated`, with this nix.conf text for the local machine.
fn with_nix_conf(home: &Path, nix_conf: &str) -> Command {
    let conf = home.join("nixconf");
    fs::create_dir_all(&conf).expect("mkdir");
    fs::write(conf.join("nix.conf"), nix_conf).expect("nix.conf");
    let mut c = rvbuild();
    c.env("HOME", home).env("RVBUILD_NIX_CONF_DIR", &conf).env("CI", "true").env_remove("SSH_AUTH_SOCK");
    c.env_remove("XDG_CACHE_HOME").current_dir(home);
    c
}

fn timed(what: &str, c: &mut Command) -> Output {
    let start = Instant::now();
    let o = c.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
    eprintln!("{what}: {:.1} s", start.elapsed().as_secs_f64());
    o
}

/// Step 1: the probe reports the VM's real system, its Nix, its cores and a native speed.
fn probe(vm: &Vm, home: &Path, system: &str, nix_minor: &str) -> Value {
    let o = timed(
        "builders probe",
        isolated(home).args(["--json", "builders", "probe", "--local-jobs", "0", "--builders", &vm.line]),
    );
    assert!(o.status.success(), "{}", text(&o));
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    let row = rows.as_array().and_then(|r| r.first()).cloned().unwrap_or_default();
    assert_eq!(row["ok"], true, "{row}");
    let r = &row["result"];
    assert_eq!(r["system"], system, "the VM's own Nix says its system: {r}");
    let version = r["nix_version"].as_str().unwrap_or_default();
    assert!(version.starts_with(nix_minor), "Nix {nix_minor} in the VM, got {version}: {r}");
    assert_eq!(r["cores"], 2, "the VM has the 2 CPUs it was given: {r}");
    let speed = r["speed"].as_f64().unwrap_or(0.0);
    assert!(speed > 0.0, "a speed measured by the benchmark run natively on the VM: {r}");
    // Emulated by TCG: far slower than this machine, which the benchmark calls 1.
    assert!(speed < 1.0, "a TCG guest is slower than the build machine: {r}");
    assert!(r["emulated"].as_object().is_none_or(|m| m.is_empty()), "nothing emulated on a native builder: {r}");
    let local_id = rvbuild::builders::userland::find(if system.starts_with("riscv64") {
        rvbuild::profile::Arch::Riscv64
    } else {
        rvbuild::profile::Arch::Aarch64
    })
    .expect("local userland")
    .id;
    assert_eq!(r["userlands"][system], local_id.as_str(), "the VM adopted this machine's userland stamp: {r}");
    r.clone()
}

/// Step 2: the plan weighs native on the VM against emulated (qemu-user on the build machine)
/// and cross, with the VM's measured speed, and picks the cheapest.
fn plan(vm: &Vm, home: &Path, board: &str) {
    let o = timed(
        "plan",
        with_nix_conf(home, "extra-platforms = riscv64-linux aarch64-linux\n").args([
            "--json",
            "plan",
            board,
            "--builders",
            &vm.line,
        ]),
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    let init = v["components"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["component"] == "init"))
        .cloned()
        .unwrap_or_default();
    let reason = init["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&format!("native on {}: ", vm.name())), "native on the VM is weighed: {init}");
    assert!(reason.contains("cross on local: ") && reason.contains("emulated on local: "), "{init}");
    // `STRATEGY on HOST: N s` (N may have thousands separators).
    let seconds = |strategy: &str, host: &str| -> f64 {
        let label = format!("{strategy} on {host}: ");
        reason
            .find(&label)
            .and_then(|i| reason[i + label.len()..].split(' ').next())
            .and_then(|n| n.replace(',', "").parse().ok())
            .unwrap_or_else(|| panic!("no {strategy} option on {host}: {init}"))
    };
    let (native, cross, emulated) =
        (seconds("native", &vm.name()), seconds("cross", "local"), seconds("emulated", "local"));
    eprintln!("plan for init: native on the VM {native:.1} s, emulated {emulated:.1} s, cross {cross:.1} s");
    // Under TCG the VM is slower than a cross compile here, and the plan says so by its choice.
    assert!(native > cross, "native on the TCG guest ({native} s) is slower than cross ({cross} s): {init}");
    let cheapest = [("cross", cross), ("native", native), ("emulated", emulated)]
        .into_iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(s, _)| s)
        .unwrap_or_default();
    assert_eq!(init["strategy"], cheapest, "the cheapest option is chosen: {init}");
}

/// Step 3 and 4: a board of its own (new marker, so a new init nobody built) with its userland
/// native on the VM (the only native host: the local machine, one slot, runs x86_64 only
/// here), the kernel the shared local cross build. Then booted in QEMU.
fn board_native(vm: &Vm, home: &Path, board: &str) {
    built(board);
    let marker = format!("RVBUILD-VM-{}", hosts::nonce().replace('-', ""));
    let name = format!("{board}-vm");
    let text_b = support::board_text(board).replace(&format!("name: {board}"), &format!("name: {name}"));
    fs::create_dir_all(home.join("boards")).expect("mkdir");
    fs::write(home.join(format!("boards/{name}.yaml")), format!("{text_b}\nmarker: {marker}\n")).expect("board");
    let out = home.join("out");
    let out_s = out.to_string_lossy().into_owned();
    let o = timed(
        "board with native init",
        isolated(home).args(["--json", "board", &name, "--profile", "ci", "--strategy", "userland=native"]).args([
            "--out",
            &out_s,
            "--local-jobs",
            "1",
            "--builders",
            &vm.line,
        ]),
    );
    assert!(o.status.success(), "{}", text(&o));
    let manifest: Value =
        serde_json::from_str(&fs::read_to_string(out.join("manifest.json")).expect("manifest")).expect("json");
    let init = &manifest["components"]["init"];
    assert_eq!(init["host"], vm.name().as_str(), "init was built on the VM: {init}");
    assert_eq!(init["strategy"], "native", "{init}");
    assert_eq!(init["cached"], false, "{init}");
    let init_out = init["outputs"][0].as_str().expect("init output");
    assert!(vm.store_has(init_out), "the VM's own store has {init_out}");
    assert_eq!(manifest["components"]["kernel"]["cached"], true, "the kernel is not rebuilt: {manifest}");
    assert_eq!(manifest["components"]["kernel"]["strategy"], "cross", "the kernel stays cross: {manifest}");
    let o = timed("qemu boot", rvbuild().args(["qemu", &name, "--no-build", "--out", &out_s]).current_dir(home));
    assert!(o.status.success(), "boot failed:\n{}", text(&o));
    let log = fs::read_to_string(out.join("logs/boot.log")).expect("boot log");
    assert!(log.lines().any(|l| l.trim() == marker), "marker {marker} missing:\n{log}");
}

/// Step 5: QEMU killed while a derivation builds on the VM; an emulating loopback builder
/// takes it over and the build ends with exit 0.
fn power_off_mid_build(vm: &Vm, home: &Path, system: &str) {
    let fleet = hosts::start(&[HostSpec {
        extra_platforms: &["riscv64-linux", "aarch64-linux"],
        ..HostSpec::new("emu", "x86_64-linux")
    }]);
    let emu = fleet.host("emu");
    let start = Instant::now();
    let nonce = hosts::nonce();
    let file = home.join("poweroff.nix");
    fs::write(
        &file,
        format!(
            "derivation {{ name = \"vm-poweroff\"; system = \"{system}\"; builder = \"/bin/sh\"; \
             args = [ \"-c\" \"sleep 20.5; echo {nonce} > $out\" ]; PATH = \"/usr/bin:/bin\"; }}\n"
        ),
    )
    .expect("nix file");
    // The VM first, the emulating host as the fallback. The VM's speed measured in step 1
    // (cached) outranks its line's speed column, and under load a TCG VM measures slow enough
    // that emulation on the host looked faster; so the fallback is declared very slow too (it
    // has no probe: its column counts).
    let mut cols: Vec<String> = vm.line.split_whitespace().map(str::to_string).collect();
    cols[4] = "50".into();
    let mut emu_cols: Vec<String> = emu.machines_line(&fleet).split_whitespace().map(str::to_string).collect();
    emu_cols[4] = "0.01".into();
    let machines = home.join("machines");
    fs::write(&machines, format!("{}\n{}\n", cols.join(" "), emu_cols.join(" "))).expect("machines");
    let mut child = isolated(home)
        .args(["--json", "build"])
        .arg(&file)
        .args(["--no-out-link", "--local-jobs", "0"])
        .arg(format!("--builders=@{}", machines.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rvbuild build");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    // The build runs on the VM: its `sleep 20.5` is there. Then the power goes.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let ps = vm.ssh("ps -eo args");
        if String::from_utf8_lossy(&ps.stdout).contains("sleep 20.5") {
            break;
        }
        if let Some(s) = child.try_wait().expect("wait") {
            let events: Vec<Value> = rx.try_iter().collect();
            panic!("rvbuild ended ({s}) before the derivation started on the VM: {events:?}");
        }
        assert!(
            Instant::now() < deadline,
            "the derivation never started on the VM: {:?}",
            rx.try_iter().collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let pid = vm.qemu_pid();
    let killed = Command::new("kill").args(["-9", &pid.to_string()]).status().expect("kill");
    assert!(killed.success(), "QEMU {pid} killed");
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "rvbuild did not end within 5 minutes of the power-off");
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    let events: Vec<Value> = rx.try_iter().collect();
    assert_eq!(status.code(), Some(0), "the build survives the VM's power-off: {err}\n{events:?}");
    let finishes: Vec<(String, bool)> = events
        .iter()
        .filter(|e| e["event"] == "finished")
        .map(|e| (e["host"].as_str().unwrap_or_default().to_string(), e["ok"].as_bool().unwrap_or(false)))
        .collect();
    assert_eq!(finishes.first(), Some(&(vm.name(), false)), "the first run died with the VM: {finishes:?}");
    let emu_name = format!("{}:{}", emu.addr, emu.port);
    assert_eq!(finishes.last(), Some(&(emu_name, true)), "rebuilt on the emulating host: {finishes:?}");
    eprintln!("power-off mid-build, rebuilt elsewhere: {:.1} s", start.elapsed().as_secs_f64());
}

fn whole(arch: &'static str, system: &str, nix_minor: &str, board: &str) {
    let home = tempfile::tempdir().expect("tempdir");
    let vm = Vm::up(arch);
    probe(&vm, home.path(), system, nix_minor);
    plan(&vm, home.path(), board);
    board_native(&vm, home.path(), board);
    power_off_mid_build(&vm, home.path(), system);
}

#[test]
fn qemu_vm_riscv64_probe_plan_native_init_boot_and_power_off() {
    whole("riscv64", "riscv64-linux", "2.26", "qemu-riscv64");
}

#[test]
fn qemu_vm_aarch64_probe_plan_native_init_boot_and_power_off() {
    whole("aarch64", "aarch64-linux", "2.8", "qemu-aarch64");
}
