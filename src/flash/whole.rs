//! Whole images onto block devices (`virtio`, `mmc`), chunk by chunk: zero chunks cross the line
//! as nothing (the board zeroes RAM and writes that), the others as gzip members that U-Boot's
//! `gzwrite` inflates straight onto the device, or raw when the board has no `gzwrite` or a
//! chunk does not compress. Every chunk is then proven by a board-side `crc32` of the range read
//! back into RAM that was cleared first, and recorded in the progress file, so `--resume` goes on
//! after the last proven chunk.

use std::path::Path;
use std::time::Duration;

use super::chunks::{self, Chunk, Payload, SECTOR};
use super::error::FlashError;
use super::progress::note;
use super::raw::{checked, write_chunk};
use super::resume::Progress;
use super::steps::{FlashOptions, FlashStep, StepReport, Target};
use super::uboot::{Console, board_error};
use crate::vocab::Reporter;
use crate::{Error, Result};

/// SPI NOR chunks are multiples of this (erase sectors are 4 or 64 KiB).
const NOR_ALIGN: u64 = 64 << 10;

/// What the board can do, asked on its console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub gzwrite: bool,
    /// `unzip` (RAM to RAM): the compressed path to SPI NOR (`sf update` from the output).
    pub unzip: bool,
}

/// Asks the console which of `gzwrite` and `unzip` exist (`help gzwrite`, `help unzip`).
pub fn detect(con: &mut Console<'_>, reporter: &dyn Reporter) -> Result<Caps> {
    Ok(Caps {
        gzwrite: has(con, "gzwrite", &["gzwrite <interface>", "unzip and write"], reporter)?,
        unzip: has(con, "unzip", &["unzip srcaddr", "unzip a memory region"], reporter)?,
    })
}

/// An answer that is neither the usage nor "Unknown command" (a noisy line) is asked again;
/// no clear yes means no.
fn has(con: &mut Console<'_>, cmd: &str, usage: &[&str], reporter: &dyn Reporter) -> Result<bool> {
    for _ in 0..3 {
        let out = con.run(&format!("help {cmd}"))?;
        if usage.iter().any(|u| out.contains(u)) {
            return Ok(true);
        }
        if out.to_ascii_lowercase().contains("unknown command") {
            note(reporter, &format!("this U-Boot has no {cmd}: its chunks go raw (zero chunks are still not sent)"));
            return Ok(false);
        }
    }
    note(reporter, &format!("no clear answer to `help {cmd}`: taken as missing"));
    Ok(false)
}

/// The device a step writes to: U-Boot's interface name, device number and byte offset.
/// `sf` stands for SPI NOR (the device `sf probe` selected).
fn device(target: &Target) -> (&'static str, u32, u64) {
    match target {
        Target::Virtio { dev, byte_offset } => ("virtio", *dev, *byte_offset),
        Target::Mmc { dev, byte_offset } => ("mmc", *dev, *byte_offset),
        Target::SpiNor { offset, .. } => ("sf", 0, *offset),
    }
}

/// The RAM a round needs, and where it lives.
pub struct Window {
    pub load: u64,
    pub scratch: u64,
    /// The chunk size asked for (`--chunk`, whole sectors).
    pub chunk: u64,
    /// The largest chunk any step uses (SPI NOR rounds up to erase sectors): the size of the
    /// load and the read-back areas.
    pub room: u64,
}

/// The chunk size of a step on `target` when `chunk` is asked for: SPI NOR chunks start on
/// erase sectors (`sf update` erases whole ones); 64 KiB covers the usual 4 and 64 KiB sectors.
pub fn chunk_size(target: &Target, chunk: u64) -> u64 {
    match target {
        Target::SpiNor { .. } => (chunk / NOR_ALIGN).max(1) * NOR_ALIGN,
        _ => chunk,
    }
}

/// Whether a step's image tail shorter than a sector is a chunk of its own (block devices).
pub fn tail_apart(target: &Target) -> bool {
    !matches!(target, Target::SpiNor { .. })
}

