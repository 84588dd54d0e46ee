//! `rvbuild monitor` on real ptys: every byte of a fast line arrives unchanged on stdout and in
//! the log, the marker ends a CI run, a timeout shows the console's tail, piped and typed input
//! reach the port, Ctrl-] leaves and restores the terminal, a vanished port keeps the log, and a
//! busy or missing port is refused.

mod support;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};
use support::pty;

fn monitor(args: &[&str]) -> Command {
    let mut c = support::rvbuild();
    c.arg("monitor").args(args);
    c
}

/// A running monitor with its stderr collected line by line.
struct Running {
    child: Child,
    stderr: mpsc::Receiver<String>,
    seen: String,
}

impl Running {
    fn start(mut cmd: Command, stdin: Stdio) -> Running {
        let mut child = cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start rvbuild");
        let err = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = std::io::BufReader::new(err);
            let mut line = String::new();
            while std::io::BufRead::read_line(&mut r, &mut line).unwrap_or(0) > 0 {
                let _ = tx.send(std::mem::take(&mut line));
            }
        });
        Running { child, stderr: rx, seen: String::new() }
    }

    /// Waits until stderr has said `what`.
    fn wait_for(&mut self, what: &str, limit: Duration) {
        let end = Instant::now() + limit;
        while !self.seen.contains(what) {
            let left = end.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(l) => self.seen.push_str(&l),
                Err(_) => panic!("rvbuild monitor never said {what:?}; stderr so far:\n{}", self.seen),
            }
        }
    }

    /// Waits for the exit; returns the code and all of stderr.
    fn finish(mut self, limit: Duration) -> (Option<i32>, String) {
        let end = Instant::now() + limit;
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                break st;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("rvbuild monitor did not end; stderr:\n{}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_millis(500)) {
            self.seen.push_str(&l);
        }
        (status.code(), self.seen)
    }
}

/// A pty pair whose master is not inherited by rvbuild: closing it in the test must be the
/// only close (as a USB adapter that is pulled).
fn pair() -> (TTYPort, String) {
    use std::os::fd::AsRawFd;
    let (master, slave) = pty::pair();
    // SAFETY: sets a descriptor flag on an fd the test owns.
    assert_eq!(unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) }, 0);
    (master, slave)
}

fn write_all(master: &mut TTYPort, data: &[u8]) {
    master.set_timeout(Duration::from_secs(20)).expect("timeout");
    master.write_all(data).expect("write to the pty");
    master.flush().expect("flush");
}

/// Reads from `master` until `want` was seen or `limit` passed; returns what arrived.
fn read_until(master: &mut TTYPort, want: &[u8], limit: Duration) -> Vec<u8> {
    master.set_timeout(Duration::from_millis(100)).expect("timeout");
    let end = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end && !got.windows(want.len()).any(|w| w == want) {
        if let Ok(n) = master.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    got
}

#[test]
fn serial_monitor_passes_every_byte_of_a_fast_line_to_stdout_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("console.log");
    let (mut master, slave) = pair();
    let marker = "RVBUILD-MONITOR-END-7c1e5a";
    let mut cmd = monitor(&["--port", &slave, "--until", marker, "--timeout", "120"]);
    cmd.arg("--log").arg(&log);
    let mut run = Running::start(cmd, Stdio::null());
    run.wait_for("connected to", Duration::from_secs(20));
    let mut out = run.child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        out.read_to_end(&mut all).expect("read stdout");
        all
    });
    // 8 MiB with every byte value (NUL, XON/XOFF, Ctrl-C, escapes), as fast as the pty takes it.
    let mut data = pty::data(8 << 20, 42);
    data.extend_from_slice(marker.as_bytes());
    let started = Instant::now();
    write_all(&mut master, &data);
    let (code, err) = run.finish(Duration::from_secs(120));
    let secs = started.elapsed().as_secs_f64();
    let stdout = reader.join().expect("reader");
    eprintln!("{} bytes in {secs:.2} s ({:.1} MB/s)", data.len(), data.len() as f64 / secs / 1e6);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(stdout.len(), data.len(), "stdout lost or added bytes");
    assert!(stdout == data, "stdout differs from what the line carried");
    let logged = std::fs::read(&log).unwrap();
    assert_eq!(logged.len(), data.len(), "the log lost or added bytes");
    assert!(logged == data, "the log differs from what the line carried");
    assert!(err.contains(&format!("`{marker}` seen")), "{err}");
}

