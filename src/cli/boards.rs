//! `rvbuild boards`: list boards, or validate every board and profile file.

use crate::{Error, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Validate every board and profile file and report all problems.
    #[arg(long)]
    pub check: bool,
}

pub fn run(_ctx: &Context, _args: Args) -> Result<()> {
    Err(Error::not_implemented("rvbuild boards"))
}
