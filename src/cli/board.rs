//! `rvbuild board`: build a board's complete image.

use crate::{Error, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The board name (boards/NAME.yaml) or a path to a board file.
    pub board: String,
    /// Build profile name (profiles/NAME.yaml) or file.
    #[arg(long, default_value = "dev")]
    pub profile: String,
}

pub fn run(_ctx: &Context, _args: Args) -> Result<()> {
    Err(Error::not_implemented("rvbuild board"))
}