#[test]
fn serial_monitor_until_times_out_with_the_console_tail_and_forwards_piped_input() {
    let (mut master, slave) = pair();
    let cmd = monitor(&["--port", &slave, "--until", "NEVER-PRINTED", "--timeout", "3"]);
    let mut run = Running::start(cmd, Stdio::piped());
    run.wait_for("connected to", Duration::from_secs(20));
    // Piped input goes to the port byte for byte.
    let mut stdin = run.child.stdin.take().expect("stdin");
    stdin.write_all(b"boot\n").unwrap();
    stdin.flush().unwrap();
    let got = read_until(&mut master, b"boot\n", Duration::from_secs(10));
    assert!(got.ends_with(b"boot\n"), "the port got {got:?}");
    write_all(&mut master, b"U-Boot 2023.01\r\nMissing disk\r\n");
    let (code, err) = run.finish(Duration::from_secs(30));
    drop(stdin);
    assert_eq!(code, Some(7), "{err}");
    assert!(err.contains("`NEVER-PRINTED` did not appear"), "{err}");
    assert!(err.contains("| Missing disk"), "the console's tail is missing: {err}");
}

/// Starts `rvbuild monitor --port SLAVE --log LOG` with nothing on stdin, writes `bytes` to the
/// line and waits until the log holds exactly them.
fn logging_monitor(master: &mut TTYPort, slave: &str, log: &std::path::Path, bytes: &[u8]) -> Running {
    let mut cmd = monitor(&["--port", slave]);
    cmd.arg("--log").arg(log);
    let mut run = Running::start(cmd, Stdio::null());
    run.wait_for("connected to", Duration::from_secs(20));
    write_all(master, bytes);
    let end = Instant::now() + Duration::from_secs(20);
    while std::fs::read(log).unwrap_or_default() != bytes {
        assert!(Instant::now() < end, "the log never got the bytes");
        std::thread::sleep(Duration::from_millis(20));
    }
    run
}

#[test]
fn serial_monitor_keeps_the_log_when_the_port_vanishes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("console.log");
    let (mut master, slave) = pair();
    let run = logging_monitor(&mut master, &slave, &log, b"Starting kernel ...\r\n");
    // The USB adapter is pulled: the pty's other side goes away.
    drop(master);
    let (code, err) = run.finish(Duration::from_secs(20));
    assert_eq!(code, Some(10), "{err}");
    assert!(err.contains("vanished after 21 bytes"), "{err}");
    assert!(err.contains("| Starting kernel ..."), "{err}");
    assert_eq!(std::fs::read(&log).unwrap(), b"Starting kernel ...\r\n");
}

#[test]
fn serial_monitor_refuses_a_busy_or_missing_port() {
    let (_master, slave) = pair();
    let mut first = Running::start(monitor(&["--port", &slave]), Stdio::null());
    first.wait_for("connected to", Duration::from_secs(20));
    let second = monitor(&["--port", &slave]).stdin(Stdio::null()).output().unwrap();
    let _ = first.child.kill();
    let _ = first.child.wait();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(6), "{err}");
    assert!(err.contains("is busy"), "{err}");

    let missing = monitor(&["--port", "/dev/rvbuild-no-such-port"]).stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(8), "{err}");
    assert!(err.contains("/dev/rvbuild-no-such-port does not exist"), "{err}");
}

/// The terminal settings the test's "terminal" starts with: a cooked line like a shell's.
fn cook(fd: i32) -> libc::termios {
    // SAFETY: plain termios calls on a pty fd the test owns.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd, &mut t), 0);
        t.c_lflag |= libc::ICANON | libc::ECHO | libc::ISIG | libc::IEXTEN;
        t.c_iflag |= libc::ICRNL;
        t.c_oflag |= libc::OPOST | libc::ONLCR;
        assert_eq!(libc::tcsetattr(fd, libc::TCSANOW, &t), 0);
        let mut now: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd, &mut now), 0);
        now
    }
}

