//! Expectations of a board build: what `rvbuild board`, `rvbuild flash` and `rvbuild verify
//! --board` check its outputs against. Arch, ABI and loader come from the board profile, the
//! modules' vermagic from the built kernel's release and configuration, each device tree's
//! compatible string from the profile.

use std::path::PathBuf;

use crate::Result;
use crate::profile::Board;
use crate::vocab::Manifest;

use super::error::VerifyError;
use super::{Abi, Arch, Expectation, Report};

/// The vermagic string the kernel writes into every module it accepts (include/linux/vermagic.h):
/// release, then SMP / preempt / mod_unload / modversions by configuration, then the arch tag.
pub fn kernel_vermagic(release: &str, config: &str, arch: Arch) -> String {
    let on = |sym: &str| config.lines().any(|l| l.trim() == format!("CONFIG_{sym}=y"));
    let mut v = format!("{release} ");
    if on("SMP") {
        v.push_str("SMP ");
    }
    if on("PREEMPT_BUILD") {
        v.push_str("preempt ");
    } else if on("PREEMPT_RT") {
        v.push_str("preempt_rt ");
    }
    if on("MODULE_UNLOAD") {
        v.push_str("mod_unload ");
    }
    if on("MODVERSIONS") {
        v.push_str("modversions ");
    }
    // MODULE_ARCH_VERMAGIC of each arch; x86's depends on the CPU family (none for generic).
    v.push_str(match arch {
        Arch::Riscv64 | Arch::Riscv32 => "riscv",
        Arch::Aarch64 => "aarch64",
        Arch::Arm => "ARMv7 p2v8",
        Arch::X86_64 | Arch::I386 => "",
    });
    v.trim_end().to_string()
}

/// The expectation for a board profile; with a manifest, the modules' vermagic too.
pub fn expectation(board: &Board, manifest: Option<&Manifest>) -> Result<Expectation> {
    let arch = board.arch.value;
    let abi = Abi::parse(arch, &board.abi.value)
        .ok_or_else(|| VerifyError::BoardAbi { board: board.name.value.clone(), abi: board.abi.value.clone() })?;
    let mut exp = Expectation::new(arch, Some(abi));
    if let Some(interp) = &board.interpreter {
        exp.interp = Some(interp.clone());
    }
    exp.board_compatible = board.device_trees.iter().filter_map(|d| d.compatible.clone()).collect();
    // "StarFive JH7110" -> jh7110, as in the compatible "starfive,jh7110"; QEMU's virt has no DTB
    // of its own in the image.
    exp.soc = board
        .soc
        .split_whitespace()
        .last()
        .map(str::to_ascii_lowercase)
        .filter(|s| !exp.board_compatible.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()));
    // Firmware files for other processors (the Pi's VideoCore) are ELF for another machine.
    for f in &board.boot_files.firmware {
        if f.value.starts_with("start") && f.value.ends_with(".elf") {
            exp.ignore.push(format!("*/{}", f.value));
        }
    }
    for f in &board.firmware.files {
        if f.name.value.ends_with(".elf") {
            exp.ignore.push(format!("*/{}", f.name.value));
        }
    }
    if let Some(m) = manifest
        && let Some(release) = &m.kernel_release
        && let Some(config) = m.artifacts.get("kernel/config")
    {
        let text = std::fs::read_to_string(config)
            .map_err(|source| VerifyError::KernelConfig { path: config.clone(), source })?;
        exp.vermagic = Some(kernel_vermagic(release, &text, board.arch.value));
    }
    Ok(exp)
}

/// The outputs of a build that reach the board (see [`super::walk::board_outputs`]).
pub fn outputs(m: &Manifest) -> Vec<PathBuf> {
    super::walk::board_outputs(m)
}

/// Verifies a board build's outputs, and each of the board's DTBs against its compatible string,
/// in one report (clean or not: the caller decides; [`super::refusal`] makes the error).
pub fn check_build(board: &Board, m: &Manifest) -> Result<Report> {
    let exp = expectation(board, Some(m))?;
    let mut files = super::verify_paths(&outputs(m), &exp).files;
    for dt in &board.device_trees {
        if let (Some(compatible), Some(path)) = (&dt.compatible, m.artifacts.get(&format!("dtbs/{}", dt.name.value))) {
            let mut e = exp.clone();
            e.dtb_compatible = Some(compatible.clone());
            files.extend(super::verify_paths(&[PathBuf::from(path)], &e).files);
        }
    }
    Ok(Report::new(exp, files))
}

#[cfg(test)]
mod tests {
    use super::kernel_vermagic;
    use crate::profile::Arch;

    #[test]
    fn vermagic_follows_the_config() {
        let cfg = "CONFIG_MODULES=y\nCONFIG_MODULE_UNLOAD=y\n# CONFIG_SMP is not set\n";
        assert_eq!(kernel_vermagic("6.12.117", cfg, Arch::Riscv64), "6.12.117 mod_unload riscv");
        let cfg = "CONFIG_SMP=y\nCONFIG_PREEMPT_BUILD=y\nCONFIG_MODULE_UNLOAD=y\nCONFIG_MODVERSIONS=y\n";
        assert_eq!(
            kernel_vermagic("6.12.117", cfg, Arch::Aarch64),
            "6.12.117 SMP preempt mod_unload modversions aarch64"
        );
    }
}
