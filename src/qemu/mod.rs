//! QEMU boot smoke test: launches a board's built image in qemu-system, reads the serial console,
//! and succeeds when init prints the board's marker after every out-of-tree module loaded. A hard
//! timeout ends a guest that hangs (a U-Boot with nothing to boot waits forever).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::profile::board::{Board, Qemu, QemuBoot};
use crate::vocab::Manifest;
use crate::vocab::{Event, Reporter};
use crate::{Error, ErrorKind, Result};

/// Why a QEMU boot test could not run or did not pass.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum QemuError {
    #[error("board {board} has no qemu section")]
    #[diagnostic(
        code(rvbuild::qemu::no_qemu_section),
        help("only boards with a `qemu:` section can be booted in QEMU")
    )]
    NoQemuSection { board: String },

    #[error("cannot start {exe}: {source}")]
    #[diagnostic(
        code(rvbuild::qemu::cannot_start),
        help(
            "install qemu-system-misc (riscv64) / qemu-system-arm (aarch64) from bookworm-backports (scripts/setup-host.sh)"
        )
    )]
    CannotStart { exe: String, source: std::io::Error },

    #[error("{}: {source}", path.display())]
    #[diagnostic(code(rvbuild::qemu::log))]
    Log { path: PathBuf, source: std::io::Error },

    #[error("boot test of {board} failed: {detail}\nlast console lines:\n{tail}")]
    #[diagnostic(code(rvbuild::qemu::boot_failed), help("full console log: {}", log.display()))]
    BootFailed { board: String, detail: String, tail: String, log: PathBuf },
}

impl From<QemuError> for Error {
    fn from(e: QemuError) -> Error {
        let kind = match &e {
            QemuError::NoQemuSection { .. } | QemuError::Log { .. } => ErrorKind::Config,
            QemuError::CannotStart { .. } => ErrorKind::Prerequisite,
            QemuError::BootFailed { .. } => ErrorKind::Boot,
        };
        Error::new(kind, e)
    }
}

/// The outcome of a successful boot.
#[derive(Debug, Clone)]
pub struct BootOutcome {
    pub seconds: f64,
    pub log: PathBuf,
    pub modules_loaded: Vec<String>,
}

/// The qemu-system command line for a board's build.
pub(crate) fn command(board: &Board, q: &Qemu, m: &Manifest) -> Result<Command> {
    let exe = format!("qemu-system-{}", q.system);
    let mut cmd = Command::new(&exe);
    cmd.args(["-M", &q.machine]);
    if let Some(cpu) = &q.cpu {
        cmd.args(["-cpu", cpu]);
    }
    cmd.args(["-m", &q.memory, "-smp", &q.smp.to_string()]);
    cmd.args(["-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"]);
    match q.boot {
        QemuBoot::Direct => {
            if let Some(sbi) = &board.firmware.opensbi {
                cmd.arg("-bios").arg(m.artifact(&sbi.file.name.value)?);
            }
            // The uncompressed Image: QEMU's riscv loader does not take Image.gz.
            cmd.arg("-kernel").arg(m.artifact("kernel/Image")?);
            cmd.arg("-initrd").arg(m.artifact("initramfs.cpio.gz")?);
            cmd.arg("-append").arg(&board.kernel.cmdline);
        }
        QemuBoot::Firmware => {
            if let Some(b) = &q.bios {
                cmd.arg("-bios").arg(m.artifact(&b.value)?);
            }
            if let Some(k) = &q.kernel {
                cmd.arg("-kernel").arg(m.artifact(&k.value)?);
            }
            let disk = m.artifact("disk.img")?;
            // snapshot=on: the image in the store is read-only and must stay unchanged.
            cmd.arg("-drive").arg(format!("file={},format=raw,if=none,id=hd0,snapshot=on", disk.display()));
            cmd.args(["-device", "virtio-blk-device,drive=hd0"]);
        }
    }
    cmd.args(&q.extra_args);
    Ok(cmd)
}

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Boots and waits for the marker. `log_dir` receives `boot.log`.
pub(crate) fn boot(
    board: &Board,
    m: &Manifest,
    log_dir: &Path,
    timeout: Option<Duration>,
    reporter: &dyn Reporter,
) -> Result<BootOutcome> {
    let q = board.qemu.as_ref().ok_or_else(|| QemuError::NoQemuSection { board: m.board.clone() })?;
    let timeout = timeout.unwrap_or(Duration::from_secs(q.timeout));
    let mut cmd = command(board, q, m)?;
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let exe = format!("qemu-system-{}", q.system);
    reporter.event(&Event::Stage {
        name: "boot".into(),
        detail: format!("{exe} ({} boot), timeout {} s", q.boot, timeout.as_secs()),
    });
    let start = Instant::now();
    let mut child = Guard(cmd.spawn().map_err(|source| QemuError::CannotStart { exe: exe.clone(), source })?);
    let registered = crate::vocab::cancel::register(&child.0);
    fs::create_dir_all(log_dir).map_err(|source| QemuError::Log { path: log_dir.to_path_buf(), source })?;
    let log_path = log_dir.join("boot.log");
    let mut log = fs::File::create(&log_path).map_err(|source| QemuError::Log { path: log_path.clone(), source })?;

    let (rx, streams) = console_lines(&mut child.0);
    let left = || timeout.saturating_sub(start.elapsed());
    let console = watch_console(&rx, streams, left, &mut log, &mut child.0, &m.marker, reporter);
    let seconds = start.elapsed().as_secs_f64();
    drop(registered);
    drop(child);
    let wanted: Vec<String> =
        board.drivers.out_of_tree.iter().filter(|d| d.load).map(|d| format!("{}.ko", d.name.value)).collect();
    let missing: Vec<&String> = wanted.iter().filter(|w| !console.loaded.contains(w)).collect();
    let ok = console.marker_seen && missing.is_empty();
    let detail = if ok {
        format!("marker `{}` seen, modules loaded: {}", m.marker, console.loaded.join(", "))
    } else {
        failure_detail(&console, &missing, start, timeout)
    };
    reporter.event(&Event::Boot { board: m.board.clone(), ok, seconds, detail: detail.clone() });
    if ok {
        return Ok(BootOutcome { seconds, log: log_path, modules_loaded: console.loaded });
    }
    let lines = &console.lines;
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    Err(QemuError::BootFailed { board: m.board.clone(), detail, tail, log: log_path }.into())
}

