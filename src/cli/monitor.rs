//! `rvbuild monitor`: a raw serial console. On a terminal the keyboard goes to the board
//! byte for byte (the terminal in raw mode, so Ctrl-C reaches U-Boot) and Ctrl-] leaves; with
//! piped input the bytes are sent as they come. `--until MARKER --timeout S` is the CI mode.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use crate::flash::port;
use crate::monitor::{self, Ending, Options};
use crate::{Error, ErrorKind, Result};

use super::Context;

/// The exit codes of a session, for `rvbuild monitor --help`.
pub const EXIT_CODES: &str = "Exit codes of a session:
  0    the marker was seen, Ctrl-] was typed, or --timeout ended a session without --until
  6    the port is busy (another program holds it)
  7    --until: the marker did not come within --timeout (the console's last lines are shown)
  8    the port does not exist, or no permission to open it
  10   the port vanished mid-run (the log is kept)";

/// Seconds `--until` waits unless `--timeout` says otherwise.
const DEFAULT_UNTIL_TIMEOUT_S: u64 = 120;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The board on the port: its console baud rate, and the marker a bare `--until` waits for.
    pub board: Option<String>,
    /// Serial port, or `auto` for the single USB serial adapter.
    #[arg(long, env = "RVBUILD_PORT")]
    pub port: Option<String>,
    /// Baud rate (default: the board's flash.baud, else 115200).
    #[arg(long)]
    pub baud: Option<u32>,
    /// Also write every byte received to FILE, raw (the file is written anew).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// CI mode: exit 0 as soon as MARKER was received; exit 7 with the console's last lines when
    /// --timeout passes first. A bare `--until` waits for the board's marker.
    #[arg(long, value_name = "MARKER", num_args = 0..=1, default_missing_value = "")]
    pub until: Option<String>,
    /// Seconds to wait for the --until marker (default 120); without --until, the session simply
    /// ends after this long.
    #[arg(long, value_name = "S")]
    pub timeout: Option<u64>,
}

/// Restores the terminal's settings when dropped.
struct RawTerminal {
    fd: i32,
    saved: libc::termios,
}

impl RawTerminal {
    /// Puts the terminal on `fd` into raw mode: no echo, no line editing, no signals from
    /// Ctrl-C/Ctrl-Z, no output translation.
    fn enable(fd: i32) -> Option<RawTerminal> {
        // SAFETY: termios is plain data; tcgetattr fills it and fails on a non-terminal fd.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return None;
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw only edits the struct it is given.
        unsafe { libc::cfmakeraw(&mut raw) };
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return None;
        }
        Some(RawTerminal { fd, saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: restores the settings read from the same fd.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let board = match &args.board {
        Some(name) => Some(crate::profile::load_board(&ctx.project_dir(), name)?.value),
        None => None,
    };
    let until = match args.until.as_deref() {
        Some("") => match &board {
            Some(b) => Some(b.marker.clone()),
            None => {
                return Err(Error::with_help(
                    ErrorKind::Config,
                    "a bare --until waits for the board's marker, but no board was named",
                    "name the board (`rvbuild monitor BOARD --until`) or the marker (`--until TEXT`)",
                ));
            }
        },
        other => other.map(str::to_string),
    };
    let timeout = match (&until, args.timeout) {
        (_, Some(s)) => Some(Duration::from_secs(s)),
        (Some(_), None) => Some(Duration::from_secs(DEFAULT_UNTIL_TIMEOUT_S)),
        (None, None) => None,
    };
    let baud = args.baud.or(board.as_ref().map(|b| b.flash.baud)).unwrap_or(115_200);
    let path = port::resolve(args.port.as_deref(), &port::list())?;
    let mut log_file = match &args.log {
        Some(p) => {
            Some(std::fs::File::create(p).map_err(|source| monitor::MonitorError::Log { path: p.clone(), source })?)
        }
        None => None,
    };
    let link = monitor::open(&path, baud)?;

    let interactive = std::io::stdin().is_terminal();
    let what = match (&until, timeout) {
        (Some(m), Some(t)) => format!("waiting up to {} s for `{m}`", t.as_secs()),
        _ if interactive => "Ctrl-] leaves".to_string(),
        _ => "Ctrl-C ends".to_string(),
    };
    eprintln!("rvbuild monitor: connected to {path} at {baud} baud; {what}");
    let opts = Options { until: until.clone(), timeout, escape: interactive.then_some(monitor::ESCAPE) };
    let input: Box<dyn std::io::Read + Send> = Box::new(std::io::stdin());
    let log = match (&args.log, log_file.as_mut()) {
        (Some(p), Some(f)) => Some((p.as_path(), f as &mut dyn std::io::Write)),
        _ => None,
    };
    let result = {
        let _raw = if interactive { RawTerminal::enable(libc::STDIN_FILENO) } else { None };
        let mut out = std::io::stdout().lock();
        monitor::run(link, Some(input), &mut out, log, &opts)
    };
    let done = result?;
    let ending = match done.ending {
        Ending::Marker => format!("`{}` seen after {:.1} s", until.unwrap_or_default(), done.seconds),
        Ending::Left => "left".to_string(),
        Ending::OutputClosed => "output closed".to_string(),
        Ending::TimedOut => format!("ended after {:.1} s", done.seconds),
    };
    eprintln!("\nrvbuild monitor: {ending} ({} bytes received, {} sent)", done.received, done.sent);
    Ok(())
}
