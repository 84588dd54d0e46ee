//! `rvbuild flash`: write a board's images through U-Boot on its serial console and prove each by
//! CRC read-back; `--recovery` first brings a JH7110 board up from its boot ROM over UART.

use std::path::PathBuf;

use crate::flash::plan::{FlashOptions, FlashStep, Target};
use crate::flash::{port, recovery};
use crate::profile::Board;
use crate::profile::board::FlashMethod;
use crate::report::{Event, Reporter};
use crate::vocab::Manifest;
use crate::{Error, ErrorKind, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The board to flash: its profile's flash plan says what goes where.
    pub board: String,
    /// Serial port, or `auto` for the single USB serial adapter.
    #[arg(long, env = "RVBUILD_PORT")]
    pub port: Option<String>,
    /// Image to write: the disk image (QEMU boards) or the U-Boot FIT (JH7110 boards).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// JH7110: the SPL with its StarFive header (`u-boot-spl.bin.normal.out`).
    #[arg(long)]
    pub spl: Option<PathBuf>,
    /// JH7110: the U-Boot FIT (`u-boot.itb`).
    #[arg(long)]
    pub fit: Option<PathBuf>,
    /// Console baud rate.
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// Switch to this baud rate for each `loady` transfer (and back afterwards).
    #[arg(long)]
    pub transfer_baud: Option<u32>,
    /// JH7110: boot from the ROM's UART mode first (boot pins RGPIO1,RGPIO0 = 1,1).
    #[arg(long)]
    pub recovery: bool,
    /// Seconds to wait for the U-Boot prompt (or the boot ROM).
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Build output directory whose files are flashed (default: ./result-BOARD).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Bytes per load/write/verify round (must fit the board's RAM twice).
    #[arg(long, default_value_t = 16 << 20)]
    pub chunk: u64,
    /// RAM address (hex) to load to; default: U-Boot's `loadaddr`, else `kernel_addr_r`.
    #[arg(long, value_parser = parse_hex_arg)]
    pub load_addr: Option<u64>,
    /// Set by `rvbuild board --flash`, which has just verified these outputs.
    #[arg(skip)]
    pub already_verified: bool,
}

fn parse_hex_arg(s: &str) -> std::result::Result<u64, String> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("`{s}` is not a hex address: {e}"))
}

