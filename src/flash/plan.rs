//! Flash steps and their execution through the U-Boot console: attach, console setup, the RAM
//! window and the board's commands; per step, preflight checks, then the chunks (`whole`, or
//! `raw` for SPI NOR without `unzip`), each proven by a read-back CRC before success is
//! claimed; then the optional boot check.

use std::time::{Duration, Instant};

use super::boot::boot_and_watch;
use super::chunks::SECTOR;
use super::crc::crc32;
use super::error::FlashError;
use super::link::{Counting, SerialLink};
use super::progress::note;
use super::raw::{checked, write_chunk};
pub use super::steps::{FlashOptions, FlashReport, FlashStep, StepReport, Target};
use super::uboot::Console;
use super::whole::{self, Window, Writer, check_window};
use crate::Result;
use crate::vocab::Reporter;

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
    // The load and read-back areas hold the largest chunk a step really has (an image smaller
    // than --chunk is one chunk of its own size).
    let largest = steps
        .iter()
        .zip(images)
        .map(|(s, d)| (whole::chunk_size(&s.target, chunk).min((d.len() as u64).next_multiple_of(SECTOR)), s, d))
        .max_by_key(|(room, ..)| *room);
    let room = largest.as_ref().map_or(chunk, |(room, ..)| *room);
    let scratch = opts.scratch_addr.unwrap_or(load + room);
    let window = Window { load, scratch, chunk, room };
    if let Some((_, step, data)) = largest {
        check_window(con, &window, (step, data.len() as u64), reporter)?;
    }
    let writer = Writer { caps: whole::detect(con, reporter)?, window, opts, reporter };
    // Every step is checked against its device before the first byte is written, so a later
    // step that does not fit cannot leave an earlier one half-flashed.
    for (step, data) in steps.iter().zip(images) {
        prepare(con, step, data.len() as u64, chunk, reporter)?;
    }
    let mut reports = Vec::new();
    for (step, data) in steps.iter().zip(images) {
        if steps.len() > 1 {
            // Select this step's device again: the checks above left the last step's selected,
            // and `virtio`/`mmc` `write` and `read` act on the selected device.
            prepare(con, step, data.len() as u64, chunk, &crate::vocab::Silent)?;
        }
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

/// Selects the device and checks that the image fits it; a misfit names the first chunk (of
/// `chunk` bytes) that would pass the device's end.
fn prepare(con: &mut Console<'_>, step: &FlashStep, len: u64, chunk: u64, reporter: &dyn Reporter) -> Result<()> {
    // The chunk holding the device's first byte past its end (`fits` image bytes fit).
    let span = |fits: u64| {
        crate::flash::chunks::span_at(
            len,
            whole::chunk_size(&step.target, chunk),
            whole::tail_apart(&step.target),
            fits,
        )
    };
    match &step.target {
        Target::SpiNor { offset, .. } => {
            let out = checked(con, "sf probe", Duration::from_secs(20))?;
            if !out.contains("SF: Detected") {
                return Err(FlashError::NoSpiNor { answer: out.trim().to_string() }.into());
            }
            if let Some(total) = parse_sf_total(&out)
                && offset + len > total
            {
                let chunk = span(total.saturating_sub(*offset));
                return Err(FlashError::PastSpiNor { name: step.name.clone(), end: offset + len, total, chunk }.into());
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
                        chunk: span(cap.saturating_sub(*byte_offset)),
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
