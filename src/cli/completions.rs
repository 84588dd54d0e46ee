//! `rvbuild completions SHELL|man`: shell completions and the man page, generated from the clap
//! definitions so they never drift from the real options.

use clap::CommandFactory;

use crate::{Error, ErrorKind, Result};

use super::{Cli, Context};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Target {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
    /// The man page (roff) on stdout: `rvbuild completions man > rvbuild.1`.
    Man,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell, or `man`.
    #[arg(value_enum)]
    pub target: Target,
}

pub fn run(_ctx: &Context, args: Args) -> Result<()> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout();
    let shell = match args.target {
        Target::Bash => clap_complete::Shell::Bash,
        Target::Zsh => clap_complete::Shell::Zsh,
        Target::Fish => clap_complete::Shell::Fish,
        Target::Elvish => clap_complete::Shell::Elvish,
        Target::Powershell => clap_complete::Shell::PowerShell,
        Target::Man => {
            return clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(|e| Error::io(ErrorKind::Internal, "man page", e));
        }
    };
    clap_complete::generate(shell, &mut cmd, "rvbuild", &mut out);
    Ok(())
}
