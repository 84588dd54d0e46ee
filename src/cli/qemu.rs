//! `rvbuild qemu`: boot a board's image in QEMU.

use crate::{Error, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The board to boot.
    pub board: String,
}

pub fn run(_ctx: &Context, _args: Args) -> Result<()> {
    Err(Error::not_implemented("rvbuild qemu"))
}
