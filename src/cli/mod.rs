//! Command-line interface: clap definitions, one file per subcommand, and dispatch.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::Result;
use crate::report::{self, Session};

/// `print!` to stdout that ends the process quietly, exit 0, when the reader has gone
/// (`rvbuild boards | head -1`), as a SIGPIPE would; `print!` panics there.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::write_stdout(format_args!($($arg)*)) };
}
/// `println!` with the behaviour of [`out!`].
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Writes to stdout; a closed stdout ends the process with exit 0 (nothing is left to say).
pub(crate) fn write_stdout(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

pub mod board;
pub mod boards;
pub mod build;
pub mod builders;
pub mod builders_probe;
pub mod completions;
pub mod doctor;
pub mod flash;
pub mod lab;
pub mod monitor;
pub mod plan;
pub mod pool_args;
pub mod qemu;
pub mod serial;
pub mod verify;

/// The "Exit codes:" text of `--help` (and the man page), generated from `ErrorKind::TABLE`.
fn exit_codes_help() -> String {
    let mut text = String::from("Exit codes:\n  0    success");
    for (kind, meaning) in crate::vocab::error::ErrorKind::TABLE {
        text.push_str(&format!("\n  {:<5}{meaning}", kind.exit_code()));
    }
    text
}

/// rvbuild: board profile in, verified and flashed image out.
#[derive(Debug, Parser)]
#[command(name = "rvbuild", version, about, long_about = None, after_help = exit_codes_help())]
pub struct Cli {
    /// Directory searched first for `boards/` and `profiles/` (default: the current directory).
    #[arg(long, global = true, value_name = "DIR", env = "RVBUILD_PROJECT")]
    pub project: Option<PathBuf>,

    /// More detail in the output (build logs on the console).
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Machine-readable output on stdout: `board`, `build`, `qemu` and `flash` print one JSON object per
    /// event and a final summary (docs/events.md); `boards`, `verify`, `doctor`, `serial list`
    /// and `plan` print their report as JSON.
    #[arg(long, global = true)]
    pub json: bool,

    /// Also write a JUnit XML report: one test case per derivation, verify check, flash step
    /// and boot test.
    #[arg(long, global = true, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a board's complete image (kernel, drivers, initramfs, firmware, disk image).
    Board(board::Args),
    /// List the known boards, or validate every board and profile file with --check.
    Boards(boards::Args),
    /// Show the per-component build plan (strategy, host, estimates) without building.
    Plan(plan::Args),
    /// Build any Nix derivation graph over the builder pool.
    Build(build::Args),
    /// List, probe and import builders.
    Builders(builders::Args),
    /// Check ELF architecture, ABI, interpreter, vermagic and image headers of files.
    Verify(verify::Args),
    /// Flash a board's images over its serial console.
    Flash(flash::Args),
    /// Serial port tools: list ports, send a file with XMODEM/YMODEM.
    Serial(serial::Args),
    /// A raw serial console: watch a board, type to it, or wait for a marker in CI.
    #[command(after_help = monitor::EXIT_CODES)]
    Monitor(monitor::Args),
    /// Lab integration: a labgrid environment or a LAVA job (and device dictionary) for a board.
    Lab(lab::Args),
    /// Boot a board's image in QEMU and wait for the init marker.
    Qemu(qemu::Args),
    /// Check this machine's setup (Nix, binfmt, toolchains, serial, SSH) and say how to fix it.
    Doctor(doctor::Args),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) or the man page (`man`).
    Completions(completions::Args),
}

/// Runs the parsed command line. Commands that build, boot or flash report through events and
/// end with a `summary` event; an interrupted run ends as `Interrupted` (exit code 130).
/// `runtime` is the process's one async runtime (built by `main`); commands block on it from
/// this synchronous thread.
pub fn run(cli: Cli, runtime: &tokio::runtime::Handle) -> Result<()> {
    let (name, emits_events) = match &cli.command {
        Command::Board(_) => ("board", true),
        Command::Qemu(_) => ("qemu", true),
        Command::Flash(_) => ("flash", true),
        Command::Build(_) => ("build", true),
        _ => ("", false),
    };
    let opts = report::Options { json: cli.json && emits_events, junit: cli.junit.clone(), verbose: cli.verbose };
    let reporter = Arc::new(Session::new(&opts));
    let ctx = Context {
        project: cli.project.clone(),
        verbose: cli.verbose,
        json: cli.json,
        reporter: reporter.clone(),
        runtime: runtime.clone(),
    };
    let result = match cli.command {
        Command::Board(a) => board::run(&ctx, a),
        Command::Boards(a) => boards::run(&ctx, a),
        Command::Plan(a) => plan::run(&ctx, a),
        Command::Build(a) => build::run(&ctx, a),
        Command::Builders(a) => builders::run(&ctx, a),
        Command::Verify(a) => verify::run(&ctx, a),
        Command::Flash(a) => flash::run(&ctx, a),
        Command::Serial(a) => serial::run(&ctx, a),
        Command::Monitor(a) => monitor::run(&ctx, a),
        Command::Lab(a) => lab::run(&ctx, a),
        Command::Qemu(a) => qemu::run(&ctx, a),
        Command::Doctor(a) => doctor::run(&ctx, a),
        Command::Completions(a) => completions::run(&ctx, a),
    };
    let result = result.map_err(crate::vocab::cancel::classify);
    if emits_events || cli.junit.is_some() {
        let name = if name.is_empty() { "rvbuild" } else { name };
        let closed = reporter.finish(name, &result);
        result.and(closed)
    } else {
        result
    }
}

/// Settings shared by every subcommand.
#[derive(Debug, Clone)]
pub struct Context {
    pub project: Option<PathBuf>,
    pub verbose: bool,
    /// `--json`: stdout carries only JSON.
    pub json: bool,
    /// Where core code sends its events.
    pub reporter: Arc<Session>,
    /// The process's one async runtime; commands `block_on` it (never from async code).
    pub runtime: tokio::runtime::Handle,
}

impl Context {
    /// The directory searched first for boards and profiles.
    pub fn project_dir(&self) -> PathBuf {
        self.project.clone().unwrap_or_else(|| PathBuf::from("."))
    }

    /// A result line for people: stdout normally, stderr under `--json` (stdout is JSON only).
    pub fn say(&self, line: &str) {
        if self.json {
            eprintln!("{line}");
        } else {
            outln!("{line}");
        }
    }
}
