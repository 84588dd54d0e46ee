//! Flash steps and their execution through the U-Boot console: per step, preflight checks, then
//! per chunk `loady` + `crc32` of the loaded data, the write command, a read-back into scratch
//! RAM and a `crc32` there compared with the local CRC. Success is claimed only after that.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::boot::{BootCheck, BootOutcome, boot_and_watch};
use super::chunks::SECTOR;
use super::crc::crc32;
use super::error::FlashError;
use super::link::{Counting, SerialLink};
use super::progress::note;
use super::uboot::{Console, ConsoleOptions, board_error};
use super::whole::{self, Window, Writer, check_window};
use crate::Result;
use crate::vocab::Reporter;

/// Where an image goes on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// SPI NOR flash through `sf`: byte offset and the size of the region reserved for it.
    SpiNor { offset: u64, size_limit: u64 },
    /// An MMC/SD device through `mmc`, at a byte offset (a multiple of 512).
    Mmc { dev: u32, byte_offset: u64 },
    /// A virtio block device through `virtio` (the QEMU boards), at a byte offset.
    Virtio { dev: u32, byte_offset: u64 },
}

/// One image to put on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashStep {
    /// A short name for messages, e.g. `spl` or `disk`.
    pub name: String,
    pub file: PathBuf,
    pub target: Target,
}

/// How to drive the board.
#[derive(Debug, Clone)]
pub struct FlashOptions {
    pub console: ConsoleOptions,
    /// Bytes loaded and written per round; must fit the board's RAM twice (load + read-back).
    pub chunk: u64,
    /// Load address; default: U-Boot's `loadaddr`, else `kernel_addr_r`.
    pub load_addr: Option<u64>,
    /// Read-back address; default: load address + chunk.
    pub scratch_addr: Option<u64>,
    /// Run `loady` at this speed, switching back to `console_baud` after each transfer.
    pub transfer_baud: Option<u32>,
    pub console_baud: u32,
    /// Skip the chunks an earlier run proved (block devices; see `resume`).
    pub resume: bool,
    /// Start the board after the last step and watch for its marker.
    pub boot: Option<BootCheck>,
    /// U-Boot commands run once at the prompt before anything else (the board's
    /// `flash.console-setup`).
    pub setup: Vec<String>,
}

impl Default for FlashOptions {
    fn default() -> Self {
        FlashOptions {
            console: ConsoleOptions::default(),
            chunk: 4 << 20,
            load_addr: None,
            scratch_addr: None,
            transfer_baud: None,
            console_baud: 115_200,
            resume: false,
            boot: None,
            setup: Vec::new(),
        }
    }
}

/// What was written and proven.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StepReport {
    pub name: String,
    pub bytes: u64,
    pub crc32: u32,
    pub chunks: u32,
    /// Payload bytes this run sent for the step (compressed where gzwrite took them).
    pub sent_bytes: u64,
    /// Chunks that were all zeros (nothing sent).
    pub zero_chunks: u32,
    /// Chunks an earlier run proved, re-proven by read-back and not sent again.
    pub resumed_chunks: u32,
    /// The progress file `--resume` reads.
    pub progress_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlashReport {
    pub steps: Vec<StepReport>,
    /// Seconds from attaching to the last proof (the boot check excluded).
    pub seconds: f64,
    /// Bytes sent to the board on the line, commands and protocol framing included.
    pub wire_bytes: u64,
    /// The boot check, when asked for.
    pub boot: Option<BootOutcome>,
}

/// Flashes every step through U-Boot on `port` and proves each by CRC read-back.
pub fn flash(
    port: &mut dyn SerialLink,
    steps: &[FlashStep],
    opts: &FlashOptions,
    reporter: &dyn Reporter,
) -> Result<FlashReport> {
    let started = Instant::now();
    let images = read_images(steps)?;
    note(reporter, &format!("waiting for the U-Boot prompt on {}", port.name()));
    let mut line = Counting::new(port);
    let mut con = Console::attach(&mut line, opts.console.clone())?;
    for cmd in &opts.setup {
        note(reporter, &format!("console setup: {cmd}"));
        checked(&mut con, cmd, Duration::from_secs(20))?;
    }
    let steps = flash_at_prompt(&mut con, steps, &images, opts, reporter)?;
    let seconds = started.elapsed().as_secs_f64();
    let boot = match &opts.boot {
        Some(check) => Some(boot_and_watch(&mut con, check, reporter)?),
        None => None,
    };
    Ok(FlashReport { steps, seconds, wire_bytes: line.sent, boot })
}

