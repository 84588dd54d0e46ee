//! End to end against Debian's U-Boot in QEMU: `rvbuild flash qemu-riscv64` writes an image to
//! the virtio disk through the console; after QEMU stops, the disk must hold the image byte for
//! byte and nothing past it may have changed.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{images, qemu::Qemu};

fn rvbuild() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rvbuild"));
    c.env("CI", "true").env_remove("RVBUILD_PORT");
    c
}

fn run_limited(mut cmd: Command, limit: Duration) -> (Option<i32>, String, String) {
    let mut child =
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("start rvbuild");
    let end = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn qemu_flash_writes_virtio_disk_byte_for_byte() {
    flash_and_compare("riscv64");
}

#[test]
fn qemu_flash_aarch64_writes_virtio_disk_byte_for_byte() {
    flash_and_compare("aarch64");
}

fn flash_and_compare(arch: &str) {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, vec![0xEEu8; 1 << 20]).unwrap();
    // Not a multiple of 512: the last sector keeps the disk's bytes after the image.
    let image = images::kernel_image(arch, 160 * 1024 + 123, 7);
    let image_path = dir.path().join("image.bin");
    std::fs::write(&image_path, &image).unwrap();

    let mut vm = Qemu::start_arch(arch, Some(&disk));
    let board = format!("qemu-{arch}");
    let mut cmd = rvbuild();
    cmd.args(["flash", &board, "--port", &vm.pty, "--timeout", "60"])
        .arg("--image")
        .arg(&image_path)
        // Three chunks: each one loaded, checked, written and read back on its own.
        .args(["--chunk", &(64u64 << 10).to_string()]);
    let (code, out, err) = run_limited(cmd, Duration::from_secs(240));
    vm.stop();
    assert_eq!(code, Some(0), "rvbuild flash failed\nstdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("written and verified"), "{out}");
    let got = std::fs::read(&disk).unwrap();
    assert!(got[..image.len()] == image[..], "disk contents differ from the image");
    assert!(got[image.len()..].iter().all(|&b| b == 0xEE), "bytes past the image changed");
}

#[test]
fn qemu_flash_refuses_image_larger_than_disk() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 512 << 10]).unwrap();
    let image_path = dir.path().join("image.bin");
    std::fs::write(&image_path, images::kernel_image("riscv64", 1 << 20, 1)).unwrap();
    let mut vm = Qemu::start(Some(&disk));
    let mut cmd = rvbuild();
    cmd.args(["flash", "qemu-riscv64", "--port", &vm.pty, "--timeout", "60", "--chunk", "262144"])
        .arg("--image")
        .arg(&image_path);
    let (code, _out, err) = run_limited(cmd, Duration::from_secs(120));
    vm.stop();
    // A flash failure (exit 6) naming the first chunk past the device's 512 KiB.
    assert_eq!(code, Some(6), "{err}");
    assert!(err.contains("does not fit"), "{err}");
    assert!(err.contains("chunk 3/4 (image bytes 0x80000..0xc0000)"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(std::fs::read(&disk).unwrap().iter().all(|&b| b == 0), "disk was written");
}

#[test]
fn qemu_flash_reports_board_error_without_a_disk() {
    let dir = tempfile::tempdir().unwrap();
    let image_path = dir.path().join("image.bin");
    std::fs::write(&image_path, images::kernel_image("riscv64", 4096, 1)).unwrap();
    let _vm = Qemu::start(None);
    let mut cmd = rvbuild();
    cmd.args(["flash", "qemu-riscv64", "--port", &_vm.pty, "--timeout", "60"]).arg("--image").arg(&image_path);
    let (code, _out, err) = run_limited(cmd, Duration::from_secs(120));
    assert_eq!(code, Some(6), "{err}");
    assert!(err.contains("U-Boot answered"), "{err}");
}

#[test]
fn qemu_flash_survives_a_noisy_line() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, vec![0xEEu8; 1 << 20]).unwrap();
    let image = images::kernel_image("riscv64", 48 * 1024 + 300, 11);
    let image_path = dir.path().join("image.bin");
    std::fs::write(&image_path, &image).unwrap();

    let mut vm = Qemu::start(Some(&disk));
    // 1 byte in 3,000 damaged and 1 in 20,000 lost, both directions.
    let line = support::noisy::NoisyLine::new(&vm.pty, 3000, 20_000);
    let mut cmd = rvbuild();
    cmd.args(["flash", "qemu-riscv64", "--port", &line.port, "--timeout", "60"])
        .arg("--image")
        .arg(&image_path)
        .args(["--chunk", &(32u64 << 10).to_string()]);
    let (code, out, err) = run_limited(cmd, Duration::from_secs(400));
    let flips = line.flips.load(std::sync::atomic::Ordering::Relaxed);
    drop(line);
    vm.stop();
    let got = std::fs::read(&disk).unwrap();
    let exact = got[..image.len()] == image[..] && got[image.len()..].iter().all(|&b| b == 0xEE);
    eprintln!("{flips} bytes damaged on the line\n{err}");
    assert!(flips > 0, "the proxy damaged nothing: the test proves nothing");
    match code {
        // Success must mean exact bytes on the disk.
        Some(0) => assert!(exact, "rvbuild claimed success but the disk differs"),
        // A loud failure is allowed, but never a success with wrong data.
        Some(6) => assert!(!out.contains("complete"), "{out}"),
        other => panic!("unexpected exit {other:?}\n{err}"),
    }
    assert_eq!(code, Some(0), "the flash should get through 1-in-3000 noise\n{err}");
}

#[test]
fn qemu_flash_with_loady_baud_switch() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let image = images::kernel_image("riscv64", 20_000, 21);
    let image_path = dir.path().join("image.bin");
    std::fs::write(&image_path, &image).unwrap();
    let mut vm = Qemu::start(Some(&disk));
    let mut cmd = rvbuild();
    cmd.args(["flash", "qemu-riscv64", "--port", &vm.pty, "--timeout", "60"])
        .args(["--transfer-baud", "921600"])
        .arg("--image")
        .arg(&image_path);
    let (code, out, err) = run_limited(cmd, Duration::from_secs(120));
    vm.stop();
    assert_eq!(code, Some(0), "{out}\n{err}");
    let got = std::fs::read(&disk).unwrap();
    assert!(got[..image.len()] == image[..], "disk contents differ");
}
