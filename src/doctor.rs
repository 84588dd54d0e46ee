//! `rvbuild doctor`: checks of this machine's setup (Nix, binfmt and qemu-user, cross
//! toolchains, QEMU, kernel source, firmware packages, serial port access, SSH key and agent),
//! each with its status and, when something is wrong, the fix.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub area: &'static str,
    pub name: String,
    pub status: Status,
    pub detail: String,
    /// What to do when the status is not ok.
    pub fix: Option<String>,
}

fn check(
    area: &'static str,
    name: impl Into<String>,
    status: Status,
    detail: impl Into<String>,
    fix: Option<&str>,
) -> Check {
    Check { area, name: name.into(), status, detail: detail.into(), fix: fix.map(str::to_string) }
}

fn first_line(cmd: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(cmd).args(args).output().ok()?;
    if !o.status.success() {
        return None;
    }
    let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
    String::from_utf8_lossy(&text).lines().next().map(|l| l.trim().to_string())
}

/// `key = value` settings of nix.conf (last one wins), as Nix reads them.
fn nix_conf(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split('#').next())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn setting(conf: &[(String, String)], key: &str) -> Option<String> {
    conf.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

const SETUP: &str = "run scripts/setup-host.sh from the rvbuild repository (as root)";

/// Runs every check. Nothing here changes the machine.
pub fn run_checks() -> Vec<Check> {
    let mut out = Vec::new();
    nix_checks(&mut out);
    binfmt_checks(&mut out);
    tool_checks(&mut out, &TOOLCHAINS);
    tool_checks(&mut out, &QEMU);
    tool_checks(&mut out, &IMAGE_TOOLS);
    out.push(kernel_source_check());
    out.push(firmware_check());
    serial_checks(&mut out);
    builder_checks(&mut out);
    ssh_checks(&mut out);
    out
}

/// Nix: the store tools, nix.conf's sandbox and substituters, multi- or single-user mode.
fn nix_checks(out: &mut Vec<Check>) {
    let conf = nix_conf(Path::new("/etc/nix/nix.conf"));
    out.push(nix_store_check());
    out.push(nix_sandbox_check(&conf));
    out.push(nix_mode_check());
    out.push(nix_substituters_check(&conf));
}

fn nix_store_check() -> Check {
    match first_line("nix-store", &["--version"]) {
        Some(v) => check("nix", "nix-store", Status::Ok, v, None),
        None => check(
            "nix",
            "nix-store",
            Status::Fail,
            "not found on PATH",
            Some("install Nix (Debian: apt-get install nix-bin)"),
        ),
    }
}

fn nix_sandbox_check(conf: &[(String, String)]) -> Check {
    match setting(conf, "sandbox").as_deref() {
        Some("false") => {
            check("nix", "sandbox", Status::Ok, "sandbox = false (the host provider uses the host's toolchains)", None)
        }
        other => check(
            "nix",
            "sandbox",
            Status::Warn,
            format!("sandbox = {}", other.unwrap_or("(default: true)")),
            Some("the host provider needs `sandbox = false` in /etc/nix/nix.conf; the nixpkgs provider does not"),
        ),
    }
}

/// Multi-user (daemon socket) or single-user with build users; neither cannot build.
fn nix_mode_check() -> Check {
    if Path::new("/nix/var/nix/daemon-socket/socket").exists() {
        return check("nix", "mode", Status::Ok, "multi-user (nix-daemon socket present)", None);
    }
    let users = Command::new("getent").args(["group", "nixbld"]).output().map(|o| o.status.success()).unwrap_or(false);
    if users {
        check("nix", "mode", Status::Ok, "single-user with build users (group nixbld)", None)
    } else {
        check("nix", "mode", Status::Fail, "no nix-daemon and no nixbld group", Some(SETUP))
    }
}

fn nix_substituters_check(conf: &[(String, String)]) -> Check {
    match setting(conf, "substituters") {
        Some(s) if s.is_empty() => {
            check("nix", "substituters", Status::Ok, "none (offline builds do not wait on DNS)", None)
        }
        Some(s) => check("nix", "substituters", Status::Ok, s, None),
        None => check(
            "nix",
            "substituters",
            Status::Warn,
            "default (cache.nixos.org)",
            Some("offline, every build waits seconds on DNS: set `substituters =` in /etc/nix/nix.conf"),
        ),
    }
}

/// binfmt_misc registrations of qemu-user for the target arches, and their interpreters.
fn binfmt_checks(out: &mut Vec<Check>) {
    let binfmt = Path::new("/proc/sys/fs/binfmt_misc");
    for arch in ["riscv64", "aarch64"] {
        let entry = binfmt.join(format!("qemu-{arch}"));
        out.push(match std::fs::read_to_string(&entry) {
            Ok(t) if t.starts_with("enabled") => {
                let interp = t.lines().find_map(|l| l.strip_prefix("interpreter ")).unwrap_or("?").to_string();
                let exists = Path::new(&interp).exists();
                check(
                    "binfmt",
                    format!("qemu-{arch}"),
                    if exists { Status::Ok } else { Status::Fail },
                    format!("enabled, interpreter {interp}"),
                    if exists { None } else { Some("install qemu-user-static") },
                )
            }
            Ok(_) => check(
                "binfmt",
                format!("qemu-{arch}"),
                Status::Warn,
                "registered but disabled",
                Some("update-binfmts --enable"),
            ),
            Err(_) => check(
                "binfmt",
                format!("qemu-{arch}"),
                Status::Warn,
                "not registered: this machine cannot run emulated target-system builds",
                Some("apt-get install qemu-user-static binfmt-support; update-binfmts --enable"),
            ),
        });
    }
}

/// Cross compilers, with the Debian package that brings each.
const TOOLCHAINS: [(&str, &str); 2] =
    [("riscv64-linux-gnu-gcc", "gcc-riscv64-linux-gnu"), ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu")];

/// System emulators for `rvbuild qemu`.
const QEMU: [(&str, &str); 2] = [
    ("qemu-system-riscv64", "qemu-system-misc (bookworm-backports)"),
    ("qemu-system-aarch64", "qemu-system-arm (bookworm-backports)"),
];

/// What assembles disk images: filesystems, partition tables, FAT files.
const IMAGE_TOOLS: [(&str, &str); 3] = [("mkfs.ext4", "e2fsprogs"), ("sfdisk", "fdisk"), ("mcopy", "mtools")];

/// Each tool on PATH (its version line, or its path when it has no `--version`).
fn tool_checks(out: &mut Vec<Check>, tools: &[(&str, &str)]) {
    for &(tool, pkg) in tools {
        out.push(match first_line(tool, &["--version"]).or_else(|| which(tool).map(|p| p.display().to_string())) {
            Some(v) => check("tools", tool, Status::Ok, v, None),
            None => check("tools", tool, Status::Fail, "not found", Some(&format!("apt-get install {pkg}"))),
        });
    }
}

/// The kernel source tarball the host provider builds from.
fn kernel_source_check() -> Check {
    let src = Path::new("/usr/src/linux-source-6.12.tar.xz");
    if src.is_file() {
        check("tools", "kernel source", Status::Ok, src.display().to_string(), None)
    } else {
        check(
            "tools",
            "kernel source",
            Status::Fail,
            "linux-source-6.12 not installed",
            Some("apt-get install linux-source-6.12"),
        )
    }
}

/// Foreign firmware packages unpacked by the setup script (listed in `.rvbuild-packages`).
fn firmware_check() -> Check {
    let roots = crate::profile::host_facts::firmware_roots();
    let listed: Vec<String> = roots
        .iter()
        .filter_map(|r| std::fs::read_to_string(r.join(".rvbuild-packages")).ok())
        .flat_map(|t| t.lines().filter_map(|l| l.split_whitespace().nth(1).map(str::to_string)).collect::<Vec<_>>())
        .collect();
    if listed.is_empty() {
        check("firmware", "foreign packages", Status::Warn, "none unpacked (VisionFive 2 / Pi 4 firmware)", Some(SETUP))
    } else {
        check("firmware", "foreign packages", Status::Ok, listed.join(", "), None)
    }
}

/// USB serial adapters (`/dev/ttyUSB*`, `/dev/ttyACM*`) and whether this user may open them.
fn serial_checks(out: &mut Vec<Check>) {
    let ports = serial_ports();
    if ports.is_empty() {
        out.push(check("serial", "ports", Status::Ok, "no USB serial adapter connected", None));
    }
    for p in ports {
        let ok = std::fs::OpenOptions::new().read(true).write(true).open(&p).is_ok();
        out.push(check(
            "serial",
            p.display().to_string(),
            if ok { Status::Ok } else { Status::Fail },
            if ok { "read/write access" } else { "no read/write access" },
            if ok {
                None
            } else {
                Some("add yourself to the dialout group: sudo usermod -aG dialout $USER, then log in again")
            },
        ));
    }
}

fn serial_ports() -> Vec<PathBuf> {
    std::fs::read_dir("/dev")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("ttyUSB") || n.starts_with("ttyACM"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An SSH key in ~/.ssh (remote builders need one) and the agent.
fn ssh_checks(out: &mut Vec<Check>) {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let keys: Vec<String> = ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|k| home.join(".ssh").join(k))
        .filter(|p| p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    out.push(if keys.is_empty() {
        check("ssh", "key", Status::Warn, "no key in ~/.ssh", Some("remote builders need one: ssh-keygen -t ed25519"))
    } else {
        check("ssh", "key", Status::Ok, keys.join(", "), None)
    });
    out.push(match std::env::var_os("SSH_AUTH_SOCK") {
        Some(s) if Path::new(&s).exists() => check("ssh", "agent", Status::Ok, "SSH_AUTH_SOCK is set", None),
        _ => check("ssh", "agent", Status::Ok, "no agent (keys are read from files)", None),
    });
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(tool)).find(|p| p.is_file()))
}

/// The configured remote builders (Nix's machines, nix.conf `builders`): host key known, and
/// the SSH port reachable (a TCP connect with a short timeout; nothing is sent).
fn builder_checks(out: &mut Vec<Check>) {
    use crate::builders::inventory::{HostKeyStatus, PoolOptions, Sources, load_pool};
    let pool = match load_pool(None, &PoolOptions::default(), &Sources::from_env()) {
        Ok(p) => p,
        Err(e) => {
            out.push(check("builders", "pool", Status::Fail, e.to_string(), Some("fix the machines file named above")));
            return;
        }
    };
    let remote: Vec<_> = pool.iter().filter(|b| b.port != 0).collect();
    if remote.is_empty() {
        out.push(check("builders", "pool", Status::Ok, "no remote builders configured (local builds only)", None));
    }
    for b in remote {
        let name = format!("{} ({}:{})", b.name, b.host, b.port);
        match &b.host_key {
            HostKeyStatus::Unknown => out.push(check(
                "builders",
                format!("{name} host key"),
                Status::Warn,
                "not in known_hosts nor in the machines line: connections will be refused",
                Some(&format!(
                    "check the key out of band, then add it: ssh-keyscan -p {} {} >> ~/.ssh/known_hosts",
                    b.port, b.host
                )),
            )),
            HostKeyStatus::Revoked { at } => out.push(check(
                "builders",
                format!("{name} host key"),
                Status::Fail,
                format!("the key is marked @revoked ({at})"),
                Some("remove the builder or replace its key"),
            )),
            other => out.push(check("builders", format!("{name} host key"), Status::Ok, other.summary(), None)),
        }
        out.push(reachable(&name, &b.host, b.port));
    }
}

fn reachable(name: &str, host: &str, port: u16) -> Check {
    use std::net::ToSocketAddrs;
    let timeout = std::time::Duration::from_secs(3);
    let addrs: Vec<_> = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return check(
                "builders",
                format!("{name} reachable"),
                Status::Fail,
                format!("cannot resolve {host}: {e}"),
                Some("fix the host name (machines file or ssh_config HostName)"),
            );
        }
    };
    let mut last = String::from("no address");
    for a in addrs {
        match std::net::TcpStream::connect_timeout(&a, timeout) {
            Ok(_) => {
                return check(
                    "builders",
                    format!("{name} reachable"),
                    Status::Ok,
                    format!("port {port} answers at {a}"),
                    None,
                );
            }
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    check(
        "builders",
        format!("{name} reachable"),
        Status::Fail,
        format!("unreachable ({last})"),
        Some(&format!(
            "check that the machine is up and sshd listens on port {port}, or take it out of the pool (--exclude / the machines file)"
        )),
    )
}