/// Checks the load and read-back areas against the board's free RAM (`bdinfo`'s DRAM bank
/// and its reserved regions). Boards whose `bdinfo` says less are trusted. `first` is the
/// step with the largest chunk and its image's length: its first chunk is named in the error.
pub fn check_window(
    con: &mut Console<'_>,
    w: &Window,
    first: (&FlashStep, u64),
    reporter: &dyn Reporter,
) -> Result<()> {
    let out = con.run("bdinfo")?;
    let Some(end) = free_end(&out, w.load) else {
        note(reporter, "could not read the board's RAM layout from `bdinfo`; trusting --chunk and --load-addr");
        return Ok(());
    };
    let need_end = w.scratch + w.room;
    if need_end > end {
        let (step, len) = first;
        let size = chunk_size(&step.target, w.chunk);
        return Err(FlashError::RamWindow {
            step: step.name.clone(),
            first: chunks::span_at(len, size, tail_apart(&step.target), 0),
            chunk: w.room,
            load: w.load,
            need_end,
            window_end: end,
        }
        .into());
    }
    Ok(())
}

/// The end of the free RAM that starts at or below `addr`: the DRAM bank's end, or the first
/// reserved region above `addr`. `None` when `bdinfo` does not say, or `addr` is reserved.
pub fn free_end(bdinfo: &str, addr: u64) -> Option<u64> {
    let val = |l: &str| l.split('=').nth(1).and_then(|v| parse_hex(v.trim()));
    let start = bdinfo.lines().find(|l| l.trim_start().starts_with("-> start")).and_then(val)?;
    let size = bdinfo.lines().find(|l| l.trim_start().starts_with("-> size")).and_then(val)?;
    let mut end = start + size;
    if addr < start || addr >= end {
        return None;
    }
    for l in bdinfo.lines().filter(|l| l.trim_start().starts_with("reserved[")) {
        let Some(range) = l.split('[').nth(2).and_then(|r| r.split(']').next()) else { continue };
        let mut it = range.split('-').map(|v| parse_hex(v.trim()));
        let (Some(Some(lo)), Some(Some(hi))) = (it.next(), it.next()) else { continue };
        if lo <= addr && addr <= hi {
            return None;
        }
        if lo > addr {
            end = end.min(lo);
        }
    }
    Some(end)
}

fn parse_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x").unwrap_or(s), 16).ok()
}

/// Parses gzwrite's last line, `\t4194304 bytes, crc 0x56bebb8e`.
pub fn parse_gzwrite(out: &str) -> Option<(u64, u32)> {
    let line = out.lines().rev().find(|l| l.contains(" bytes, crc 0x"))?;
    let mut it = line.trim().split(" bytes, crc 0x");
    let n = it.next()?.rsplit(['\r', '\t', ' ']).next()?.parse().ok()?;
    let crc = u32::from_str_radix(it.next()?.trim(), 16).ok()?;
    Some((n, crc))
}

/// An answer of gzwrite that says it failed.
fn gzwrite_error(out: &str) -> Option<&str> {
    board_error(out).or_else(|| {
        out.lines().map(str::trim).find(|l| {
            let low = l.to_ascii_lowercase();
            low.starts_with("gzwrite:")
                || low.contains("mismatch")
                || low.contains("doesn't match")
                || low.contains("error")
        })
    })
}

/// Per-run state of the chunk writer.
pub struct Writer<'r> {
    pub caps: Caps,
    pub window: Window,
    pub opts: &'r FlashOptions,
    pub reporter: &'r dyn Reporter,
}

