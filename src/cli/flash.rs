//! `rvbuild flash`: write a board's images through U-Boot on its serial console and prove each by
//! CRC read-back; `--recovery` first brings a JH7110 board up from its boot ROM over UART.

use std::path::PathBuf;

use crate::Result;
use crate::pipeline::{self, FlashRequest, Flashed};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The board to flash: its profile's flash plan says what goes where.
    pub board: String,
    /// Serial port, or `auto` for the single USB serial adapter.
    #[arg(long, env = "RVBUILD_PORT")]
    pub port: Option<String>,
    /// Image to write: the disk image (QEMU boards) or the U-Boot FIT (JH7110 boards). Like every
    /// file flashed, it is verified against the board (inside too) before the port is opened.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// JH7110: the SPL with its StarFive header (`u-boot-spl.bin.normal.out`).
    #[arg(long)]
    pub spl: Option<PathBuf>,
    /// JH7110: the U-Boot FIT (`u-boot.itb`).
    #[arg(long)]
    pub fit: Option<PathBuf>,
    /// Console baud rate (default: the board's flash.baud).
    #[arg(long)]
    pub baud: Option<u32>,
    /// Switch to this baud rate for each `loady` transfer (and back afterwards).
    #[arg(long)]
    pub transfer_baud: Option<u32>,
    /// JH7110: boot from the ROM's UART mode first (boot pins RGPIO1,RGPIO0 = 1,1).
    #[arg(long)]
    pub recovery: bool,
    /// Seconds to wait for the U-Boot prompt (or the boot ROM).
    #[arg(long, default_value_t = pipeline::flash::DEFAULT_TIMEOUT_S)]
    pub timeout: u64,
    /// Build output directory whose files are flashed (default: ./result-BOARD).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Bytes per load/write/verify round (must fit the board's RAM twice).
    #[arg(long, default_value_t = pipeline::flash::DEFAULT_CHUNK)]
    pub chunk: u64,
    /// RAM address (hex) to load to; default: U-Boot's `loadaddr`, else `kernel_addr_r`.
    #[arg(long, value_parser = parse_hex_arg)]
    pub load_addr: Option<u64>,
    #[command(flatten)]
    pub after: AfterArgs,
}

/// Resuming and booting: shared by `flash` and `board --flash`.
#[derive(Debug, Clone, clap::Args)]
pub struct AfterArgs {
    /// Continue an interrupted flash of the same image: chunks proven earlier (recorded in
    /// IMAGE.rvflash.json) are checked by read-back and not sent again.
    #[arg(long)]
    pub resume: bool,
    /// After the last chunk, start the board from what was written and wait for its marker
    /// (exit 7 with the console's last lines when it does not come).
    #[arg(long)]
    pub boot: bool,
    /// The U-Boot command --boot runs: `boot` (bootcmd) or `reset`.
    #[arg(long, default_value = "boot", requires = "boot")]
    pub boot_command: String,
    /// Seconds --boot waits for the marker (default: the board's qemu timeout, else 300).
    #[arg(long, requires = "boot")]
    pub boot_timeout: Option<u64>,
}

impl AfterArgs {
    /// Puts these choices into a flash request.
    pub fn apply(&self, req: &mut FlashRequest) {
        req.resume = self.resume;
        req.boot = self.boot.then(|| self.boot_command.clone());
        req.boot_timeout = self.boot_timeout.map(std::time::Duration::from_secs);
    }
}

fn parse_hex_arg(s: &str) -> std::result::Result<u64, String> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("`{s}` is not a hex address: {e}"))
}

impl Args {
    /// The pipeline's request for these arguments.
    pub fn request(&self, project: PathBuf) -> FlashRequest {
        let mut files = Vec::new();
        if let Some(p) = &self.spl {
            files.push(("spl".to_string(), p.clone()));
        }
        if let Some(p) = &self.fit {
            files.push(("fit".to_string(), p.clone()));
        }
        let mut req = FlashRequest {
            out_dir: self.out.clone(),
            port: self.port.clone(),
            files,
            image: self.image.clone(),
            baud: self.baud,
            transfer_baud: self.transfer_baud,
            recovery: self.recovery,
            timeout: std::time::Duration::from_secs(self.timeout),
            chunk: self.chunk,
            load_addr: self.load_addr,
            ..FlashRequest::new(project, self.board.clone())
        };
        self.after.apply(&mut req);
        req
    }
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let done = pipeline::flash(&args.request(ctx.project_dir()), ctx.reporter.as_ref())?;
    report(ctx, &done);
    Ok(())
}

/// The result lines of a flash, for people.
pub fn report(ctx: &Context, done: &Flashed) {
    let r = &done.report;
    for s in &r.steps {
        ctx.say(&format!(
            "{}: {} bytes written and verified (crc32 {:08x}, {} chunk(s): {} zero, {} proven earlier; {} payload bytes sent)",
            s.name, s.bytes, s.crc32, s.chunks, s.zero_chunks, s.resumed_chunks, s.sent_bytes
        ));
    }
    let secs = r.seconds.max(1e-3);
    let bytes: u64 = r.steps.iter().map(|s| s.bytes).sum();
    let kib = |b: f64| b / 1024.0 / secs;
    ctx.say(&format!(
        "flash of {} complete in {:.1}s: {:.1} KiB/s of image, {} bytes on the wire ({:.1} KiB/s; the line's raw rate at {} baud is {:.1} KiB/s)",
        done.board,
        r.seconds,
        kib(bytes as f64),
        r.wire_bytes,
        kib(r.wire_bytes as f64),
        done.line_baud,
        done.line_baud as f64 / 10.0 / 1024.0
    ));
    if let Some(b) = &r.boot {
        ctx.say(&format!("boot of {}: {} ({:.1}s)", done.board, b.detail, b.seconds));
    }
}
