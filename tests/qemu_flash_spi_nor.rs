//! SPI NOR through a real U-Boot: QEMU's `sifive_u` machine (an is25wp256 on SPI0, `-drive
//! if=mtd`) boots Debian's u-boot-sifive (SPL and FIT from that NOR, MSEL 6); rvbuild then
//! writes the SPL and the FIT into two other regions of the NOR through the compressed path
//! (gzip member, `unzip` in RAM, `sf update`, `sf read` into cleared RAM, `crc32`), and the NOR
//! file must hold both byte for byte when QEMU stops.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rvbuild::flash::plan::{FlashOptions, FlashStep, Target};
use rvbuild::flash::port;
use rvbuild::vocab::{Event, Reporter};

/// Prints the flash driver's notes (seen with --no-capture, or when the test fails).
struct Notes;

impl Reporter for Notes {
    fn event(&self, e: &Event) {
        if let Event::Note { text } = e {
            eprintln!("{text}");
        }
    }
}

/// Where scripts/setup-host.sh unpacks u-boot-sifive (`RVBUILD_TEST_FIRMWARE`).
fn sifive() -> PathBuf {
    let root = std::env::var_os("RVBUILD_TEST_FIRMWARE")
        .map_or_else(|| PathBuf::from("/var/lib/rvbuild/test-firmware"), PathBuf::from);
    let dir = root.join("usr/lib/u-boot/sifive_unleashed");
    assert!(
        dir.join("u-boot.itb").is_file(),
        "{} missing: run scripts/setup-host.sh (it fetches u-boot-sifive)",
        dir.display()
    );
    dir
}

const NOR: usize = 32 << 20;
const SPL_AT: u64 = 0x100_0000;
const FIT_AT: u64 = 0x110_0000;

/// A NOR image that boots: GPT with the SPL (sector 40) and FIT (sector 2088) partitions the
/// SPL looks for, and 0x5A where rvbuild will write.
fn nor_image(path: &Path, spl: &[u8], fit: &[u8]) {
    let mut nor = vec![0u8; NOR];
    nor[SPL_AT as usize..0x1f0_0000].fill(0x5A);
    std::fs::write(path, &nor).unwrap();
    let mut sf = Command::new("sfdisk").arg("-q").arg(path).stdin(Stdio::piped()).spawn().expect("run sfdisk (fdisk)");
    let table = "label: gpt\nfirst-lba: 34\n\
        start=40, size=2048, type=5B193300-FC78-40CD-8002-E86C45580B47, name=spl\n\
        start=2088, size=8192, type=2E54B353-1271-4842-806F-E436D6AF6985, name=uboot\n";
    std::io::Write::write_all(sf.stdin.as_mut().unwrap(), table.as_bytes()).unwrap();
    assert!(sf.wait().unwrap().success(), "sfdisk failed");
    let mut nor = std::fs::read(path).unwrap();
    nor[40 * 512..40 * 512 + spl.len()].copy_from_slice(spl);
    nor[2088 * 512..2088 * 512 + fit.len()].copy_from_slice(fit);
    std::fs::write(path, &nor).unwrap();
}

#[test]
fn qemu_flash_spi_nor_sifive_u_compressed_spl_and_fit_byte_for_byte() {
    let fw = sifive();
    let spl = std::fs::read(fw.join("u-boot-spl.bin")).unwrap();
    let fit = std::fs::read(fw.join("u-boot.itb")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let nor = dir.path().join("nor.img");
    nor_image(&nor, &spl, &fit);

    let mut child = Command::new("qemu-system-riscv64")
        // The SPL's DDR setup expects the Unleashed's 8 GiB.
        .args(["-M", "sifive_u,msel=6", "-smp", "5", "-m", "8G", "-display", "none", "-monitor", "none"])
        .args(["-serial", "pty", "-nic", "none", "-no-reboot", "-bios"])
        .arg(fw.join("u-boot-spl.bin"))
        .args(["-drive", &format!("file={},if=mtd,format=raw", nor.display())])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start qemu-system-riscv64");
    let out = child.stdout.take().unwrap();
    let pty = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split("redirected to ").nth(1).and_then(|r| r.split_whitespace().next()).map(str::to_string))
        .expect("QEMU's pty");

    let steps = [
        FlashStep {
            name: "spl".into(),
            file: fw.join("u-boot-spl.bin"),
            target: Target::SpiNor { offset: SPL_AT, size_limit: 0x10_0000 },
        },
        FlashStep {
            name: "fit".into(),
            file: fw.join("u-boot.itb"),
            target: Target::SpiNor { offset: FIT_AT, size_limit: 0xe0_0000 },
        },
    ];
    let mut opts = FlashOptions { chunk: 256 << 10, ..FlashOptions::default() };
    opts.console.attach_timeout = Duration::from_secs(180);
    let result = {
        let mut link = port::open(&pty, 115_200).expect("open the console");
        rvbuild::flash::flash(&mut link, &steps, &opts, &Notes)
    };
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let report = result.unwrap_or_else(|e| panic!("flash failed: {e:?}"));
    let got = std::fs::read(&nor).unwrap();
    assert!(got[SPL_AT as usize..][..spl.len()] == spl[..], "the SPL region differs");
    assert!(got[FIT_AT as usize..][..fit.len()] == fit[..], "the FIT region differs");
    assert!(got[FIT_AT as usize + fit.len()..0x1f0_0000].iter().all(|&b| b == 0x5A), "bytes past the FIT changed");
    // Compressed: less than the two files crossed the line.
    let sent: u64 = report.steps.iter().map(|s| s.sent_bytes).sum();
    assert!(
        sent < (spl.len() + fit.len()) as u64 * 3 / 4,
        "{sent} payload bytes for {} bytes of files",
        spl.len() + fit.len()
    );
}
