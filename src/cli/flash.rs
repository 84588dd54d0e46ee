//! `rvbuild flash`: write a board's images over serial (lands with the flash issue).

use crate::{Error, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The board to flash.
    pub board: String,
    /// Serial port, or `auto`.
    #[arg(long, env = "RVBUILD_PORT")]
    pub port: Option<String>,
    /// Image file to write instead of the board build's outputs.
    #[arg(long)]
    pub image: Option<std::path::PathBuf>,
    /// Baud rate.
    #[arg(long)]
    pub baud: Option<u32>,
}

pub fn run(_ctx: &Context, _args: Args) -> Result<()> {
    Err(Error::not_implemented("rvbuild flash"))
}
