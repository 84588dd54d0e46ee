//! Whole-image flashing over the serial console against lrzsz's `sb`, side by side on the same
//! QEMU riscv64 U-Boot and console: `sb`'s raw YMODEM throughput is measured on 256 KiB of
//! random data (what every byte of an uncompressed image would cost) and gives its predicted
//! time for the whole image; rvbuild then flashes the whole image into a blank virtio disk
//! (gzip chunks through `gzwrite`, zero chunks not sent, every chunk read back and CRC-checked;
//! no boot). Prints the compressed size, the bytes on the wire, the effective rates and the
//! ratio. Both run after the board's console setup (the 16550 FIFO trigger), sb's best case.
//!
//! The image: `FLASH_IMAGE`, else the qemu-riscv64 disk image the tests built, else a 64 MiB
//! ext4 image holding ~2.4 MB of binaries made here with `mkfs.ext4 -d`.
//! `RVBUILD_BENCH_QUICK=1`: a 4 MiB ext4 image (~120 KB of files) and 16 KiB for sb.

#[path = "../tests/support/qemu.rs"]
mod qemu;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rvbuild::flash::plan::{FlashOptions, FlashStep, Target};
use rvbuild::flash::port;
use rvbuild::flash::uboot::{Console, ConsoleOptions};
use rvbuild::vocab::Silent;

/// The qemu-riscv64 board's console setup (boards/qemu-riscv64.yaml, flash.console-setup).
const SETUP: &str = "mw.b 10000002 c1";

fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 7) as u8
        })
        .collect()
}

/// An ext4 image of `mib` MiB holding copies of this machine's firmware and binaries
/// (`payload` bytes of them, roughly), like a board's boot partition.
fn ext4_image(dir: &Path, mib: u64, payload: u64) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).expect("mkdir");
    let mut total = 0;
    let sources = ["/usr/lib/u-boot", "/usr/lib/riscv64-linux-gnu/opensbi", "/usr/bin"];
    'fill: for src in sources {
        let mut stack = vec![PathBuf::from(src)];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
                if md.is_dir() {
                    stack.push(p);
                } else if md.is_file() && md.len() < 4 << 20 {
                    let name = format!("f{total}-{}", p.file_name().unwrap_or_default().to_string_lossy());
                    if std::fs::copy(&p, root.join(name)).is_ok() {
                        total += md.len();
                    }
                    if total >= payload {
                        break 'fill;
                    }
                }
            }
        }
    }
    let img = dir.join("ext4.img");
    let st = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-E", "root_owner=0:0", "-d"])
        .arg(&root)
        .arg(&img)
        .arg(format!("{mib}M"))
        .status()
        .expect("run mkfs.ext4 (e2fsprogs)");
    assert!(st.success(), "mkfs.ext4 failed");
    img
}

fn main() {
    let quick = std::env::var("RVBUILD_BENCH_QUICK").is_ok_and(|v| v == "1");
    let dir = tempfile::tempdir().expect("tempdir");
    let built = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rvbuild-shared/qemu-riscv64/image/disk.img");
    let image = match std::env::var_os("FLASH_IMAGE") {
        Some(p) => PathBuf::from(p),
        None if !quick && built.is_file() => built,
        None if quick => ext4_image(dir.path(), 4, 120 << 10),
        None => ext4_image(dir.path(), 64, 2400 << 10),
    };
    let data = std::fs::read(&image).expect("read the image");
    let sb_len = if quick { 16 << 10 } else { 256 << 10 };
    let sb_data = noise(sb_len, 4242);
    let sb_file = dir.path().join("sb.bin");
    std::fs::write(&sb_file, &sb_data).expect("write sb's file");

    let disk = dir.path().join("disk.raw");
    std::fs::write(&disk, vec![0xEEu8; data.len().next_multiple_of(1 << 20)]).expect("write the blank disk");
    let mut vm = qemu::Qemu::start(Some(&disk));
    let mut link = port::open(&vm.pty, 115_200).expect("open QEMU console");

    // sb: loady by hand, the file sent by lrzsz on the same pty.
    let sb_secs = {
        let mut con = Console::attach(
            &mut link,
            ConsoleOptions { attach_timeout: Duration::from_secs(60), ..Default::default() },
        )
        .expect("U-Boot prompt");
        con.run(SETUP).expect("console setup");
        let addr = 0x8100_0000u64;
        let t = Instant::now();
        con.enter(&format!("loady {addr:x}")).expect("type loady");
        let open = || std::fs::File::options().read(true).write(true).open(&vm.pty).expect("open pty for sb");
        let st = Command::new("sb")
            .args(["-k", "-q"])
            .arg(&sb_file)
            .stdin(Stdio::from(open()))
            .stdout(Stdio::from(open()))
            .stderr(Stdio::null())
            .status()
            .expect("run sb (lrzsz)");
        assert!(st.success(), "sb failed");
        con.wait_prompt(Duration::from_secs(60)).expect("prompt after sb");
        let secs = t.elapsed().as_secs_f64();
        let crc = con.crc32(addr, sb_len as u64).expect("crc32");
        assert_eq!(crc, rvbuild::flash::crc::crc32(&sb_data), "sb: the data in RAM differs");
        secs
    };

    // rvbuild: the whole image, written and proven.
    let step =
        FlashStep { name: "disk".into(), file: image.clone(), target: Target::Virtio { dev: 0, byte_offset: 0 } };
    let opts = FlashOptions { setup: vec![SETUP.to_string()], ..FlashOptions::default() };
    let t = Instant::now();
    let report = rvbuild::flash::flash(&mut link, &[step], &opts, &Silent).expect("rvbuild flash");
    let ours = t.elapsed().as_secs_f64();
    drop(link);
    vm.stop();
    let got = std::fs::read(&disk).expect("read the disk");
    assert!(got[..data.len()] == data[..], "rvbuild: the disk differs from the image");

    let sb_rate = sb_len as f64 / sb_secs;
    let sb_predicted = data.len() as f64 / sb_rate;
    let payload = report.steps[0].sent_bytes;
    let kib = |b: f64| b / 1024.0;
    println!(
        "whole-image flash of {} ({} bytes) into U-Boot on QEMU riscv64 (pty console, FIFO trigger 14)",
        image.display(),
        data.len()
    );
    println!(
        "  sb (lrzsz) raw YMODEM: {sb_len} bytes in {sb_secs:.1} s = {:.1} KiB/s; predicted for the whole image: {sb_predicted:.0} s",
        kib(sb_rate)
    );
    println!(
        "  rvbuild: {ours:.1} s (write + read-back proofs, no boot); compressed payload {payload} bytes, {} bytes on the wire",
        report.wire_bytes
    );
    println!(
        "  effective image rate {:.1} KiB/s; compressed bytes at {:.1} KiB/s = {:.0} % of sb's raw line rate",
        kib(data.len() as f64 / ours),
        kib(payload as f64 / ours),
        100.0 * payload as f64 / ours / sb_rate
    );
    println!("  ratio sb predicted / rvbuild: {:.1}x (goal >= 30x on the qemu-riscv64 image)", sb_predicted / ours);
}
