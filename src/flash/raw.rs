//! The raw path of one chunk: `loady` of its bytes, a board-side `crc32` of RAM, the device
//! write (`virtio`/`mmc write`, `sf update`), and the read-back into cleared RAM with `crc32`
//! again; plus [`checked`], a console command whose error answer fails the flash.

use std::time::Duration;

use super::chunks::SECTOR;
use super::crc::crc32;
use super::error::FlashError;
use super::progress::note;
use super::steps::{FlashOptions, FlashStep, Target};
use super::uboot::{Console, board_error};
use crate::Result;
use crate::vocab::Reporter;

/// Runs a command and fails with the board's words when it reports an error.
pub(crate) fn checked(con: &mut Console<'_>, cmd: &str, timeout: Duration) -> Result<String> {
    let out = con.run_with(cmd, timeout)?;
    if let Some(line) = board_error(&out) {
        return Err(FlashError::UbootCommand { cmd: cmd.to_string(), line: line.to_string() }.into());
    }
    Ok(out)
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