/// Reads the files and runs the checks that need no board.
pub fn read_images(steps: &[FlashStep]) -> Result<Vec<Vec<u8>>> {
    let mut images = Vec::new();
    for s in steps {
        let data = std::fs::read(&s.file).map_err(|source| FlashError::ReadImage {
            file: s.file.clone(),
            name: s.name.clone(),
            source,
        })?;
        match &s.target {
            Target::SpiNor { size_limit, .. } if data.len() as u64 > *size_limit => {
                return Err(FlashError::ImageTooLarge {
                    file: s.file.clone(),
                    size: data.len(),
                    name: s.name.clone(),
                    limit: *size_limit,
                }
                .into());
            }
            Target::Mmc { byte_offset, .. } | Target::Virtio { byte_offset, .. } if byte_offset % SECTOR != 0 => {
                return Err(FlashError::MisalignedOffset {
                    name: s.name.clone(),
                    offset: *byte_offset,
                    sector: SECTOR,
                }
                .into());
            }
            _ => {}
        }
        if data.is_empty() {
            return Err(FlashError::EmptyImage { file: s.file.clone() }.into());
        }
        images.push(data);
    }
    Ok(images)
}

/// The flash plan with a console already at its prompt.
pub fn flash_at_prompt(
    con: &mut Console<'_>,
    steps: &[FlashStep],
    images: &[Vec<u8>],
    opts: &FlashOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<StepReport>> {
    let load = match opts.load_addr {
        Some(a) => a,
        None => default_load_addr(con)?,
    };
    let chunk = opts.chunk.max(SECTOR) / SECTOR * SECTOR;
    let scratch = opts.scratch_addr.unwrap_or(load + chunk);
    let window = Window { load, scratch, chunk };
    check_window(con, &window, reporter)?;
    let writer = Writer { caps: whole::detect(con, reporter)?, window, opts, reporter };
    let mut reports = Vec::new();
    for (step, data) in steps.iter().zip(images) {
        prepare(con, step, data.len() as u64, reporter)?;
        // SPI NOR without `unzip` keeps the raw path below (loady, sf update, read back).
        if writer.caps.unzip || !matches!(step.target, Target::SpiNor { .. }) {
            let report = writer.step(con, step, data)?;
            note(
                reporter,
                &format!(
                    "{}: {} bytes written and verified (crc32 {:08x}), {} bytes sent",
                    report.name, report.bytes, report.crc32, report.sent_bytes
                ),
            );
            reports.push(report);
            continue;
        }
        let mut chunks = 0;
        for (i, piece) in data.chunks(chunk as usize).enumerate() {
            let at = i as u64 * chunk;
            write_chunk(con, step, at, piece, load, scratch, opts, reporter)?;
            chunks += 1;
        }
        let report = StepReport {
            name: step.name.clone(),
            bytes: data.len() as u64,
            crc32: crc32(data),
            chunks,
            sent_bytes: data.len() as u64,
            ..StepReport::default()
        };
        note(
            reporter,
            &format!("{}: {} bytes written and verified (crc32 {:08x})", report.name, report.bytes, report.crc32),
        );
        reports.push(report);
    }
    Ok(reports)
}

fn default_load_addr(con: &mut Console<'_>) -> Result<u64> {
    for var in ["loadaddr", "kernel_addr_r"] {
        if let Some(v) = con.getenv(var)?
            && let Some(a) = parse_hex(&v)
        {
            return Ok(a);
        }
    }
    Err(FlashError::NoLoadAddress.into())
}

fn parse_hex(s: &str) -> Option<u64> {
    let s = s.trim();
    u64::from_str_radix(s.strip_prefix("0x").unwrap_or(s), 16).ok()
}

/// Runs a command and fails with the board's words when it reports an error.
pub(crate) fn checked(con: &mut Console<'_>, cmd: &str, timeout: Duration) -> Result<String> {
    let out = con.run_with(cmd, timeout)?;
    if let Some(line) = board_error(&out) {
        return Err(FlashError::UbootCommand { cmd: cmd.to_string(), line: line.to_string() }.into());
    }
    Ok(out)
}

/// Selects the device and checks that the image fits it.
fn prepare(con: &mut Console<'_>, step: &FlashStep, len: u64, reporter: &dyn Reporter) -> Result<()> {
    match &step.target {
        Target::SpiNor { offset, .. } => {
            let out = checked(con, "sf probe", Duration::from_secs(20))?;
            if !out.contains("SF: Detected") {
                return Err(FlashError::NoSpiNor { answer: out.trim().to_string() }.into());
            }
            if let Some(total) = parse_sf_total(&out)
                && offset + len > total
            {
                return Err(FlashError::PastSpiNor { name: step.name.clone(), end: offset + len, total }.into());
            }
            note(reporter, out.lines().find(|l| l.contains("SF: Detected")).unwrap_or(""));
        }
        Target::Mmc { dev, byte_offset } => {
            checked(con, &format!("mmc dev {dev}"), Duration::from_secs(20))?;
            let _ = byte_offset;
        }
        Target::Virtio { dev, byte_offset } => {
            checked(con, "virtio scan", Duration::from_secs(20))?;
            checked(con, &format!("virtio dev {dev}"), Duration::from_secs(20))?;
            let info = checked(con, "virtio info", Duration::from_secs(20))?;
            if let Some(blocks) = parse_capacity_blocks(&info, *dev) {
                let cap = blocks * SECTOR;
                if byte_offset + len > cap {
                    return Err(FlashError::DoesNotFit {
                        file: step.file.clone(),
                        len,
                        offset: *byte_offset,
                        dev: *dev,
                        capacity: cap,
                    }
                    .into());
                }
            }
        }
    }
    Ok(())
}

/// `SF: Detected gd25lq128 with page size 256 Bytes, erase size 4 KiB, total 16 MiB`.
pub fn parse_sf_total(out: &str) -> Option<u64> {
    let t = out.split("total ").nth(1)?;
    let mut it = t.split_whitespace();
    let n: u64 = it.next()?.parse().ok()?;
    let mul = match it.next()?.trim_end_matches(',') {
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    Some(n * mul)
}

/// `Capacity: 8.0 MB = 0.0 GB (16384 x 512)` in the block of `Device <dev>:`.
pub fn parse_capacity_blocks(out: &str, dev: u32) -> Option<u64> {
    let start = out.find(&format!("Device {dev}:"))?;
    let cap = &out[start..];
    let line = cap.lines().find(|l| l.contains("Capacity:"))?;
    let inner = line.rsplit('(').next()?.split(')').next()?;
    let mut parts = inner.split(" x ");
    let blocks: u64 = parts.next()?.trim().parse().ok()?;
    let bsize: u64 = parts.next()?.trim().parse().ok()?;
    Some(blocks * bsize / SECTOR)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn write_chunk(
    con: &mut Console<'_>,
    step: &FlashStep,
    at: u64,
    piece: &[u8],
    load: u64,
    scratch: u64,
    opts: &FlashOptions,
    reporter: &dyn Reporter,
) -> Result<()> {
    let len = piece.len() as u64;
    let want = crc32(piece);
    let blocks = len.div_ceil(SECTOR);
    let (dev_cmd, first_block) = match &step.target {
        Target::SpiNor { .. } => ("sf", 0),
        Target::Mmc { byte_offset, .. } => ("mmc", (byte_offset + at) / SECTOR),
        Target::Virtio { byte_offset, .. } => ("virtio", (byte_offset + at) / SECTOR),
    };
    let long = Duration::from_secs(120 + len / 20_000);
    // A partial last sector keeps the device's bytes after the image: read that sector to the
    // load area first; loady then overwrites only the image's part of it.
    if dev_cmd != "sf" && !len.is_multiple_of(SECTOR) {
        let last = first_block + blocks - 1;
        let cmd = format!("{dev_cmd} read {:x} {last:x} 1", load + (blocks - 1) * SECTOR);
        checked(con, &cmd, long)?;
    }
    let label = format!("{} @ {:#x}", step.name, at);
    let baud = opts.transfer_baud.map(|b| (b, opts.console_baud));
    con.loady(load, &step.name, piece, baud, reporter)?;
    let got = con.crc32_is(load, len, want)?;
    if got != want {
        return Err(FlashError::RamCrc { label, got, want }.into());
    }
    note(reporter, &format!("{label}: {len} bytes in RAM, crc32 {want:08x} matches; writing"));
    // Read back into RAM cleared with a byte the chunk cannot consist of: a read that silently
    // did not happen must not find the previous chunk's bytes there.
    let fill = super::chunks::fill_byte(piece);
    match &step.target {
        Target::SpiNor { offset, .. } => {
            let off = offset + at;
            let out = checked(con, &format!("sf update {load:x} {off:x} {len:x}"), long)?;
            if !out.contains("written") {
                note(reporter, &format!("`sf update` answered: {}", out.trim()));
            }
            checked(con, &format!("mw.b {scratch:x} {fill:x} {len:x}"), long)?;
            checked(con, &format!("sf read {scratch:x} {off:x} {len:x}"), long)?;
        }
        _ => {
            let cmd = format!("{dev_cmd} write {load:x} {first_block:x} {blocks:x}");
            // The answer may be garbled on a noisy line; the read-back below decides.
            checked(con, &cmd, long)?;
            checked(con, &format!("mw.b {scratch:x} {fill:x} {len:x}"), long)?;
            let cmd = format!("{dev_cmd} read {scratch:x} {first_block:x} {blocks:x}");
            checked(con, &cmd, long)?;
        }
    }
    let back = con.crc32_is(scratch, len, want)?;
    if back != want {
        return Err(FlashError::ReadBackCrc { label, back, want }.into());
    }
    note(reporter, &format!("{label}: read back, crc32 {back:08x} verified"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn parses_device_sizes() {
        let info = "Device 0: QEMU VirtIO Block Device\n            Type: Hard Disk\n            Capacity: 8.0 MB = 0.0 GB (16384 x 512)\n";
        assert_eq!(parse_capacity_blocks(info, 0), Some(16384));
        assert_eq!(parse_capacity_blocks(info, 1), None);
        assert_eq!(
            parse_sf_total("SF: Detected gd25lq128 with page size 256 Bytes, erase size 4 KiB, total 16 MiB"),
            Some(16 << 20)
        );
    }

    #[test]
    fn oversized_spi_image_is_refused_before_any_board_contact() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("spl.bin");
        std::fs::write(&f, vec![1u8; 2000]).unwrap();
        let step = FlashStep { name: "spl".into(), file: f, target: Target::SpiNor { offset: 0, size_limit: 1000 } };
        let e = read_images(&[step]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("larger than"), "{e}");
    }
}
