//! Throughput of rvbuild's YMODEM sender against lrzsz's `sb`, side by side: the same file loaded
//! with `loady` into the same U-Boot (QEMU riscv64, console on a pty). Prints both rates and the
//! ratio rvbuild/sb. The whole RAM window the file goes to is zeroed (and its CRC checked to be
//! that of zeros) before each run, so no run's CRC can pass on an earlier run's data.
//! Run: `cargo bench --bench serial_loady` (BENCH_KIB sets the size, default 256, quick mode
//! 16; BENCH_BAUD adds a run with loady's baud-rate switch).

#[path = "../tests/support/qemu.rs"]
mod qemu;
#[path = "common/quick.rs"]
mod quick;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rvbuild::flash::crc::crc32;
use rvbuild::flash::port;
use rvbuild::flash::uboot::{Console, ConsoleOptions};
use rvbuild::vocab::Silent;

fn main() {
    quick::banner("serial_loady");
    let kib: usize = quick::size("BENCH_KIB", 256, 16);
    let baud: Option<u32> = std::env::var("BENCH_BAUD").ok().and_then(|v| v.parse().ok());
    let mut x: u32 = 12345;
    let data: Vec<u8> = (0..kib * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 7) as u8
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bench.bin");
    std::fs::write(&file, &data).expect("write bench file");

    let mut vm = qemu::Qemu::start(None);
    let mut link = port::open(&vm.pty, 115_200).expect("open QEMU console");
    let mut con = Console::attach(
        &mut link,
        ConsoleOptions { attach_timeout: Duration::from_secs(60), ..ConsoleOptions::default() },
    )
    .expect("U-Boot prompt");
    let addr = 0x8040_0000u64;
    let want = crc32(&data);
    let check = |con: &mut Console<'_>, who: &str| {
        let got = con.crc32(addr, data.len() as u64).expect("crc32");
        assert_eq!(got, want, "{who}: data in RAM differs");
    };
    let zeros = crc32(&vec![0u8; data.len()]);
    let clear = |con: &mut Console<'_>| {
        con.run(&format!("mw.b {addr:x} 0 {:x}", data.len())).expect("clear the RAM window");
        let got = con.crc32(addr, data.len() as u64).expect("crc32 of the cleared window");
        assert_eq!(got, zeros, "the RAM window is not zero after mw.b");
    };

    // rvbuild
    clear(&mut con);
    let t = Instant::now();
    con.loady(addr, "bench.bin", &data, None, &Silent).expect("rvbuild loady");
    let ours = t.elapsed().as_secs_f64();
    check(&mut con, "rvbuild");

    // lrzsz sb, driving loady by hand on the same pty.
    clear(&mut con);
    let t = Instant::now();
    con.enter(&format!("loady {addr:x}")).expect("type loady");
    let open = || std::fs::File::options().read(true).write(true).open(&vm.pty).expect("open pty for sb");
    let st = Command::new("sb")
        .args(["-k", "-q"])
        .arg(&file)
        .stdin(Stdio::from(open()))
        .stdout(Stdio::from(open()))
        .stderr(Stdio::null())
        .status()
        .expect("run sb (lrzsz)");
    assert!(st.success(), "sb failed");
    con.wait_prompt(Duration::from_secs(30)).expect("prompt after sb");
    let theirs = t.elapsed().as_secs_f64();
    check(&mut con, "sb");

    let rate = |s: f64| data.len() as f64 / s / 1024.0;
    println!("loady of {kib} KiB into U-Boot (QEMU riscv64, pty console)");
    println!("  rvbuild: {ours:7.2} s  {:8.1} KiB/s", rate(ours));
    println!("  sb:      {theirs:7.2} s  {:8.1} KiB/s", rate(theirs));
    println!("  throughput ratio rvbuild/sb: {:.2}", theirs / ours);

    if let Some(b) = baud {
        clear(&mut con);
        let t = Instant::now();
        con.loady(addr, "bench.bin", &data, Some((b, 115_200)), &Silent).expect("rvbuild loady with baud switch");
        let fast = t.elapsed().as_secs_f64();
        check(&mut con, "rvbuild (baud switch)");
        println!("  rvbuild with loady's switch to {b} bps: {fast:7.2} s  {:8.1} KiB/s", rate(fast));
    }
    drop(link);
    vm.stop();
}
