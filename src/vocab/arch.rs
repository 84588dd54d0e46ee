//! The target architectures of boards.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Riscv64,
    Aarch64,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Riscv64 => "riscv64",
            Arch::Aarch64 => "aarch64",
        }
    }
    /// Nix system string of the target.
    pub fn nix_system(self) -> &'static str {
        match self {
            Arch::Riscv64 => "riscv64-linux",
            Arch::Aarch64 => "aarch64-linux",
        }
    }
    /// The kernel's ARCH= name.
    pub fn karch(self) -> &'static str {
        match self {
            Arch::Riscv64 => "riscv",
            Arch::Aarch64 => "arm64",
        }
    }
    /// Debian's cross toolchain prefix.
    pub fn cross_prefix(self) -> &'static str {
        match self {
            Arch::Riscv64 => "riscv64-linux-gnu-",
            Arch::Aarch64 => "aarch64-linux-gnu-",
        }
    }
    /// ABIs valid for this arch.
    pub fn valid_abis(self) -> &'static [&'static str] {
        match self {
            Arch::Riscv64 => &["lp64", "lp64f", "lp64d"],
            Arch::Aarch64 => &["lp64"],
        }
    }
}
