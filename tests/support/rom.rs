//! A JH7110 boot-ROM-like peer on a pty: prints `(C)StarFive` and runs of `C`, takes the SPL by
//! XMODEM with the ROM's quirks (bursts of NAKs, stray `C`s during the transfer), checks the
//! StarFive header, then plays the SPL (YMODEM for the FIT) and a minimal U-Boot with a 16 MiB
//! SPI NOR (real U-Boot is exercised in the QEMU tests; this one exists for the JH7110 path).

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rvbuild::flash::SerialLink;
use rvbuild::flash::crc::{crc16, crc32};
use rvbuild::flash::ymodem;
use rvbuild::vocab::Silent;
use serialport::TTYPort;

/// What the simulated board received.
#[derive(Debug)]
pub struct RomResult {
    pub spl: Vec<u8>,
    pub fit: Vec<u8>,
    /// NAK bursts the ROM sent on purpose.
    pub nak_bursts: u32,
    /// The SPI NOR contents when the board went idle.
    pub flash: Vec<u8>,
}

pub struct RomSim {
    /// The pty the flasher opens.
    pub port: String,
    pub result: mpsc::Receiver<Result<RomResult, String>>,
    _thread: JoinHandle<()>,
}

fn put(link: &mut TTYPort, bytes: &[u8]) {
    let _ = link.write_all(bytes);
}

fn byte(link: &mut TTYPort, t: Duration) -> Option<u8> {
    let mut b = [0u8];
    match link.read_timeout(&mut b, t) {
        Ok(1) => Some(b[0]),
        _ => None,
    }
}

/// The ROM's XMODEM receive with quirks. Returns the image with padding.
fn rom_receive(link: &mut TTYPort, bursts: &mut u32) -> Result<Vec<u8>, String> {
    let end = Instant::now() + Duration::from_secs(30);
    // Banner and `C` runs until the first block header arrives.
    let first = 'wait: loop {
        if Instant::now() > end {
            return Err("no block arrived".into());
        }
        put(link, b"(C)StarFive\r\n");
        for _ in 0..6 {
            put(link, b"C");
            if let Some(b) = byte(link, Duration::from_millis(60))
                && (b == 0x01 || b == 0x02)
            {
                break 'wait b;
            }
        }
    };
    let mut out = Vec::new();
    let mut expected: u8 = 1;
    let mut head = Some(first);
    let mut refused_block_2 = false;
    loop {
        let h = match head.take() {
            Some(h) => h,
            None => byte(link, Duration::from_secs(5)).ok_or("timeout waiting for a block")?,
        };
        match h {
            0x04 => {
                put(link, &[0x06]);
                return Ok(out);
            }
            0x01 | 0x02 => {
                let size = if h == 0x02 { 1024 } else { 128 };
                let mut buf = vec![0u8; size + 4];
                let mut got = 0;
                while got < buf.len() {
                    match link.read_timeout(&mut buf[got..], Duration::from_secs(1)) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
                let data = &buf[2..2 + size];
                let crc_ok =
                    got == buf.len() && buf[0] ^ buf[1] == 0xFF && crc16(data).to_be_bytes() == buf[2 + size..];
                if !crc_ok || (buf[0] == 2 && !refused_block_2) {
                    // Quirk: a burst of NAKs instead of one.
                    refused_block_2 |= buf[0] == 2;
                    *bursts += 1;
                    put(link, &[0x15, 0x15, 0x15]);
                    continue;
                }
                if buf[0] == expected {
                    out.extend_from_slice(data);
                    expected = expected.wrapping_add(1);
                }
                put(link, &[0x06]);
                if buf[0] == 3 {
                    // Quirk: a stray `C` during the transfer.
                    std::thread::sleep(Duration::from_millis(5));
                    put(link, b"C");
                }
            }
            _ => {}
        }
    }
}

fn check_header(img: &[u8]) -> Result<Vec<u8>, String> {
    let u = |o: usize| u32::from_le_bytes([img[o], img[o + 1], img[o + 2], img[o + 3]]);
    if img.len() < 0x400 || u(0) != 0x240 || u(0x28C) != 0x400 {
        return Err("no StarFive header".into());
    }
    let size = u(0x288) as usize;
    let payload = img.get(0x400..0x400 + size).ok_or("short image")?;
    if crc32(payload) != u(0x290) {
        return Err("payload crc32 mismatch".into());
    }
    Ok(img[..0x400 + size].to_vec())
}

fn run(mut link: TTYPort) -> Result<RomResult, String> {
    let mut bursts = 0;
    let spl = check_header(&rom_receive(&mut link, &mut bursts)?)?;
    put(
        &mut link,
        b"\r\nU-Boot SPL 2024.01 (Jan 01 2026 - 00:00:00 +0000)\r\nDDR version: dc2e84f0.\r\nTrying to boot from UART\r\n",
    );
    let files = ymodem::receive(&mut link, &ymodem::ReceiveOptions::default(), &Silent).map_err(|e| e.to_string())?;
    let fit = files.into_iter().next().ok_or("no FIT")?.data;
    put(
        &mut link,
        format!(
            "Loaded {} bytes\r\n\r\nU-Boot 2024.01 (Jan 01 2026)\r\n\r\nHit any key to stop autoboot:  2 ",
            fit.len()
        )
        .as_bytes(),
    );
    let flash = mini_uboot(&mut link);
    Ok(RomResult { spl, fit, nak_bursts: bursts, flash })
}