impl Writer<'_> {
    /// Writes and proves one block-device step chunk by chunk.
    pub fn step(&self, con: &mut Console<'_>, step: &FlashStep, data: &[u8]) -> Result<StepReport> {
        let (iface, dev, base) = device(&step.target);
        let gzip = if iface == "sf" { self.caps.unzip } else { self.caps.gzwrite };
        let size = chunk_size(&step.target, self.window.chunk);
        let chunks = chunks::cut(data, size, gzip, tail_apart(&step.target));
        let sent: u64 = chunks.iter().map(Chunk::sent_len).sum();
        let zeros = chunks.iter().filter(|c| c.payload == Payload::Zero).count();
        note(
            self.reporter,
            &format!(
                "{}: {} bytes in {} chunk(s) of up to {} bytes: {} zero (not sent), {} bytes to send{}",
                step.name,
                data.len(),
                chunks.len(),
                size,
                zeros,
                sent,
                match (gzip, iface) {
                    (true, "sf") => " (gzip, for unzip + sf update)",
                    (true, _) => " (gzip, for gzwrite)",
                    _ => " (raw)",
                }
            ),
        );
        let target = format!("{iface} {dev} @ {base:#x}");
        let mut progress = Progress::open(&step.file, data, size, &target, self.opts.resume, self.reporter);
        let mut report = StepReport {
            name: step.name.clone(),
            bytes: data.len() as u64,
            crc32: super::crc::crc32(data),
            chunks: chunks.len() as u32,
            ..StepReport::default()
        };
        for c in &chunks {
            let mut run = || -> Result<bool> {
                if progress.is_proven(c.index) {
                    if self.prove(con, step, (iface, base), c, data)? == c.crc32 {
                        return Ok(true);
                    }
                    note(self.reporter, &format!("{}: no longer on the device; writing it again", self.label(step, c)));
                }
                self.write(con, step, (iface, dev, base), c, data)?;
                let back = self.prove(con, step, (iface, base), c, data)?;
                if back != c.crc32 {
                    return Err(FlashError::ReadBackCrc { label: self.label(step, c), back, want: c.crc32 }.into());
                }
                Ok(false)
            };
            match run() {
                Ok(skipped) => {
                    if skipped {
                        report.resumed_chunks += 1;
                    } else {
                        report.sent_bytes += c.sent_len();
                        report.zero_chunks += u32::from(c.payload == Payload::Zero);
                    }
                    if !progress.is_proven(c.index) {
                        progress.prove(c.index, self.reporter);
                    }
                }
                Err(e) => {
                    progress.forget(c.index);
                    return Err(chunk_error(step, c, chunks.len(), e));
                }
            }
        }
        report.progress_file = progress.path().map(Path::to_path_buf);
        Ok(report)
    }

    fn label(&self, step: &FlashStep, c: &Chunk) -> String {
        format!("{} chunk {} @ {:#x}", step.name, c.index + 1, c.offset)
    }

    /// Puts chunk `c` on the device (no proof yet).
    fn write(
        &self,
        con: &mut Console<'_>,
        step: &FlashStep,
        (iface, dev, base): (&str, u32, u64),
        c: &Chunk,
        data: &[u8],
    ) -> Result<()> {
        let (load, len) = (self.window.load, c.len);
        let long = Duration::from_secs(120 + len / 20_000);
        let label = self.label(step, c);
        match &c.payload {
            Payload::Zero => {
                checked(con, &format!("mw.b {load:x} 0 {len:x}"), long)?;
                let (blk, cnt) = ((base + c.offset) / SECTOR, len / SECTOR);
                if iface == "sf" {
                    checked(con, &format!("sf update {load:x} {:x} {len:x}", base + c.offset), long)?;
                } else {
                    checked(con, &format!("{iface} write {load:x} {blk:x} {cnt:x}"), long)?;
                }
                note(self.reporter, &format!("{label}: {len} zero bytes written from cleared RAM"));
            }
            Payload::Gzip(gz) => {
                let baud = self.opts.transfer_baud.map(|b| (b, self.opts.console_baud));
                con.loady(load, &format!("{}-{}.gz", step.name, c.index + 1), gz, baud, self.reporter)?;
                let want = super::crc::crc32(gz);
                let got = con.crc32_is(load, gz.len() as u64, want)?;
                if got != want {
                    return Err(FlashError::RamCrc { label, got, want }.into());
                }
                if iface == "sf" {
                    return self.unzip_to_nor(con, &label, c, gz.len() as u64, base + c.offset, long);
                }
                let wbuf = chunks::wbuf_for(len);
                let cmd =
                    format!("gzwrite {iface} {dev} {load:x} {:x} {wbuf:x} {:x} {len:x}", gz.len(), base + c.offset);
                self.gzwrite(con, &label, &cmd, c, gz.len(), long)?;
            }
            Payload::Raw => {
                let piece = c.bytes(data);
                write_chunk(con, step, c.offset, piece, load, self.window.scratch, self.opts, self.reporter)?;
            }
        }
        Ok(())
    }

    /// Reads chunk `c`'s range back into RAM cleared with a byte the chunk cannot consist of and
    /// compares the board's `crc32` with the chunk's.
    fn prove(
        &self,
        con: &mut Console<'_>,
        step: &FlashStep,
        (iface, base): (&str, u64),
        c: &Chunk,
        data: &[u8],
    ) -> Result<u32> {
        let (scratch, len) = (self.window.scratch, c.len);
        let long = Duration::from_secs(120 + len / 20_000);
        let fill = chunks::fill_byte(c.bytes(data));
        checked(con, &format!("mw.b {scratch:x} {fill:x} {len:x}"), long)?;
        let (blk, cnt) = ((base + c.offset) / SECTOR, len.div_ceil(SECTOR));
        if iface == "sf" {
            checked(con, &format!("sf read {scratch:x} {:x} {len:x}", base + c.offset), long)?;
        } else {
            checked(con, &format!("{iface} read {scratch:x} {blk:x} {cnt:x}"), long)?;
        }
        let back = con.crc32_is(scratch, len, c.crc32)?;
        if back == c.crc32 {
            note(self.reporter, &format!("{}: read back, crc32 {back:08x} verified", self.label(step, c)));
        } else {
            note(
                self.reporter,
                &format!("{}: read-back crc32 {back:08x}, expected {:08x}", self.label(step, c), c.crc32),
            );
        }
        Ok(back)
    }
}

