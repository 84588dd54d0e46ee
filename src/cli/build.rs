//! `rvbuild build`: build a Nix derivation graph over the builder pool (lands with the distributed-builds issue).

use crate::{Error, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A .nix file or /nix/store/...drv paths.
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// Attribute to build from the .nix file.
    #[arg(short = 'A', long)]
    pub attr: Option<String>,
    /// Builders, in Nix machines-file syntax or @FILE.
    #[arg(long)]
    pub builders: Option<String>,
}

pub fn run(_ctx: &Context, _args: Args) -> Result<()> {
    Err(Error::not_implemented("rvbuild build"))
}
