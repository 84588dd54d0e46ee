//! The flash stage takes its plan from the board profile and its files from the board's build:
//! regions, sizes and methods are checked before any serial port is opened.

mod support;

use std::fs;

use support::{built, run, text};

#[test]
fn nixbuild_flash_plan_comes_from_the_profile_and_the_build() {
    let out = built("visionfive2");
    let out_s = out.to_str().unwrap_or_default().to_string();
    let dir = tempfile::tempdir().expect("tempdir");

    // Files from the build's manifest; the SPL header is checked; then the port is missing.
    let o = run(&["flash", "visionfive2", "--out", &out_s, "--port", "/dev/rvbuild-no-such-port"], dir.path());
    let t = text(&o);
    assert_ne!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("rvbuild-no-such-port"), "the port is named: {t}");
    assert!(!t.contains("no file for flash region"), "{t}");

    // An SPL larger than its 0xf0000-byte region is refused before the port is touched.
    let big = dir.path().join("big-spl.bin");
    fs::write(&big, vec![0u8; 0xf0001]).expect("write");
    let o = run(
        &[
            "flash",
            "visionfive2",
            "--out",
            &out_s,
            "--spl",
            big.to_str().unwrap_or_default(),
            "--port",
            "/dev/rvbuild-no-such-port",
        ],
        dir.path(),
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("larger than flash region `spl`"), "{t}");
    assert!(!t.contains("rvbuild-no-such-port"), "the port must not be opened: {t}");
}

#[test]
fn flash_without_a_build_or_files_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(&["flash", "qemu-riscv64", "--port", "/dev/rvbuild-no-such-port"], dir.path());
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("no file for flash region `disk` (disk.img)") && t.contains("rvbuild board qemu-riscv64"),
        "{t}"
    );
}

#[test]
fn sd_card_boards_are_not_flashed_over_serial() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(&["flash", "rpi4", "--port", "/dev/rvbuild-no-such-port"], dir.path());
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("boots from an SD card"), "{t}");
}

#[test]
fn nixbuild_flash_is_refused_when_the_outputs_fail_verification() {
    // A build output directory whose boot files hold an aarch64 init, for a riscv64 board:
    // verification refuses before the serial port is opened.
    let rv = built("qemu-riscv64");
    let arm = built("qemu-aarch64");
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bootfiles");
    fs::create_dir_all(&bad).expect("mkdir");
    let arm_init = support::manifest(&arm)["components"]["init"]["outputs"][0].as_str().unwrap_or_default().to_string();
    fs::copy(format!("{arm_init}/bin/init"), bad.join("init")).expect("copy init");
    let mut m = support::manifest(&rv);
    m["components"]["bootfiles"]["outputs"] = serde_json::json!([bad.to_str().unwrap_or_default()]);
    let out = dir.path().join("out");
    fs::create_dir_all(&out).expect("mkdir");
    fs::write(out.join("manifest.json"), serde_json::to_string(&m).expect("json")).expect("write");

    let o = run(
        &["flash", "qemu-riscv64", "--out", out.to_str().unwrap_or_default(), "--port", "/dev/rvbuild-no-such-port"],
        dir.path(),
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(5), "{t}");
    assert!(t.contains("refusing to flash") && t.contains("bootfiles/init"), "{t}");
    assert!(!t.contains("rvbuild-no-such-port"), "the port must not be opened: {t}");
}

#[test]
fn flash_verifies_a_hand_given_image_before_opening_the_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flash = |image: &std::path::Path| {
        let image = image.to_str().unwrap_or_default();
        let o = run(&["flash", "qemu-riscv64", "--image", image, "--port", "/dev/rvbuild-no-such-port"], dir.path());
        (o.status.code(), text(&o))
    };
    // An ARM64 kernel for a RISC-V board.
    let arm = dir.path().join("arm.img");
    fs::write(&arm, support::images::kernel_image("aarch64", 8192, 1)).expect("write");
    let (code, t) = flash(&arm);
    assert_eq!(code, Some(5), "{t}");
    assert!(t.contains("refusing to flash") && t.contains("arm.img: image-arch"), "{t}");
    assert!(!t.contains("rvbuild-no-such-port"), "the port must not be opened: {t}");
    // Bytes with nothing checkable in them are not flashed either.
    let raw = dir.path().join("raw.img");
    fs::write(&raw, support::pty::data(8192, 2)).expect("write");
    let (code, t) = flash(&raw);
    assert_eq!(code, Some(5), "{t}");
    assert!(t.contains("nothing checked"), "{t}");
    assert!(!t.contains("rvbuild-no-such-port"), "the port must not be opened: {t}");
    // A RISC-V kernel passes verification and gets as far as the (missing) port.
    let rv = dir.path().join("rv.img");
    fs::write(&rv, support::images::kernel_image("riscv64", 8192, 3)).expect("write");
    let (code, t) = flash(&rv);
    assert_ne!(code, Some(5), "{t}");
    assert!(t.contains("rvbuild-no-such-port"), "{t}");
}
