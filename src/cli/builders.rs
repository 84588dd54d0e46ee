//! `rvbuild builders`: builder inventory (lands with the distributed-builds issue).

use crate::{Error, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// list | probe | import
    #[arg(default_value = "list")]
    pub action: String,
    /// Hosts to act on.
    pub hosts: Vec<String>,
}

pub fn run(_ctx: &Context, _args: Args) -> Result<()> {
    Err(Error::not_implemented("rvbuild builders"))
}
