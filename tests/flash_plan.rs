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
