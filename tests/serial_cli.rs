//! `rvbuild serial` and the port errors of `rvbuild flash`, through the real binary: transfers
//! with lrzsz on a pty, a missing port, a busy port, and a line without a U-Boot prompt.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rvbuild::flash::SerialLink;
use support::pty;

fn rvbuild(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rvbuild"));
    c.args(args).env("CI", "true").env_remove("RVBUILD_PORT");
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// socat makes a pty at `dir/port` whose far end is `peer` (run in `dir`).
fn peer_on_pty(dir: &Path, peer: &str) -> (Child, PathBuf) {
    let link = dir.join("port");
    let child = Command::new("socat")
        .arg(format!("PTY,link={},rawer", link.display()))
        .arg(format!("EXEC:{peer},pipes"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start socat");
    let end = Instant::now() + Duration::from_secs(10);
    while !link.exists() {
        assert!(Instant::now() < end, "socat made no pty");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, link)
}

#[test]
fn serial_cli_send_to_rb_and_receive_from_sb() {
    let dir = tempfile::tempdir().unwrap();
    let data = pty::data(70_001, 5);
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("payload.bin");
    std::fs::write(&file, &data).unwrap();

    let (peer, port) = peer_on_pty(dir.path(), "rb -b");
    let out = rvbuild(&["serial", "send", "--protocol", "ymodem", "--port"]).arg(&port).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let (ok, err) = pty::finish(peer, Duration::from_secs(20));
    assert!(ok, "rb: {err}");
    assert!(std::fs::read(dir.path().join("payload.bin")).unwrap() == data);

    let recv = tempfile::tempdir().unwrap();
    let (peer, port) = peer_on_pty(src.path(), "sb -b payload.bin");
    let out =
        rvbuild(&["serial", "receive", "--protocol", "ymodem", "--port"]).arg(&port).arg(recv.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let _ = pty::finish(peer, Duration::from_secs(20));
    assert!(std::fs::read(recv.path().join("payload.bin")).unwrap() == data);
}

#[test]
fn serial_cli_missing_port_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let out = rvbuild(&["serial", "send", "--port", "/dev/rvbuild-no-such-port"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn serial_cli_busy_port_names_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let (_master, slave) = pty::pair();
    let _holder = rvbuild::flash::port::open(&slave, 115_200).unwrap();
    let out = rvbuild(&["serial", "send", "--port", &slave]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("busy"), "{}", stderr(&out));
}

#[test]
fn serial_cli_no_prompt_shows_what_was_received() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    std::fs::write(&image, support::images::kernel_image("riscv64", 1024, 1)).unwrap();
    let (mut master, slave) = pty::pair();
    let child = rvbuild(&["flash", "qemu-riscv64", "--timeout", "3", "--port", &slave, "--image"])
        .arg(&image)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    master.write_all(b"Linux login: ").unwrap();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("no U-Boot prompt"), "{err}");
    assert!(err.contains("Linux login"), "{err}");
}

#[test]
fn serial_cli_list_runs() {
    let out = rvbuild(&["serial", "list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.is_array());
}
