//! Target architectures: the one `Arch` of rvbuild. Boards are riscv64 or aarch64
//! ([`Arch::BOARD`]); `verify` checks files of every architecture listed in [`Arch::ALL`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Riscv64,
    Riscv32,
    Aarch64,
    Arm,
    X86_64,
    I386,
}

impl Arch {
    /// Every architecture rvbuild knows (verify checks files of each).
    pub const ALL: &'static [Arch] =
        &[Arch::Riscv64, Arch::Riscv32, Arch::Aarch64, Arch::Arm, Arch::X86_64, Arch::I386];

    /// The architectures a board may have (`arch:` of boards/*.yaml).
    pub const BOARD: &'static [Arch] = &[Arch::Riscv64, Arch::Aarch64];

    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Riscv64 => "riscv64",
            Arch::Riscv32 => "riscv32",
            Arch::Aarch64 => "aarch64",
            Arch::Arm => "arm",
            Arch::X86_64 => "x86_64",
            Arch::I386 => "i386",
        }
    }

    /// True for the architectures of [`Arch::BOARD`].
    pub fn is_board(self) -> bool {
        Arch::BOARD.contains(&self)
    }

    /// Parses a name or a common alias (`rv64`, `arm64`, `armhf`, `amd64`, `i686`, ...).
    pub fn parse(s: &str) -> Option<Arch> {
        match s {
            "riscv64" | "rv64" => Some(Arch::Riscv64),
            "riscv32" | "rv32" => Some(Arch::Riscv32),
            "aarch64" | "arm64" => Some(Arch::Aarch64),
            "arm" | "armhf" | "armel" | "armv7" => Some(Arch::Arm),
            "x86_64" | "amd64" => Some(Arch::X86_64),
            "i386" | "i686" | "x86" => Some(Arch::I386),
            _ => None,
        }
    }

    /// Nix system string of the target.
    pub fn nix_system(self) -> &'static str {
        match self {
            Arch::Riscv64 => "riscv64-linux",
            Arch::Riscv32 => "riscv32-linux",
            Arch::Aarch64 => "aarch64-linux",
            Arch::Arm => "armv7l-linux",
            Arch::X86_64 => "x86_64-linux",
            Arch::I386 => "i686-linux",
        }
    }

    /// The kernel's ARCH= name.
    pub fn karch(self) -> &'static str {
        match self {
            Arch::Riscv64 | Arch::Riscv32 => "riscv",
            Arch::Aarch64 => "arm64",
            Arch::Arm => "arm",
            Arch::X86_64 | Arch::I386 => "x86",
        }
    }

    /// Debian's cross toolchain prefix.
    pub fn cross_prefix(self) -> &'static str {
        match self {
            Arch::Riscv64 => "riscv64-linux-gnu-",
            Arch::Riscv32 => "riscv32-linux-gnu-",
            Arch::Aarch64 => "aarch64-linux-gnu-",
            Arch::Arm => "arm-linux-gnueabihf-",
            Arch::X86_64 => "x86_64-linux-gnu-",
            Arch::I386 => "i686-linux-gnu-",
        }
    }

    /// ABIs a board of this arch may use; none for arches that are not board arches
    /// ([`Arch::BOARD`]).
    pub fn valid_abis(self) -> &'static [&'static str] {
        match self {
            Arch::Riscv64 => &["lp64", "lp64f", "lp64d"],
            Arch::Aarch64 => &["lp64"],
            Arch::Riscv32 | Arch::Arm | Arch::X86_64 | Arch::I386 => &[],
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name [`Arch::parse`] does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownArch(pub String);

impl fmt::Display for UnknownArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<_> = Arch::ALL.iter().map(|a| a.as_str()).collect();
        write!(f, "unknown architecture `{}` (known: {})", self.0, known.join(", "))
    }
}

impl std::error::Error for UnknownArch {}

impl FromStr for Arch {
    type Err = UnknownArch;

    fn from_str(s: &str) -> Result<Arch, UnknownArch> {
        Arch::parse(s).ok_or_else(|| UnknownArch(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &a in Arch::ALL {
            assert_eq!(a.as_str().parse::<Arch>(), Ok(a));
            let json = serde_json::to_string(&a).expect("serialise");
            assert_eq!(json, format!("\"{}\"", a.as_str()));
        }
        assert_eq!("amd64".parse::<Arch>(), Ok(Arch::X86_64));
        assert!("mips".parse::<Arch>().is_err());
        assert!(Arch::BOARD.iter().all(|a| !a.valid_abis().is_empty()));
    }
}
