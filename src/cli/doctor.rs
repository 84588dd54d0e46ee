//! `rvbuild doctor`: check this machine's setup and say how to fix each problem.

use crate::doctor::{self, Status};
use crate::{Error, ErrorKind, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(ctx: &Context, _args: Args) -> Result<()> {
    let checks = doctor::run_checks();
    if ctx.json {
        let text = serde_json::to_string_pretty(&checks).map_err(|e| Error::msg(ErrorKind::Internal, e.to_string()))?;
        outln!("{text}");
    } else {
        for c in &checks {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            outln!("{mark} {:<9} {:<24} {}", c.area, c.name, c.detail);
            if let Some(fix) = &c.fix {
                outln!("     {:<9} {:<24} fix: {fix}", "", "");
            }
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed > 0 {
        // Only builders failing: that is the "builder unreachable" class (exit 4).
        let only_builders = checks.iter().filter(|c| c.status == Status::Fail).all(|c| c.area == "builders");
        return Err(Error::with_help(
            if only_builders { ErrorKind::Builder } else { ErrorKind::Prerequisite },
            format!("{failed} check(s) failed"),
            "each FAIL line above says how to fix it",
        ));
    }
    Ok(())
}
