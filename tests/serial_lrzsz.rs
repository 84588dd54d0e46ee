//! XMODEM, XMODEM-1K and YMODEM against lrzsz over a pty pair, both directions, at the block
//! boundary sizes and a few MiB. rvbuild's sender feeds `rx`/`rb`; `sx`/`sb` feed its receiver.

mod support;

use std::time::Duration;

use rvbuild::flash::{xmodem, ymodem};
use rvbuild::vocab::Silent;
use support::pty;

const SIZES: &[usize] = &[0, 1, 127, 128, 129, 1023, 1024, 1025, 3 * 1024 * 1024 + 77];
const LIMIT: Duration = Duration::from_secs(60);

fn quick_timing() -> xmodem::Timing {
    xmodem::Timing { start: Duration::from_secs(15), ..xmodem::Timing::default() }
}

#[test]
fn serial_ymodem_send_to_rb() {
    for (i, &len) in SIZES.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let data = pty::data(len, i as u32);
        let (mut master, slave) = pty::pair();
        let child = pty::spawn_on(&slave, dir.path(), "rb", &["-b"]);
        let opts = ymodem::SendOptions { timing: quick_timing(), ..ymodem::SendOptions::default() };
        let name = format!("f{len}.bin");
        let stats = ymodem::send(&mut master, &[ymodem::Outgoing { name: &name, data: &data }], &opts, &Silent)
            .unwrap_or_else(|e| panic!("size {len}: {e}"));
        let (ok, err) = pty::finish(child, LIMIT);
        assert!(ok, "rb failed for size {len}: {err}");
        let got = std::fs::read(dir.path().join(&name)).unwrap();
        assert_eq!(got.len(), len, "size {len}");
        assert!(got == data, "contents differ for size {len}");
        assert_eq!(stats.bytes, len as u64);
        assert_eq!(stats.retransmits, 0);
    }
}

fn xmodem_send_to_rx(block: xmodem::BlockSize) {
    for (i, &len) in SIZES.iter().enumerate() {
        if len == 0 {
            continue; // XMODEM cannot say "empty": rx would keep a padded block.
        }
        let dir = tempfile::tempdir().unwrap();
        let data = pty::data(len, 100 + i as u32);
        let (mut master, slave) = pty::pair();
        let child = pty::spawn_on(&slave, dir.path(), "rx", &["-b", "-c", "out.bin"]);
        let opts = xmodem::SendOptions { block, timing: quick_timing(), ..xmodem::SendOptions::default() };
        xmodem::send(&mut master, &data, &opts, &Silent).unwrap_or_else(|e| panic!("size {len}: {e}"));
        let (ok, err) = pty::finish(child, LIMIT);
        assert!(ok, "rx failed for size {len}: {err}");
        let got = std::fs::read(dir.path().join("out.bin")).unwrap();
        assert!(got.len() >= len && got.len() < len + 1024, "size {len}: got {}", got.len());
        assert!(got[..len] == data[..], "contents differ for size {len}");
        assert!(got[len..].iter().all(|&b| b == xmodem::SUB), "padding for size {len}");
    }
}

#[test]
fn serial_xmodem_send_to_rx() {
    xmodem_send_to_rx(xmodem::BlockSize::B128);
}

#[test]
fn serial_xmodem_1k_send_to_rx() {
    xmodem_send_to_rx(xmodem::BlockSize::B1024);
}

#[test]
fn serial_ymodem_receive_from_sb() {
    for (i, &len) in SIZES.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let data = pty::data(len, 200 + i as u32);
        let name = format!("s{len}.bin");
        std::fs::write(dir.path().join(&name), &data).unwrap();
        let (mut master, slave) = pty::pair();
        let child = pty::spawn_on(&slave, dir.path(), "sb", &["-b", &name]);
        let opts = ymodem::ReceiveOptions { timing: quick_timing() };
        let files = ymodem::receive(&mut master, &opts, &Silent).unwrap_or_else(|e| panic!("size {len}: {e}"));
        let (ok, err) = pty::finish(child, LIMIT);
        assert!(ok, "sb failed for size {len}: {err}");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].name, name);
        assert_eq!(files[0].data.len(), len, "size {len}");
        assert!(files[0].data == data, "contents differ for size {len}");
    }
}

