//! `rvbuild qemu`: build the board (a no-op when nothing changed) and boot it in QEMU until init
//! prints the marker; exit 0 on success, 7 when the boot test fails.

use std::path::PathBuf;
use std::time::Duration;

use crate::pipeline::board::Request;
use crate::report::Reporter;
use crate::vocab::Manifest;
use crate::{Result, profile, qemu};

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
    let project = ctx.project_dir();
    let board = profile::load_board(&project, &args.board)?;
    let name = board.value.name.value.clone();
    let out_dir = args.out.clone().unwrap_or_else(|| crate::pipeline::board::default_out_dir(&name));
    let manifest = if args.no_build {
        Manifest::load(&out_dir)?
    } else {
        let req = Request {
            project: project.clone(),
            board: args.board.clone(),
            profile: args.profile.clone(),
            provider: None,
            out_dir: Some(out_dir.clone()),
            expr_only: false,
            ..Request::default()
        };
        crate::pipeline::board::build(&req, reporter)?.manifest
    };
    if let Some(q) = &board.value.qemu {
        if q.boot == crate::profile::board::QemuBoot::Direct {
            reporter.event(&crate::report::Event::Stage {
                name: "note".into(),
                detail: format!("{name}: QEMU has no model of this SoC; booting the board's kernel and initramfs on QEMU `{}` directly. This smoke-tests the kernel, drivers and userland, not the board's firmware path.", q.machine),
            });
        }
        if args.print_command {
            let cmd = qemu::command(&board.value, q, &manifest)?;
            let words: Vec<String> = std::iter::once(cmd.get_program())
                .chain(cmd.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            ctx.say(&words.join(" "));
            return Ok(());
        }
    }
    let outcome =
        qemu::boot(&board.value, &manifest, &out_dir.join("logs"), args.timeout.map(Duration::from_secs), reporter)?;
    ctx.say(&format!(
        "{name}: booted to `{}` in {:.1} s (modules: {}); console log {}",
        manifest.marker,
        outcome.seconds,
        outcome.modules_loaded.join(", "),
        outcome.log.display()
    ));
    Ok(())
}
