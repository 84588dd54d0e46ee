//! Command-line interface: clap definitions, one file per subcommand, and dispatch.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::Result;

pub mod board;
pub mod boards;
pub mod build;
pub mod builders;
pub mod completions;
pub mod doctor;
pub mod flash;
pub mod plan;
pub mod qemu;
pub mod serial;
pub mod verify;

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    internal error (a bug: please report it)
  2    usage or configuration error (command line, board/profile YAML, input files)
  3    a build failed
  4    a builder was unreachable or lost
  5    verification of the outputs failed
  6    flashing failed
  7    the boot test failed
  8    a tool or file this machine needs is missing (see `rvbuild doctor`)
  9    the capability has not landed yet
  130  interrupted (Ctrl-C / SIGTERM)";

/// rvbuild: board profile in, verified and flashed image out.
#[derive(Debug, Parser)]
#[command(name = "rvbuild", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// Directory searched first for `boards/` and `profiles/` (default: the current directory).
    #[arg(long, global = true, value_name = "DIR", env = "RVBUILD_PROJECT")]
    pub project: Option<PathBuf>,

    /// More detail in the output (build logs on the console).
    #[arg(short, long, global = true)]
    pub verbose: bool,

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
    /// Boot a board's image in QEMU and wait for the init marker.
    Qemu(qemu::Args),
    /// Check this machine's setup (Nix, binfmt, toolchains, serial, SSH) and say how to fix it.
    Doctor(doctor::Args),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) or the man page (`man`).
    Completions(completions::Args),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let ctx = Context { project: cli.project.clone(), verbose: cli.verbose };
    match cli.command {
        Command::Board(a) => board::run(&ctx, a),
        Command::Boards(a) => boards::run(&ctx, a),
        Command::Plan(a) => plan::run(&ctx, a),
        Command::Build(a) => build::run(&ctx, a),
        Command::Builders(a) => builders::run(&ctx, a),
        Command::Verify(a) => verify::run(&ctx, a),
        Command::Flash(a) => flash::run(&ctx, a),
        Command::Serial(a) => serial::run(&ctx, a),
        Command::Qemu(a) => qemu::run(&ctx, a),
        Command::Doctor(a) => doctor::run(&ctx, a),
        Command::Completions(a) => completions::run(&ctx, a),
    }
}

/// Settings shared by every subcommand.
#[derive(Debug, Clone)]
pub struct Context {
    pub project: Option<PathBuf>,
    pub verbose: bool,
}

impl Context {
    /// The directory searched first for boards and profiles.
    pub fn project_dir(&self) -> PathBuf {
        self.project.clone().unwrap_or_else(|| PathBuf::from("."))
    }
}
