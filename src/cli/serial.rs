//! `rvbuild serial`: serial port tools (lands with the flash issue).

use crate::{Error, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// list | send
    pub action: String,
    /// File to send.
    pub file: Option<std::path::PathBuf>,
    /// Serial port.
    #[arg(long, env = "RVBUILD_PORT")]
    pub port: Option<String>,
    /// xmodem | xmodem-1k | ymodem
    #[arg(long, default_value = "ymodem")]
    pub protocol: String,
}

pub fn run(_ctx: &Context, _args: Args) -> Result<()> {
    Err(Error::not_implemented("rvbuild serial"))
}