const RAM_BASE: u64 = 0x8000_0000;
const FLASH_SIZE: usize = 16 << 20;

/// Just enough of U-Boot for the SPI NOR flash plan: `printenv`, `sf probe|update|read`,
/// `loady`, `crc32`, `mw.b`; echo and `=> ` prompts. Runs until the line is idle for 3 s after a
/// command, and returns the SPI NOR contents.
fn mini_uboot(link: &mut TTYPort) -> Vec<u8> {
    let mut ram = vec![0u8; 64 << 20];
    let mut flash = vec![0xFFu8; FLASH_SIZE];
    let mut line = Vec::new();
    let mut stopped = false;
    let mut last_input = Instant::now();
    let mut used = false;
    loop {
        let idle = if used { 3 } else { 30 };
        if last_input.elapsed() > Duration::from_secs(idle) {
            return flash;
        }
        let Some(b) = byte(link, Duration::from_millis(100)) else {
            continue;
        };
        last_input = Instant::now();
        if !stopped {
            stopped = true;
            put(link, b"\r\n=> ");
            continue;
        }
        match b {
            0x03 => {
                line.clear();
                put(link, b"<INTERRUPT>\r\n=> ");
            }
            b'\r' => {
                put(link, b"\r\n");
                let cmd = String::from_utf8_lossy(&line).to_string();
                line.clear();
                used = true;
                let out = command(link, &cmd, &mut ram, &mut flash);
                put(link, out.as_bytes());
                put(link, b"=> ");
            }
            _ => {
                line.push(b);
                put(link, &[b]);
            }
        }
    }
}

fn hex(s: Option<&str>) -> usize {
    s.and_then(|v| usize::from_str_radix(v.trim_start_matches("0x"), 16).ok()).unwrap_or(usize::MAX)
}

fn command(link: &mut TTYPort, cmd: &str, ram: &mut [u8], flash: &mut [u8]) -> String {
    let w: Vec<&str> = cmd.split_whitespace().collect();
    let at = |a: usize| a.wrapping_sub(RAM_BASE as usize);
    match w.as_slice() {
        ["printenv", "loadaddr"] => "loadaddr=0x82000000\r\n".into(),
        ["sf", "probe"] => "SF: Detected gd25lq128 with page size 256 Bytes, erase size 4 KiB, total 16 MiB\r\n".into(),
        ["loady", a] => {
            let addr = hex(Some(a));
            put(link, format!("## Ready for binary (ymodem) download to 0x{addr:08X} at 115200 bps...\r\n").as_bytes());
            match ymodem::receive(link, &ymodem::ReceiveOptions::default(), &Silent) {
                Ok(files) => {
                    let data = files.into_iter().next().map(|f| f.data).unwrap_or_default();
                    ram[at(addr)..at(addr) + data.len()].copy_from_slice(&data);
                    format!(
                        "## Total Size      = 0x{:08x} = {} Bytes\r\n## Start Addr      = 0x{addr:08X}\r\n",
                        data.len(),
                        data.len()
                    )
                }
                Err(e) => format!("{e}\r\n## Binary (ymodem) download aborted\r\n"),
            }
        }
        ["crc32", a, l] => {
            let (addr, len) = (hex(Some(a)), hex(Some(l)));
            let v = crc32(&ram[at(addr)..at(addr) + len]);
            format!("crc32 for {addr:08x} ... {:08x} ==> {v:08x}\r\n", addr + len - 1)
        }
        ["sf", "update", a, o, l] => {
            let (addr, off, len) = (hex(Some(a)), hex(Some(o)), hex(Some(l)));
            if off + len > flash.len() {
                return "ERROR: attempting update past flash size\r\n".into();
            }
            flash[off..off + len].copy_from_slice(&ram[at(addr)..at(addr) + len]);
            format!("{len} bytes written, 0 bytes skipped in 0.1s, speed 100 B/s\r\n")
        }
        ["mw.b", a, v, l] => {
            let (addr, val, len) = (hex(Some(a)), hex(Some(v)), hex(Some(l)));
            ram[at(addr)..at(addr) + len].fill(val as u8);
            String::new()
        }
        ["sf", "read", a, o, l] => {
            let (addr, off, len) = (hex(Some(a)), hex(Some(o)), hex(Some(l)));
            let (r, f) = (at(addr), off);
            ram[r..r + len].copy_from_slice(&flash[f..f + len]);
            format!("device 0 offset 0x{off:x}, size 0x{len:x}\r\nSF: {len} bytes @ 0x{off:x} Read: OK\r\n")
        }
        _ => format!("Unknown command '{}' - try 'help'\r\n", w.first().unwrap_or(&"")),
    }
}

impl RomSim {
    pub fn start() -> RomSim {
        let (master, slave) = TTYPort::pair().expect("pty pair");
        let port = serialport::SerialPort::name(&slave).expect("pty name");
        std::mem::forget(slave);
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let _ = tx.send(run(master));
        });
        RomSim { port, result: rx, _thread: thread }
    }
}