/// The guest's stdout and stderr as lines on one channel (`None` when a stream ends), and how
/// many streams there are.
fn console_lines(child: &mut Child) -> (mpsc::Receiver<Option<String>>, usize) {
    let (tx, rx) = mpsc::channel::<Option<String>>();
    let mut streams = 0;
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || send_lines(stream, &tx));
        streams += 1;
    }
    (rx, streams)
}

/// Sends each line of `stream` (without its `\r\n`), then `None` at its end.
fn send_lines(mut stream: Box<dyn Read + Send>, tx: &mpsc::Sender<Option<String>>) {
    let mut buf = [0u8; 4096];
    let mut line = Vec::new();
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                for &b in &buf[..n] {
                    if b == b'\n' {
                        let _ = tx.send(Some(String::from_utf8_lossy(&line).trim_end_matches('\r').to_string()));
                        line.clear();
                    } else {
                        line.push(b);
                    }
                }
            }
        }
    }
    if !line.is_empty() {
        let _ = tx.send(Some(String::from_utf8_lossy(&line).to_string()));
    }
    let _ = tx.send(None);
}

/// What the guest's console showed.
#[derive(Default)]
struct Console {
    lines: Vec<String>,
    /// The modules init reported loaded (file names).
    loaded: Vec<String>,
    marker_seen: bool,
    /// The first line that says the boot failed (a kernel panic, say).
    failure: Option<String>,
}

/// Reads console lines into `log` and `Log` events until the streams end or no time is `left`;
/// once the marker is seen, gives the guest a moment to power off, then stops it.
fn watch_console(
    rx: &mpsc::Receiver<Option<String>>,
    mut open_streams: usize,
    left: impl Fn() -> Duration,
    log: &mut fs::File,
    child: &mut Child,
    marker: &str,
    reporter: &dyn Reporter,
) -> Console {
    let mut c = Console::default();
    while open_streams > 0 {
        let left = left();
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(left) {
            Ok(Some(l)) => {
                let _ = writeln!(log, "{l}");
                reporter.event(&Event::Log { source: "console".into(), line: l.clone() });
                if let Some(rest) = l.strip_prefix("rvbuild-init: loaded ") {
                    c.loaded.push(rest.rsplit('/').next().unwrap_or(rest).to_string());
                }
                if l.trim() == marker {
                    c.marker_seen = true;
                }
                if l.contains("Kernel panic") || l.contains("failed to load, no marker") {
                    c.failure.get_or_insert_with(|| l.clone());
                }
                c.lines.push(l);
                if c.marker_seen {
                    // The guest powers off after the marker; give it a moment, then stop it.
                    let _ = child.wait_timeout_or_kill(Duration::from_secs(10));
                }
            }
            Ok(None) => open_streams -= 1,
            Err(_) => break,
        }
    }
    c
}

/// Why a boot failed: the failure line, the timeout, a guest that stopped early, or the
/// modules that did not load.
fn failure_detail(c: &Console, missing: &[&String], start: Instant, timeout: Duration) -> String {
    if let Some(f) = &c.failure {
        f.clone()
    } else if !c.marker_seen && start.elapsed() >= timeout {
        format!("no marker within {} s", timeout.as_secs())
    } else if !c.marker_seen {
        "the guest stopped without printing the marker".to_string()
    } else {
        format!("modules not loaded: {}", missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
    }
}

trait WaitTimeout {
    fn wait_timeout_or_kill(&mut self, t: Duration) -> std::io::Result<()>;
}

impl WaitTimeout for Child {
    fn wait_timeout_or_kill(&mut self, t: Duration) -> std::io::Result<()> {
        let start = Instant::now();
        while start.elapsed() < t {
            if self.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miette::Diagnostic;

    #[test]
    fn boot_failure_keeps_its_text_help_and_class() {
        let e: Error = QemuError::BootFailed {
            board: "qemu-riscv64".into(),
            detail: "no marker within 5 s".into(),
            tail: "OpenSBI".into(),
            log: PathBuf::from("/tmp/boot.log"),
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Boot);
        assert_eq!(
            e.to_string(),
            "boot test of qemu-riscv64 failed: no marker within 5 s\nlast console lines:\nOpenSBI"
        );
        assert_eq!(e.help().map(|h| h.to_string()).as_deref(), Some("full console log: /tmp/boot.log"));
        assert_eq!(e.code().map(|c| c.to_string()).as_deref(), Some("rvbuild::qemu::boot_failed"));
    }
}