/// A board's flash steps, from the flash plan of its profile. Each region's file comes from the
/// command line (`--image`, `--spl`, `--fit`) or else from the board's build output directory.
pub fn board_steps(board: &Board, manifest: Option<&Manifest>, args: &Args) -> Result<Vec<FlashStep>> {
    let name = &board.name.value;
    let plan = &board.flash;
    if plan.method == FlashMethod::SdCard {
        return Err(Error::with_help(
            ErrorKind::Config,
            format!("{name} boots from an SD card: there is nothing to write over its serial console"),
            "write disk.img of `rvbuild board` to the card (dd or bmaptool)",
        ));
    }
    let single = plan.regions.len() == 1;
    let mut steps = Vec::new();
    for r in &plan.regions {
        let file = &r.file.value;
        let given = match file.as_str() {
            "u-boot-spl.bin.normal.out" => args.spl.clone(),
            "u-boot.itb" => args.fit.clone().or_else(|| args.image.clone().filter(|_| !single)),
            _ => None,
        }
        .or_else(|| args.image.clone().filter(|_| single || file == "disk.img"));
        let path = match given {
            Some(p) => p,
            None => match manifest.and_then(|m| m.artifacts.get(file)) {
                Some(p) => PathBuf::from(p),
                None => {
                    return Err(Error::with_help(
                        ErrorKind::Config,
                        format!("no file for flash region `{}` ({file}) of {name}", r.name.value),
                        format!(
                            "build the board first (`rvbuild board {name}`), or pass the file (--image / --spl / --fit)"
                        ),
                    ));
                }
            },
        };
        let len = std::fs::metadata(&path).map_err(|e| Error::io(ErrorKind::Config, path.display(), e))?.len();
        if len > r.size.value.0 {
            return Err(Error::with_help(
                ErrorKind::Config,
                format!(
                    "{} is {len} bytes, larger than flash region `{}` ({} bytes at {})",
                    path.display(),
                    r.name.value,
                    r.size.value.0,
                    r.offset.value
                ),
                "nothing was written; shrink the image or fix the region in the board profile",
            ));
        }
        let offset = r.offset.value.0;
        let target = match plan.method {
            FlashMethod::UbootVirtio => Target::Virtio { dev: 0, byte_offset: offset },
            FlashMethod::UbootMmc => Target::Mmc { dev: 0, byte_offset: offset },
            FlashMethod::UbootSpiNor => Target::SpiNor { offset, size_limit: r.size.value.0 },
            FlashMethod::SdCard => {
                return Err(Error::msg(ErrorKind::Internal, "sd-card boards have no serial flash steps"));
            }
        };
        steps.push(FlashStep { name: r.name.value.clone(), file: path, target });
    }
    Ok(steps)
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let board = crate::profile::load_board(&ctx.project_dir(), &args.board)?;
    let board = &board.value;
    let out_dir = args.out.clone().unwrap_or_else(|| crate::pipeline::default_out_dir(&board.name.value));
    let manifest = if out_dir.join("manifest.json").is_file() { Some(Manifest::load(&out_dir)?) } else { None };
    let steps = board_steps(board, manifest.as_ref(), &args)?;
    // Nothing is written when the build's outputs fail verification: checked before the port opens.
    if let Some(m) = manifest.as_ref().filter(|_| !args.already_verified) {
        crate::pipeline::verify_outputs(board, m, ctx.reporter.as_ref())?;
    }
    let rom_recovery = board.flash.recovery.as_deref() == Some("jh7110-uart");
    if args.recovery && !rom_recovery {
        return Err(Error::msg(
            ErrorKind::Config,
            format!("--recovery is for JH7110 boards; `{}` has no ROM recovery path", args.board),
        ));
    }
    // Preflight before touching the port: files readable, sizes fit, SPL header valid.
    crate::flash::plan::read_images(&steps)?;
    let jh7110_files = match steps.as_slice() {
        [spl, fit] if rom_recovery => Some((spl.file.clone(), fit.file.clone())),
        _ => None,
    };
    if let Some((spl, _)) = &jh7110_files {
        let data = std::fs::read(spl).map_err(|e| Error::io(ErrorKind::Config, spl.display(), e))?;
        recovery::check_spl_header(&data)
            .map_err(|why| Error::msg(ErrorKind::Config, format!("{}: {why}", spl.display())))?;
    }
    let path = port::resolve(args.port.as_deref(), &port::list())?;
    let mut link = port::open(&path, args.baud)?;
    // Transfers and the driver's notes arrive as events: a bar or lines on stderr, or JSON.
    let reporter = ctx.reporter.as_ref();
    let mut opts = FlashOptions {
        chunk: args.chunk,
        load_addr: args.load_addr,
        transfer_baud: args.transfer_baud,
        console_baud: args.baud,
        ..FlashOptions::default()
    };
    opts.console.attach_timeout = std::time::Duration::from_secs(args.timeout);
    let started = std::time::Instant::now();
    let result = (|| {
        if let (true, Some((spl, fit))) = (args.recovery, &jh7110_files) {
            recovery::boot_from_rom(
                &mut link,
                spl,
                fit,
                &recovery::RecoveryOptions {
                    timeout: std::time::Duration::from_secs(args.timeout),
                    ..recovery::RecoveryOptions::default()
                },
                reporter,
            )?;
        }
        crate::flash::flash(&mut link, &steps, &opts, reporter)
    })();
    let board_name = board.name.value.clone();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            reporter.event(&Event::Flash {
                board: board_name,
                step: "flash".into(),
                ok: false,
                bytes: 0,
                seconds: started.elapsed().as_secs_f64(),
                detail: e.to_string(),
            });
            return Err(e);
        }
    };
    for s in &report.steps {
        reporter.event(&Event::Flash {
            board: board_name.clone(),
            step: s.name.clone(),
            ok: true,
            bytes: s.bytes,
            seconds: report.seconds,
            detail: format!("crc32 {:08x}, {} chunk(s), read back", s.crc32, s.chunks),
        });
        ctx.say(&format!(
            "{}: {} bytes written and verified (crc32 {:08x}, {} chunk(s))",
            s.name, s.bytes, s.crc32, s.chunks
        ));
    }
    ctx.say(&format!("flash of {} complete in {:.1}s", args.board, report.seconds));
    Ok(())
}
