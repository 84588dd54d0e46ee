//! labgrid drives qemu-riscv64's real U-Boot over QEMU's pty with the environment `rvbuild lab
//! labgrid` writes: labgrid's pytest plugin runs contrib/labgrid/test_rvbuild_board.py, whose
//! strategy gets the U-Boot prompt, flashes with `rvbuild flash`, boots and waits for the marker
//! with `rvbuild monitor`.
//!
//! The flash must carry the boot: the QEMU disk is the board's built image with its first 16 KiB
//! (the partition table) wiped; the strategy flashes the whole image (compressed chunks, zero
//! chunks sent as nothing), since flash verifies what it sends and a bare partition table carries
//! no code. U-Boot only finds the kernel once the flash has put the partition table back.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::qemu::Qemu;

const HEAD: usize = 16 << 10;

fn labgrid_venv() -> PathBuf {
    let root = std::env::var_os("RVBUILD_LAB_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/rvbuild/lab"));
    let venv = root.join("labgrid-venv");
    assert!(
        venv.join("bin/pytest").is_file(),
        "{} has no labgrid: run `bash scripts/setup-host.sh` (it installs labgrid in a venv)",
        venv.display()
    );
    venv
}

#[test]
fn qemu_labgrid_strategy_flashes_and_boots_qemu_riscv64_to_the_marker() {
    let venv = labgrid_venv();
    let out = support::built("qemu-riscv64");
    let m = support::manifest(&out);
    let image = m["artifacts"]["disk.img"].as_str().expect("disk.img in the manifest").to_string();
    let disk_bytes = std::fs::read(&image).expect("disk.img");
    assert!(disk_bytes[510..512] == [0x55, 0xAA], "disk.img has no partition table");

    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head.img");
    // Flash verifies what it sends, so the strategy flashes the whole image (compressed chunks).
    std::fs::write(&head, &disk_bytes).unwrap();
    let disk = dir.path().join("disk.img");
    let mut wiped = disk_bytes.clone();
    wiped[..HEAD].fill(0);
    std::fs::write(&disk, &wiped).unwrap();

    let mut vm = Qemu::start(Some(&disk));
    let env = dir.path().join("env.yaml");
    let o = support::run(
        &[
            "lab",
            "labgrid",
            "qemu-riscv64",
            "--port",
            &vm.pty,
            "--image",
            head.to_str().unwrap(),
            "-o",
            env.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", support::text(&o));

    let test_file = support::repo_root().join("contrib/labgrid/test_rvbuild_board.py");
    let mut child = Command::new(venv.join("bin/pytest"))
        .args(["-p", "no:cacheprovider", "-v", "--log-cli-level=INFO", "--rootdir"])
        .arg(dir.path())
        .arg("--lg-env")
        .arg(&env)
        .arg(&test_file)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start labgrid's pytest");
    let end = Instant::now() + Duration::from_secs(600);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = child.wait_with_output().expect("pytest output");
    vm.stop();
    let text = support::text(&o);
    eprintln!("{text}");
    assert!(o.status.success(), "labgrid's pytest failed");
    assert!(text.contains("3 passed"), "{text}");
    // The strategy's flash landed, and the boot that followed came from it.
    let after = std::fs::read(&disk).unwrap();
    assert!(after[..HEAD] == disk_bytes[..HEAD], "the flashed partition table is not on the disk");
    assert!(text.contains("rvbuild monitor: exit 0"), "{text}");
}
