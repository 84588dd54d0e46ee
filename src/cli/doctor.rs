//! `rvbuild doctor`: check this machine's setup (lands with the CI/ecosystem issue).

use crate::{Error, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_ctx: &Context, _args: Args) -> Result<()> {
    Err(Error::not_implemented("rvbuild doctor"))
}