fn xmodem_receive_from_sx(extra: &[&str]) {
    for (i, &len) in SIZES.iter().enumerate() {
        if len == 0 {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = pty::data(len, 300 + i as u32);
        std::fs::write(dir.path().join("in.bin"), &data).unwrap();
        let (mut master, slave) = pty::pair();
        let mut args = vec!["-b"];
        args.extend_from_slice(extra);
        args.push("in.bin");
        let child = pty::spawn_on(&slave, dir.path(), "sx", &args);
        let opts = xmodem::ReceiveOptions { timing: quick_timing(), ..xmodem::ReceiveOptions::default() };
        let got = xmodem::receive(&mut master, &opts, &Silent).unwrap_or_else(|e| panic!("size {len}: {e}"));
        let (ok, err) = pty::finish(child, LIMIT);
        assert!(ok, "sx failed for size {len}: {err}");
        assert!(got.len() >= len && got.len() < len + 1024, "size {len}: got {}", got.len());
        assert!(got[..len] == data[..], "contents differ for size {len}");
        assert!(got[len..].iter().all(|&b| b == xmodem::SUB), "padding for size {len}");
    }
}

#[test]
fn serial_xmodem_receive_from_sx() {
    xmodem_receive_from_sx(&[]);
}

#[test]
fn serial_xmodem_1k_receive_from_sx() {
    xmodem_receive_from_sx(&["-k"]);
}

/// socat gives `peer` (run in `dir`) a pty at `dir/port`.
fn peer_pty(dir: &std::path::Path, peer: &str) -> (std::process::Child, String) {
    let link = dir.join("port");
    let child = std::process::Command::new("socat")
        .arg(format!("PTY,link={},rawer", link.display()))
        .arg(format!("EXEC:{peer},pipes"))
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start socat");
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while !link.exists() {
        assert!(std::time::Instant::now() < end, "socat made no pty");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, link.display().to_string())
}

#[test]
fn serial_ymodem_both_ways_over_a_noisy_line() {
    let data = pty::data(60_000, 77);
    // rvbuild -> rb
    let dir = tempfile::tempdir().unwrap();
    let (child, dev) = peer_pty(dir.path(), "rb -b");
    let line = support::noisy::NoisyLine::new(&dev, 3000, 20_000);
    let mut port = rvbuild::flash::port::open(&line.port, 115_200).unwrap();
    let opts = ymodem::SendOptions { timing: quick_timing(), ..ymodem::SendOptions::default() };
    let stats = ymodem::send(&mut port, &[ymodem::Outgoing { name: "n.bin", data: &data }], &opts, &Silent).unwrap();
    let _ = pty::finish(child, LIMIT);
    assert!(stats.retransmits > 0, "the noise did not hit");
    assert!(std::fs::read(dir.path().join("n.bin")).unwrap() == data);
    drop(port);
    drop(line);

    // sb -> rvbuild
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.bin"), &data).unwrap();
    let (child, dev) = peer_pty(dir.path(), "sb -b m.bin");
    let line = support::noisy::NoisyLine::new(&dev, 3000, 20_000);
    let mut port = rvbuild::flash::port::open(&line.port, 115_200).unwrap();
    let files = ymodem::receive(&mut port, &ymodem::ReceiveOptions { timing: quick_timing() }, &Silent).unwrap();
    let _ = pty::finish(child, LIMIT);
    assert!(line.flips.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert_eq!(files.len(), 1);
    assert!(files[0].data == data, "received data differs");
}

#[test]
fn serial_sender_stops_when_rb_cancels() {
    let dir = tempfile::tempdir().unwrap();
    // The shell keeps the line up after rb has cancelled; the signal goes to rb only and
    // lrzsz answers it with CANs.
    std::fs::write(dir.path().join("run.sh"), "echo $$ > sh.pid\nrb -b\nsleep 3\n").unwrap();
    let (child, dev) = peer_pty(dir.path(), "sh run.sh");
    let data = pty::data(3 << 20, 1);
    let mut port = rvbuild::flash::port::open(&dev, 115_200).unwrap();
    let pid_file = dir.path().join("sh.pid");
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        let sh = std::fs::read_to_string(pid_file).unwrap();
        let sh = sh.trim();
        let pid = std::fs::read_to_string(format!("/proc/{sh}/task/{sh}/children")).unwrap();
        std::process::Command::new("kill").args(["-TERM", pid.trim()]).status().unwrap();
    });
    let t = std::time::Instant::now();
    let result = ymodem::send(
        &mut port,
        &[ymodem::Outgoing { name: "c.bin", data: &data }],
        &ymodem::SendOptions { timing: quick_timing(), ..ymodem::SendOptions::default() },
        &Silent,
    );
    killer.join().unwrap();
    let _ = pty::finish(child, Duration::from_secs(10));
    let Err(err) = result else { panic!("the whole file was sent; rb never cancelled") };
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10), "cancel took {:?}", t.elapsed());
}