fn modes(fd: i32) -> (libc::tcflag_t, libc::tcflag_t, libc::tcflag_t) {
    // SAFETY: as above.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd, &mut t), 0);
        (t.c_iflag, t.c_oflag, t.c_lflag)
    }
}

#[test]
fn serial_monitor_interactive_in_a_terminal_sends_keys_raw_and_leaves_on_ctrl_bracket() {
    use std::os::fd::AsRawFd;
    // The board's line and the user's terminal, both ptys.
    let (mut board, port) = pair();
    let (mut term, term_slave) = TTYPort::pair().expect("terminal pty");
    let tty = std::fs::OpenOptions::new().read(true).write(true).open(term_slave.name().unwrap()).unwrap();
    let cooked = cook(tty.as_raw_fd());
    let mut cmd = monitor(&["--port", &port]);
    cmd.stdin(Stdio::from(tty.try_clone().unwrap()))
        .stdout(Stdio::from(tty.try_clone().unwrap()))
        .stderr(Stdio::from(tty.try_clone().unwrap()));
    let mut child = cmd.spawn().expect("start rvbuild monitor");
    let hello = read_until(&mut term, b"Ctrl-] leaves", Duration::from_secs(20));
    assert!(String::from_utf8_lossy(&hello).contains("Ctrl-] leaves"), "{}", String::from_utf8_lossy(&hello));
    // Raw mode is on once the board's bytes come through untranslated.
    write_all(&mut board, b"=> ");
    let shown = read_until(&mut term, b"=> ", Duration::from_secs(10));
    assert!(shown.ends_with(b"=> "), "{shown:?}");
    let (_, _, lflag) = modes(tty.as_raw_fd());
    assert_eq!(lflag & (libc::ICANON | libc::ECHO | libc::ISIG), 0, "the terminal is not raw");
    // Keys go to the board as typed: Enter stays CR, Ctrl-C is a byte for U-Boot, not a signal.
    write_all(&mut term, b"version\r\x03");
    let typed = read_until(&mut board, b"version\r\x03", Duration::from_secs(10));
    assert!(typed.ends_with(b"version\r\x03"), "the board got {typed:?}");
    // Ctrl-] leaves with success and the terminal as it was.
    write_all(&mut term, &[0x1d]);
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "Ctrl-] did not end the monitor");
        std::thread::sleep(Duration::from_millis(20));
    };
    let tail = read_until(&mut term, b"sent)", Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", String::from_utf8_lossy(&tail));
    assert!(String::from_utf8_lossy(&tail).contains("left"), "{}", String::from_utf8_lossy(&tail));
    assert_eq!(modes(tty.as_raw_fd()), (cooked.c_iflag, cooked.c_oflag, cooked.c_lflag), "terminal not restored");
}

#[test]
fn serial_monitor_ends_on_sigterm_with_exit_130_and_the_log_kept() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("console.log");
    let (mut master, slave) = pair();
    let run = logging_monitor(&mut master, &slave, &log, b"U-Boot SPL\r\n");
    // SAFETY: signals the child this test started.
    assert_eq!(unsafe { libc::kill(run.child.id() as i32, libc::SIGTERM) }, 0);
    let (code, err) = run.finish(Duration::from_secs(20));
    assert_eq!(code, Some(130), "{err}");
    assert_eq!(std::fs::read(&log).unwrap(), b"U-Boot SPL\r\n");
}

#[test]
fn serial_monitor_bare_until_waits_for_the_boards_marker() {
    let (mut master, slave) = pair();
    let cmd = monitor(&["qemu-riscv64", "--port", &slave, "--until", "--timeout", "30"]);
    let mut run = Running::start(cmd, Stdio::null());
    run.wait_for("waiting up to 30 s for `RVBUILD-BOOT-OK`", Duration::from_secs(20));
    write_all(&mut master, b"rvbuild-init: loaded /lib/modules/rvhello.ko\r\nRVBUILD-BOOT-OK\r\n");
    let (code, err) = run.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{err}");

    // Without a board there is no marker to wait for.
    let o = monitor(&["--port", &slave, "--until"]).stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no board was named"), "{err}");
}
