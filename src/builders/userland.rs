//! The native Debian userlands the host provider's target-system derivations run in
//! (`<root>/userland-<debian arch>`, made by scripts/setup-host.sh with mmdebstrap): finding one,
//! its identity (the hash of its stamp file, which lists every installed package's version), and
//! whether this machine's Nix can run derivations of a target system locally (binfmt qemu-user
//! plus `extra-platforms`).

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::error::BuildersError;
use crate::Result;
use crate::vocab::Arch;

/// The stamp file inside a userland: a request line, then `package version arch` lines.
pub const STAMP: &str = ".rvbuild-userland";

/// A userland a target-system derivation uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Userland {
    /// Nix system of its programs (`riscv64-linux`).
    pub system: String,
    pub dir: PathBuf,
    /// sha256 (hex) of the stamp file: changes whenever a package in the userland changes.
    pub id: String,
}

/// Where userlands live: `RVBUILD_USERLAND_ROOT`, else /var/lib/rvbuild.
pub fn root() -> PathBuf {
    match std::env::var_os("RVBUILD_USERLAND_ROOT") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from("/var/lib/rvbuild"),
    }
}

/// Debian's name of an architecture.
pub fn debian_arch(arch: Arch) -> &'static str {
    match arch {
        Arch::Riscv64 => "riscv64",
        Arch::Aarch64 => "arm64",
        Arch::Riscv32 => "riscv32",
        Arch::Arm => "armhf",
        Arch::X86_64 => "amd64",
        Arch::I386 => "i386",
    }
}

/// The Nix system of a Debian architecture's userland (`arm64` -> `aarch64-linux`).
pub fn system_of_debian_arch(debian: &str) -> Option<&'static str> {
    match debian {
        "riscv64" => Some("riscv64-linux"),
        "arm64" => Some("aarch64-linux"),
        _ => None,
    }
}

/// The system feature that stands for "has this userland": target-system derivations require
/// it, and a builder offers it when it has the same userland (the local machine from its own
/// directory, a remote one from `rvbuild builders probe`).
pub fn feature(id: &str) -> String {
    format!("rvbuild-userland-{}", id.get(..16).unwrap_or(id))
}

/// The identity of a stamp file's contents.
pub fn stamp_id(contents: &[u8]) -> String {
    Sha256::digest(contents).iter().map(|b| format!("{b:02x}")).collect()
}

/// The userland for `arch` below `root`, checked to be complete.
pub fn find_in(root: &Path, arch: Arch) -> Result<Userland> {
    let dir = root.join(format!("userland-{}", debian_arch(arch)));
    let stamp = dir.join(STAMP);
    let contents = std::fs::read(&stamp).map_err(|source| BuildersError::UserlandMissing {
        arch: debian_arch(arch),
        stamp: stamp.clone(),
        source,
    })?;
    for tool in ["usr/bin/bash", "usr/bin/gcc", "usr/bin/sha256sum"] {
        if !dir.join(tool).exists() {
            return Err(BuildersError::UserlandIncomplete { arch: debian_arch(arch), dir, tool }.into());
        }
    }
    Ok(Userland { system: arch.nix_system().to_string(), dir, id: stamp_id(&contents) })
}

/// The userland for `arch` on this machine.
pub fn find(arch: Arch) -> Result<Userland> {
    find_in(&root(), arch)
}

/// The qemu-user architecture name binfmt registers for a Nix system.
fn qemu_arch(system: &str) -> &str {
    system.split('-').next().unwrap_or(system)
}

/// Checks that the local Nix builds `system` derivations: the system is this machine's, or it
/// is in Nix's `extra-platforms` and binfmt has an enabled qemu-user handler for it.
pub fn check_local_support(system: &str) -> Result<()> {
    let out = Command::new("nix")
        .args(["--extra-experimental-features", "nix-command", "show-config"])
        .output()
        .map_err(|source| BuildersError::NixShowConfig { source })?;
    let config = String::from_utf8_lossy(&out.stdout);
    let setting = |name: &str| -> Vec<String> {
        config
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.trim_start().strip_prefix('=')))
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    if setting("system").iter().any(|s| s == system) {
        return Ok(());
    }
    if !setting("extra-platforms").iter().any(|s| s == system) {
        return Err(BuildersError::NotInExtraPlatforms { system: system.to_string() }.into());
    }
    let handler = PathBuf::from("/proc/sys/fs/binfmt_misc").join(format!("qemu-{}", qemu_arch(system)));
    let enabled = std::fs::read_to_string(&handler).map(|t| t.lines().next() == Some("enabled")).unwrap_or(false);
    if !enabled {
        return Err(BuildersError::NoBinfmt { system: system.to_string(), handler }.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_userland_is_found_by_its_stamp_and_named_by_its_hash() {
        let root = tempfile::tempdir().expect("tempdir");
        let e = find_in(root.path(), Arch::Riscv64).expect_err("empty root");
        assert!(e.to_string().contains("riscv64 userland"), "{e}");
        let dir = root.path().join("userland-riscv64");
        std::fs::create_dir_all(dir.join("usr/bin")).expect("mkdir");
        std::fs::write(dir.join(STAMP), "rvbuild-userland 1 riscv64 stable gcc\ngcc 4:14.2.0-1 riscv64\n")
            .expect("stamp");
        let e = find_in(root.path(), Arch::Riscv64).expect_err("no tools");
        assert!(e.to_string().contains("incomplete"), "{e}");
        for t in ["bash", "gcc", "sha256sum"] {
            std::fs::write(dir.join("usr/bin").join(t), "").expect("tool");
        }
        let u = find_in(root.path(), Arch::Riscv64).expect("found");
        assert_eq!(u.system, "riscv64-linux");
        assert_eq!(u.id.len(), 64);
        // a package upgrade changes the identity
        std::fs::write(dir.join(STAMP), "rvbuild-userland 1 riscv64 stable gcc\ngcc 4:14.2.0-2 riscv64\n")
            .expect("stamp");
        assert_ne!(find_in(root.path(), Arch::Riscv64).expect("found").id, u.id);
        assert!(find_in(root.path(), Arch::Aarch64).is_err(), "arm64 lives in userland-arm64");
    }
}
