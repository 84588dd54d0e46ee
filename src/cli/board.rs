//! `rvbuild board`: build a board's complete image (kernel, drivers, initramfs, firmware, disk
//! image) into an output directory with a manifest.

use std::path::PathBuf;

use crate::Result;
use crate::pipeline::{self, Request};
use crate::profile::{Provider, Strategy};
use crate::vocab::Reporter as _;

use super::Context;
use super::pool_args::PoolArgs;
use crate::build::connect::ConnectOptions;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ProviderArg {
    Host,
    Nixpkgs,
}

impl From<ProviderArg> for Provider {
    fn from(p: ProviderArg) -> Provider {
        match p {
            ProviderArg::Host => Provider::Host,
            ProviderArg::Nixpkgs => Provider::Nixpkgs,
        }
    }
}

/// `--split auto|never|always`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SplitArg {
    Auto,
    Never,
    Always,
}

impl From<SplitArg> for crate::vocab::SplitMode {
    fn from(s: SplitArg) -> Self {
        match s {
            SplitArg::Auto => crate::vocab::SplitMode::Auto,
            SplitArg::Never => crate::vocab::SplitMode::Never,
            SplitArg::Always => crate::vocab::SplitMode::Always,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The board: a name from `rvbuild boards` or a path to a board file.
    pub board: String,
    /// Build profile: a name from profiles/ or a path.
    #[arg(long, default_value = "dev")]
    pub profile: String,
    /// Toolchain provider (default: the profile's).
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// Output directory (default: ./result-BOARD).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Write and check the Nix expression only; build nothing.
    #[arg(long)]
    pub expr_only: bool,
    /// Build a component or group cross, or as a target-system derivation (native/emulated:
    /// the same derivation, placed on a native or an emulating host). Repeatable; wins over the
    /// profile's strategy.overrides. Components: kernel (with its modules), module-NAME,
    /// userland (or init); initramfs, bootfiles, firmware and image are always cross.
    #[arg(long = "strategy", value_name = "COMPONENT=STRATEGY", value_parser = crate::profile::strategy::parse_flag)]
    pub strategy: Vec<(String, Strategy)>,
    /// Local build slots (0 = --local-jobs, else the profile's, else one per CPU).
    #[arg(long, short, default_value_t = 0)]
    pub jobs: usize,
    #[command(flatten)]
    pub pool: PoolArgs,
    /// Spread the kernel's compile over the pool with distcc: auto (when the cost model predicts
    /// a gain), never, always (whenever another builder has the same cross compiler). Default:
    /// the profile's strategy.split, else auto.
    #[arg(long, value_enum)]
    pub split: Option<SplitArg>,
    /// Draw the schedule, predicted and measured side by side (`.svg`, or `.html`).
    #[arg(long, value_name = "FILE.svg|FILE.html")]
    pub gantt: Option<PathBuf>,
    /// After building (and verifying), flash the board through this serial port (`auto` for the
    /// single USB adapter).
    #[arg(long, value_name = "PORT")]
    pub flash: Option<String>,
    /// Console baud rate for --flash (default: the board's).
    #[arg(long)]
    pub baud: Option<u32>,
    #[command(flatten)]
    pub after: super::flash::AfterArgs,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let reporter = ctx.reporter.as_ref();
    let req = Request {
        project: ctx.project_dir(),
        board: args.board,
        profile: args.profile,
        provider: args.provider.map(Into::into),
        out_dir: args.out,
        expr_only: args.expr_only,
        jobs: args.jobs,
        pool: args.pool.pool_options(),
        connect: ConnectOptions { accept_new_host_keys: args.pool.accept_new_host_keys },
        strategies: args.strategy,
        predict: args.gantt.is_some(),
        split: args.split.map(Into::into),
    };
    let done = crate::pipeline::build(&req, &ctx.runtime, reporter)?;
    if let (Some(path), Some(s)) = (&args.gantt, &done.schedules) {
        let text = crate::report::gantt::write_schedules(path, s)?;
        reporter.event(&crate::vocab::Event::Note { text });
    }
    let (out, manifest) = (done.out_dir, done.manifest);
    if args.expr_only {
        ctx.say(&out.join("board.nix").display().to_string());
        return Ok(());
    }
    ctx.say(&format!("{}: built {} components into {}", manifest.board, manifest.components.len(), out.display()));
    for key in ["disk.img", "Image", "Image.gz", "initramfs.cpio.gz"] {
        if let Some(p) = manifest.artifacts.get(key) {
            ctx.say(&format!("  {key:<18} {p}"));
        }
    }
    if let Some(port) = args.flash {
        let mut req = pipeline::FlashRequest {
            port: Some(port),
            baud: args.baud,
            out_dir: Some(out),
            already_verified: true,
            ..pipeline::FlashRequest::new(ctx.project_dir(), manifest.board.clone())
        };
        args.after.apply(&mut req);
        let done = pipeline::flash(&req, reporter)?;
        super::flash::report(ctx, &done);
    }
    Ok(())
}
