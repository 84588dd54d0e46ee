//! `rvbuild qemu`: build the board (a no-op when nothing changed) and boot it in QEMU until init
//! prints the marker; exit 0 on success, 7 when the boot test fails.

use std::path::PathBuf;
use std::time::Duration;

use crate::Result;
use crate::pipeline::{self, BootRequest, Request};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The board to boot.
    pub board: String,
    /// Build profile used when building first.
    #[arg(long, default_value = "dev")]
    pub profile: String,
    /// Output directory of the build (default: ./result-BOARD).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Boot the existing build without rebuilding.
    #[arg(long)]
    pub no_build: bool,
    /// Seconds before the boot test gives up (default: the board's qemu.timeout).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Print the QEMU command line and exit.
    #[arg(long)]
    pub print_command: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let reporter = ctx.reporter.as_ref();
    let req = BootRequest {
        build: Request {
            project: ctx.project_dir(),
            board: args.board.clone(),
            profile: args.profile.clone(),
            out_dir: args.out.clone(),
            ..Request::default()
        },
        no_build: args.no_build,
        timeout: args.timeout.map(Duration::from_secs),
    };
    if args.print_command {
        ctx.say(&pipeline::qemu_command(&req, &ctx.runtime, reporter)?.join(" "));
        return Ok(());
    }
    let booted = pipeline::boot(&req, &ctx.runtime, reporter)?;
    ctx.say(&format!(
        "{}: booted to `{}` in {:.1} s (modules: {}); console log {}",
        booted.manifest.board,
        booted.manifest.marker,
        booted.outcome.seconds,
        booted.outcome.modules_loaded.join(", "),
        booted.outcome.log.display()
    ));
    Ok(())
}
