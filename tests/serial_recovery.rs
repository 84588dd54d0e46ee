//! The JH7110 recovery path against a ROM-like peer with the ROM's quirks: SPL by XMODEM-1K to
//! the "ROM", FIT by YMODEM to the "SPL", then a U-Boot prompt on the same line.

mod support;

use std::process::Command;
use std::time::Duration;

use rvbuild::flash::recovery::{RecoveryOptions, boot_from_rom, make_spl_image};
use rvbuild::flash::uboot::{Console, ConsoleOptions};
use rvbuild::vocab::Silent;
use support::{pty, rom::RomSim};

#[test]
fn serial_recovery_boots_through_rom_quirks() {
    let dir = tempfile::tempdir().unwrap();
    let spl = make_spl_image(&pty::data(5000, 3));
    let fit = pty::data(20_000, 4);
    let (spl_path, fit_path) = (dir.path().join("spl.normal.out"), dir.path().join("u-boot.itb"));
    std::fs::write(&spl_path, &spl).unwrap();
    std::fs::write(&fit_path, &fit).unwrap();

    let sim = RomSim::start();
    let mut link = rvbuild::flash::port::open(&sim.port, 115_200).unwrap();
    let opts = RecoveryOptions { timeout: Duration::from_secs(20), ..RecoveryOptions::default() };
    boot_from_rom(&mut link, &spl_path, &fit_path, &opts, &Silent).unwrap();
    let mut con = Console::attach(
        &mut link,
        ConsoleOptions { attach_timeout: Duration::from_secs(10), ..ConsoleOptions::default() },
    )
    .unwrap();
    let out = con.run("sf probe").unwrap();
    assert!(out.contains("SF: Detected"), "{out}");
    drop(link);
    let got = sim.result.recv_timeout(Duration::from_secs(40)).unwrap().unwrap();
    assert!(got.spl == spl, "the ROM got a different SPL");
    assert!(got.fit == fit, "the SPL got a different FIT");
    assert!(got.nak_bursts >= 1, "the quirk was not exercised");
}

#[test]
fn serial_recovery_cli_writes_spl_and_fit_to_spi_nor() {
    let dir = tempfile::tempdir().unwrap();
    let spl = make_spl_image(&pty::data(7000, 8));
    // A FIT for RISC-V: flash verifies what it sends.
    let fit = support::images::fit("riscv", &pty::data(30_001, 9));
    let (spl_path, fit_path) = (dir.path().join("spl.normal.out"), dir.path().join("u-boot.itb"));
    std::fs::write(&spl_path, &spl).unwrap();
    std::fs::write(&fit_path, &fit).unwrap();
    let sim = RomSim::start();
    let out = Command::new(env!("CARGO_BIN_EXE_rvbuild"))
        .args(["flash", "visionfive2", "--recovery", "--timeout", "20", "--port", &sim.port])
        .arg("--spl")
        .arg(&spl_path)
        .arg("--fit")
        .arg(&fit_path)
        .env("CI", "true")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let got = sim.result.recv_timeout(Duration::from_secs(60)).unwrap().unwrap();
    assert!(got.flash[..spl.len()] == spl[..], "SPL not at 0x0 of the SPI NOR");
    assert!(got.flash[0x10_0000..0x10_0000 + fit.len()] == fit[..], "FIT not at 0x100000");
    assert!(got.flash[spl.len()..0x10_0000].iter().all(|&b| b == 0xFF), "flash between changed");
}

#[test]
fn serial_recovery_refuses_spl_without_header() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("u-boot-spl.bin");
    std::fs::write(&raw, pty::data(5000, 3)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rvbuild"))
        .args(["flash", "visionfive2", "--recovery", "--port", "/dev/nonexistent-port"])
        .arg("--spl")
        .arg(&raw)
        .arg("--fit")
        .arg(&raw)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no StarFive SPL header"), "{err}");
}
