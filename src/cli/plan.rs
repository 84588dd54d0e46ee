//! `rvbuild plan`: per-component strategy and schedule (lands with the plan/schedule issue).

use crate::{Error, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The board to plan.
    pub board: String,
    /// Build profile name or file.
    #[arg(long, default_value = "dev")]
    pub profile: String,
}

pub fn run(_ctx: &Context, _args: Args) -> Result<()> {
    Err(Error::not_implemented("rvbuild plan"))
}
