//! `rvbuild flash`: write a board's images through U-Boot on its serial console and prove each by
//! CRC read-back; `--recovery` first brings a JH7110 board up from its boot ROM over UART.

use std::path::PathBuf;

use crate::flash::plan::{FlashOptions, FlashStep, Target};
use crate::flash::{port, progress, recovery};
use crate::{Error, ErrorKind, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The board to flash (qemu-riscv64, qemu-aarch64, visionfive2, star64, milkv-mars).
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
    /// Bytes per load/write/verify round (must fit the board's RAM twice).
    #[arg(long, default_value_t = 16 << 20)]
    pub chunk: u64,
    /// RAM address (hex) to load to; default: U-Boot's `loadaddr`, else `kernel_addr_r`.
    #[arg(long, value_parser = parse_hex_arg)]
    pub load_addr: Option<u64>,
}

fn parse_hex_arg(s: &str) -> std::result::Result<u64, String> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("`{s}` is not a hex address: {e}"))
}

/// A board's flash steps.
///
/// BOARD MAPPING: this is the one place that knows where each board's images go. It is to be
/// replaced by reading the flash plan of the board profile (boards/*.yaml).
pub fn board_steps(board: &str, args: &Args) -> Result<Vec<FlashStep>> {
    match board {
        "qemu-riscv64" | "qemu-aarch64" => {
            let image = args.image.clone().ok_or_else(|| {
                Error::with_help(
                    ErrorKind::Config,
                    format!("`rvbuild flash {board}` needs the disk image"),
                    "pass --image FILE",
                )
            })?;
            Ok(vec![FlashStep { name: "disk".into(), file: image, target: Target::Virtio { dev: 0, byte_offset: 0 } }])
        }
        "visionfive2" | "star64" | "milkv-mars" => {
            let fit = args.fit.clone().or_else(|| args.image.clone());
            let (Some(spl), Some(fit)) = (args.spl.clone(), fit) else {
                return Err(Error::with_help(
                    ErrorKind::Config,
                    format!("`rvbuild flash {board}` needs the SPL and the U-Boot FIT"),
                    "pass --spl u-boot-spl.bin.normal.out --fit u-boot.itb",
                ));
            };
            Ok(vec![
                FlashStep { name: "spl".into(), file: spl, target: Target::SpiNor { offset: 0, size_limit: 0xF_0000 } },
                FlashStep {
                    name: "fit".into(),
                    file: fit,
                    target: Target::SpiNor { offset: 0x10_0000, size_limit: 0xF0_0000 },
                },
            ])
        }
        other => Err(Error::with_help(
            ErrorKind::Config,
            format!("no flash plan for board `{other}`"),
            "boards with a flash plan: qemu-riscv64, qemu-aarch64, visionfive2, star64, milkv-mars",
        )),
    }
}

fn is_jh7110(board: &str) -> bool {
    matches!(board, "visionfive2" | "star64" | "milkv-mars")
}

pub fn run(_ctx: &Context, args: Args) -> Result<()> {
    let steps = board_steps(&args.board, &args)?;
    if args.recovery && !is_jh7110(&args.board) {
        return Err(Error::msg(
            ErrorKind::Config,
            format!("--recovery is for JH7110 boards; `{}` has no ROM recovery path", args.board),
        ));
    }
    // Preflight before touching the port: files readable, sizes fit, SPL header valid.
    crate::flash::plan::read_images(&steps)?;
    let jh7110_files = match steps.as_slice() {
        [spl, fit] if is_jh7110(&args.board) => Some((spl.file.clone(), fit.file.clone())),
        _ => None,
    };
    if let Some((spl, _)) = &jh7110_files {
        let data = std::fs::read(spl).map_err(|e| Error::io(ErrorKind::Config, spl.display(), e))?;
        recovery::check_spl_header(&data)
            .map_err(|why| Error::msg(ErrorKind::Config, format!("{}: {why}", spl.display())))?;
    }
    let path = port::resolve(args.port.as_deref(), &port::list())?;
    let mut link = port::open(&path, args.baud)?;
    let mut prog = progress::for_stderr();
    let mut opts = FlashOptions {
        chunk: args.chunk,
        load_addr: args.load_addr,
        transfer_baud: args.transfer_baud,
        console_baud: args.baud,
        ..FlashOptions::default()
    };
    opts.console.attach_timeout = std::time::Duration::from_secs(args.timeout);
    if let (true, Some((spl, fit))) = (args.recovery, &jh7110_files) {
        recovery::boot_from_rom(
            &mut link,
            spl,
            fit,
            &recovery::RecoveryOptions {
                timeout: std::time::Duration::from_secs(args.timeout),
                ..recovery::RecoveryOptions::default()
            },
            prog.as_mut(),
        )?;
    }
    let report = crate::flash::flash(&mut link, &steps, &opts, prog.as_mut())?;
    for s in &report.steps {
        println!("{}: {} bytes written and verified (crc32 {:08x}, {} chunk(s))", s.name, s.bytes, s.crc32, s.chunks);
    }
    println!("flash of {} complete in {:.1}s", args.board, report.seconds);
    Ok(())
}
