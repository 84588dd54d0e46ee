//! `rvbuild verify`: ELF and image checks (lands with the verify issue).

use crate::{Error, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories to check.
    #[arg(required = true)]
    pub paths: Vec<std::path::PathBuf>,
    /// Check against this board's arch and ABI.
    #[arg(long)]
    pub board: Option<String>,
    /// Check against an arch, e.g. riscv64,abi=lp64d or aarch64.
    #[arg(long)]
    pub arch: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_ctx: &Context, _args: Args) -> Result<()> {
    Err(Error::not_implemented("rvbuild verify"))
}