#[test]
fn serial_xmodem_checksum_mode_both_ways() {
    for &len in &[1usize, 129, 1025, 70_000] {
        let data = pty::data(len, 400);
        // rvbuild -> rx in checksum mode (rx asks with NAK without -c).
        let dir = tempfile::tempdir().unwrap();
        let (mut master, slave) = pty::pair();
        let child = pty::spawn_on(&slave, dir.path(), "rx", &["-b", "out.bin"]);
        let opts = xmodem::SendOptions { timing: quick_timing(), ..xmodem::SendOptions::default() };
        xmodem::send(&mut master, &data, &opts, &Silent).unwrap();
        let (ok, err) = pty::finish(child, LIMIT);
        assert!(ok, "rx: {err}");
        let got = std::fs::read(dir.path().join("out.bin")).unwrap();
        assert!(got[..len] == data[..], "size {len}");

        // sx -> rvbuild asking for checksums.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in.bin"), &data).unwrap();
        let (mut master, slave) = pty::pair();
        let child = pty::spawn_on(&slave, dir.path(), "sx", &["-b", "in.bin"]);
        let opts = xmodem::ReceiveOptions { check: xmodem::Check::Sum, timing: quick_timing() };
        let got = xmodem::receive(&mut master, &opts, &Silent).unwrap();
        let (ok, err) = pty::finish(child, LIMIT);
        assert!(ok, "sx: {err}");
        assert!(got[..len] == data[..], "size {len}");
    }
}

#[test]
fn serial_receiver_stops_when_sx_cancels() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.bin"), pty::data(3 << 20, 2)).unwrap();
    // The shell keeps the line up after sx has cancelled; the signal goes to sx only.
    std::fs::write(dir.path().join("run.sh"), "echo $$ > sh.pid\nsx -b in.bin\nsleep 3\n").unwrap();
    let (child, dev) = peer_pty(dir.path(), "sh run.sh");
    let mut port = rvbuild::flash::port::open(&dev, 115_200).unwrap();
    let pid_file = dir.path().join("sh.pid");
    let (reporter, killer) = kill_peer_once_started(pid_file);
    let opts = xmodem::ReceiveOptions { timing: quick_timing(), ..xmodem::ReceiveOptions::default() };
    let result = xmodem::receive(&mut port, &opts, &reporter);
    killer.join().unwrap();
    let _ = pty::finish(child, Duration::from_secs(10));
    let err = match result {
        Ok(got) => panic!("the receiver got {} bytes and sx never cancelled", got.len()),
        Err(e) => e,
    };
    assert!(err.to_string().contains("cancelled"), "{err}");
}

/// Kills the child of the shell whose pid is in `pid_file` (the lrzsz sender) with SIGTERM as soon
/// as the returned reporter sees the first block arrive: a kill after a fixed time raced the
/// whole 3 MiB crossing an idle machine's pty first. (The sending side's test keeps its timed
/// kill: rb killed at the very first block made that test fail 3 times in 5.)
fn kill_peer_once_started(pid_file: std::path::PathBuf) -> (OnStart, std::thread::JoinHandle<()>) {
    let (started, on_start) = std::sync::mpsc::channel();
    let killer = std::thread::spawn(move || {
        let _ = on_start.recv_timeout(Duration::from_secs(30));
        let sh = std::fs::read_to_string(pid_file).unwrap();
        let sh = sh.trim();
        let pid = std::fs::read_to_string(format!("/proc/{sh}/task/{sh}/children")).unwrap();
        std::process::Command::new("kill").args(["-TERM", pid.trim()]).status().unwrap();
    });
    (OnStart(std::sync::Mutex::new(started)), killer)
}

/// Signals the first transfer event.
struct OnStart(std::sync::Mutex<std::sync::mpsc::Sender<()>>);

impl rvbuild::vocab::Reporter for OnStart {
    fn event(&self, e: &rvbuild::vocab::Event) {
        if matches!(e, rvbuild::vocab::Event::TransferStarted { .. })
            && let Ok(tx) = self.0.lock()
        {
            let _ = tx.send(());
        }
    }
}