impl Writer<'_> {
    /// Runs `gzwrite` and reads its answer. A board error fails the chunk. A size or CRC that
    /// differs from the chunk's is asked again by running the command once more (the member is
    /// still in RAM, checked): a noisy line may have garbled one answer, but two answers that
    /// differ from the chunk mean the board wrote something else. An unreadable answer leaves
    /// the decision to the read-back.
    fn gzwrite(
        &self,
        con: &mut Console<'_>,
        label: &str,
        cmd: &str,
        c: &Chunk,
        gz_len: usize,
        long: Duration,
    ) -> Result<()> {
        let mut differed = false;
        loop {
            let out = con.run_with(cmd, long)?;
            if let Some(line) = gzwrite_error(&out) {
                let (label, cmd, answer) = (label.to_string(), cmd.to_string(), line.to_string());
                return Err(FlashError::GzwriteFailed { label, cmd, answer }.into());
            }
            match parse_gzwrite(&out) {
                Some((n, crc)) if n == c.len && crc == c.crc32 => {
                    let text = format!("{label}: {gz_len} gzip bytes inflated to {n} on the device (crc {crc:08x})");
                    note(self.reporter, &text);
                    return Ok(());
                }
                Some((reported, crc)) if differed => {
                    return Err(FlashError::GzwriteReported {
                        label: label.to_string(),
                        cmd: cmd.to_string(),
                        reported,
                        crc,
                        len: c.len,
                        want: c.crc32,
                    }
                    .into());
                }
                Some((n, crc)) => {
                    differed = true;
                    let text = format!(
                        "{label}: gzwrite reported {n} bytes, crc {crc:08x}, not the chunk's {} bytes, crc {:08x}; running it again",
                        c.len, c.crc32
                    );
                    note(self.reporter, &text);
                }
                // A noisy line can garble the answer: the read-back decides.
                None => {
                    note(self.reporter, &format!("{label}: gzwrite's answer unclear; the read-back decides"));
                    return Ok(());
                }
            }
        }
    }

    /// SPI NOR: `unzip` the gzip member from the load area into the read-back area, check its
    /// size, and `sf update` the flash from there (erasing only the sectors that differ).
    fn unzip_to_nor(
        &self,
        con: &mut Console<'_>,
        label: &str,
        c: &Chunk,
        gz_len: u64,
        off: u64,
        long: Duration,
    ) -> Result<()> {
        let (load, scratch, len) = (self.window.load, self.window.scratch, c.len);
        let cmd = format!("unzip {load:x} {scratch:x} {len:x}");
        let out = checked(con, &cmd, long)?;
        if let Some(n) = parse_unzip(&out)
            && n != len
        {
            return Err(FlashError::GzwriteFailed {
                label: label.to_string(),
                cmd,
                answer: format!("{n} bytes inflated, {len} expected"),
            }
            .into());
        }
        checked(con, &format!("sf update {scratch:x} {off:x} {len:x}"), long)?;
        note(self.reporter, &format!("{label}: {gz_len} gzip bytes inflated to {len} and written with sf update"));
        Ok(())
    }
}

