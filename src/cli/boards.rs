//! `rvbuild boards`: list the known boards (SoC, arch, flash method), or validate every board
//! and profile file with `--check`.

use crate::profile::{self, board::FlashMethod};
use crate::{Error, ErrorKind, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Validate every board and profile file (project and shipped) and report all problems.
    #[arg(long)]
    pub check: bool,
}

fn method_name(m: FlashMethod) -> &'static str {
    match m {
        FlashMethod::UbootVirtio => "uboot-virtio",
        FlashMethod::UbootSpiNor => "uboot-spi-nor",
        FlashMethod::UbootMmc => "uboot-mmc",
        FlashMethod::SdCard => "sd-card",
    }
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let project = ctx.project_dir();
    if args.check {
        let (n, problems) = profile::check_all(&project);
        if problems.is_empty() {
            outln!("{n} board and profile files OK");
            return Ok(());
        }
        return Err(Error::new(
            ErrorKind::Config,
            profile::ProfileErrors {
                summary: format!("{} problem(s) in {n} board and profile files", problems.len()),
                errors: problems,
            },
        ));
    }
    let mut rows = Vec::new();
    for name in profile::list_names(&project, "boards") {
        let b = profile::load_board(&project, &name)?;
        let v = &b.value;
        rows.push(serde_json::json!({
            "name": name,
            "soc": v.soc,
            "arch": v.arch.value.as_str(),
            "isa": v.isa.value,
            "abi": v.abi.value,
            "flash": method_name(v.flash.method),
            "qemu": v.qemu.is_some(),
            "description": v.description,
            "source": b.source.name,
        }));
    }
    if ctx.json {
        outln!("{}", serde_json::to_string_pretty(&rows).map_err(|e| Error::msg(ErrorKind::Internal, e.to_string()))?);
        return Ok(());
    }
    outln!("{:<14} {:<18} {:<8} {:<8} {:<14} QEMU", "BOARD", "SOC", "ARCH", "ABI", "FLASH");
    for r in &rows {
        outln!(
            "{:<14} {:<18} {:<8} {:<8} {:<14} {}",
            r["name"].as_str().unwrap_or_default(),
            r["soc"].as_str().unwrap_or_default(),
            r["arch"].as_str().unwrap_or_default(),
            r["abi"].as_str().unwrap_or_default(),
            r["flash"].as_str().unwrap_or_default(),
            if r["qemu"].as_bool().unwrap_or(false) { "yes" } else { "no" }
        );
    }
    Ok(())
}
