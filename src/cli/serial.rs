//! `rvbuild serial`: list serial ports, send or receive a file with XMODEM/YMODEM.

use std::path::PathBuf;

use crate::flash::{port, xmodem, ymodem};
use crate::{Error, ErrorKind, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List serial ports with their USB identity (VID:PID, manufacturer, serial number).
    /// With the global `--json`: JSON instead of a table.
    List,
    /// Send a file to a receiver on the port.
    Send {
        /// File to send.
        file: PathBuf,
        #[command(flatten)]
        line: LineArgs,
    },
    /// Receive a file from a sender on the port.
    Receive {
        /// Where to write: a directory for YMODEM (files keep their names), a file for XMODEM.
        #[arg(default_value = ".")]
        dest: PathBuf,
        #[command(flatten)]
        line: LineArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct LineArgs {
    /// Serial port, or `auto` for the single USB serial adapter.
    #[arg(long, env = "RVBUILD_PORT")]
    pub port: Option<String>,
    /// Transfer protocol.
    #[arg(long, value_enum, default_value = "ymodem")]
    pub protocol: Protocol,
    /// Baud rate.
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// Seconds to wait for the other side to start.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Xmodem,
    #[value(name = "xmodem-1k")]
    Xmodem1k,
    Ymodem,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    match args.action {
        Action::List => list(ctx),
        Action::Send { file, line } => send(ctx, &file, &line),
        Action::Receive { dest, line } => receive(ctx, &dest, &line),
    }
}

fn list(ctx: &Context) -> Result<()> {
    let ports = port::list();
    if ctx.json {
        let text = serde_json::to_string_pretty(&ports).map_err(|e| Error::msg(ErrorKind::Internal, e.to_string()))?;
        outln!("{text}");
        return Ok(());
    }
    if ports.is_empty() {
        ctx.say("no serial ports found");
    }
    for p in ports {
        match &p.usb {
            Some(u) => ctx.say(&format!(
                "{}  {:04x}:{:04x}  {}  {}  serial {}",
                p.path,
                u.vid,
                u.pid,
                u.manufacturer.as_deref().unwrap_or("-"),
                u.product.as_deref().unwrap_or("-"),
                u.serial.as_deref().unwrap_or("-")
            )),
            None => ctx.say(&format!("{}  {}", p.path, p.driver.as_deref().unwrap_or("-"))),
        }
    }
    Ok(())
}

fn timing(line: &LineArgs) -> xmodem::Timing {
    xmodem::Timing { start: std::time::Duration::from_secs(line.timeout), ..xmodem::Timing::default() }
}

fn open(line: &LineArgs) -> Result<serialport::TTYPort> {
    let path = port::resolve(line.port.as_deref(), &port::list())?;
    port::open(&path, line.baud)
}

fn send(ctx: &Context, file: &std::path::Path, line: &LineArgs) -> Result<()> {
    let data = std::fs::read(file).map_err(|e| Error::io(ErrorKind::Config, file.display(), e))?;
    let mut link = open(line)?;
    let reporter = ctx.reporter.as_ref();
    let stats = match line.protocol {
        Protocol::Xmodem | Protocol::Xmodem1k => {
            let opts = xmodem::SendOptions {
                block: if line.protocol == Protocol::Xmodem1k {
                    xmodem::BlockSize::B1024
                } else {
                    xmodem::BlockSize::B128
                },
                timing: timing(line),
                ..xmodem::SendOptions::default()
            };
            xmodem::send(&mut link, &data, &opts, reporter)?
        }
        Protocol::Ymodem => {
            let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "file".to_string());
            let opts = ymodem::SendOptions { timing: timing(line), ..ymodem::SendOptions::default() };
            ymodem::send(&mut link, &[ymodem::Outgoing { name: &name, data: &data }], &opts, reporter)?
        }
    };
    ctx.say(&format!("sent {} bytes in {} blocks, {} retransmitted", stats.bytes, stats.blocks, stats.retransmits));
    Ok(())
}

fn receive(ctx: &Context, dest: &std::path::Path, line: &LineArgs) -> Result<()> {
    let mut link = open(line)?;
    let reporter = ctx.reporter.as_ref();
    let write = |path: &std::path::Path, data: &[u8]| {
        std::fs::write(path, data).map_err(|e| Error::io(ErrorKind::Flash, path.display(), e))
    };
    match line.protocol {
        Protocol::Ymodem => {
            let opts = ymodem::ReceiveOptions { timing: timing(line) };
            let files = ymodem::receive(&mut link, &opts, reporter)?;
            for f in files {
                let path = dest.join(&f.name);
                write(&path, &f.data)?;
                ctx.say(&format!("received {} ({} bytes)", path.display(), f.data.len()));
            }
        }
        _ => {
            let opts = xmodem::ReceiveOptions { timing: timing(line), ..xmodem::ReceiveOptions::default() };
            let data = xmodem::receive(&mut link, &opts, reporter)?;
            let path = if dest.is_dir() { dest.join("xmodem.bin") } else { dest.to_path_buf() };
            write(&path, &data)?;
            ctx.say(&format!("received {} ({} bytes)", path.display(), data.len()));
        }
    }
    Ok(())
}