/// Parses unzip's `Uncompressed size: 4096 = 0x1000`.
pub fn parse_unzip(out: &str) -> Option<u64> {
    let line = out.lines().find(|l| l.contains("Uncompressed size:"))?;
    line.split(':').nth(1)?.split('=').next()?.trim().parse().ok()
}

fn chunk_error(step: &FlashStep, c: &Chunk, count: usize, e: Error) -> Error {
    if crate::vocab::cancel::interrupted() {
        return e;
    }
    FlashError::ChunkFailed {
        step: step.name.clone(),
        index: c.index + 1,
        count,
        offset: c.offset,
        end: c.offset + c.len,
        source: Box::new(e),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BDINFO: &str = "DRAM bank   = 0x0000000000000000\n-> start    = 0x0000000080000000\n-> size     = 0x0000000010000000\nrelocaddr   = 0x000000008ff57000\nlmb_dump_all:\n memory.cnt  = 0x1\n memory[0]\t[0x80000000-0x8fffffff], 0x10000000 bytes flags: 0\n reserved.cnt  = 0x3\n reserved[0]\t[0x80000000-0x8005ffff], 0x00060000 bytes flags: 4\n reserved[1]\t[0x8e731000-0x8fffffff], 0x018cf000 bytes flags: 0\n reserved[2]\t[0x8f7341b0-0x8fffffff], 0x008cbe50 bytes flags: 0\n";

    #[test]
    fn the_free_window_ends_at_the_first_reservation_above_the_load_address() {
        assert_eq!(free_end(BDINFO, 0x8020_0000), Some(0x8e73_1000));
        assert_eq!(free_end(BDINFO, 0x8000_1000), None, "inside OpenSBI's reservation");
        assert_eq!(free_end(BDINFO, 0x4000_0000), None, "outside the bank");
        assert_eq!(free_end("nothing here", 0x8020_0000), None);
    }

    #[test]
    fn gzwrite_answers_are_read() {
        let ok = "\n261632/4194304\r4194304/4194304\r\n\t4194304 bytes, crc 0x56bebb8e\n";
        assert_eq!(parse_gzwrite(ok), Some((4_194_304, 0x56be_bb8e)));
        assert_eq!(gzwrite_error(ok), None);
        assert!(gzwrite_error("size of 100 doesn't match trailer low bits 400000").is_some());
        assert!(gzwrite_error("gzwrite: uncompressed size 4194304 exceeds device size").is_some());
        assert!(gzwrite_error("Unknown command 'gzwrite' - try 'help'").is_some());
        assert_eq!(parse_gzwrite("garbled"), None);
        assert_eq!(parse_unzip("Uncompressed size: 4096 = 0x1000\n"), Some(4096));
    }
}
