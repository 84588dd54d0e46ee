//! What the files are expected to be: architecture, ABI, dynamic loader, kernel vermagic and
//! DTB compatible string. Built from `--arch riscv64,abi=lp64d` style specs or from a board.

use serde::Serialize;

use super::elf::{self, Class, Endian};
use super::error::VerifyError;
use crate::Result;
use crate::vocab::Arch;

/// The ELF e_machine of an architecture.
pub fn elf_machine(arch: Arch) -> u16 {
    match arch {
        Arch::Riscv64 | Arch::Riscv32 => elf::EM_RISCV,
        Arch::Aarch64 => elf::EM_AARCH64,
        Arch::Arm => elf::EM_ARM,
        Arch::X86_64 => elf::EM_X86_64,
        Arch::I386 => elf::EM_386,
    }
}

/// The ELF class (32 or 64 bit) of an architecture.
pub fn elf_class(arch: Arch) -> Class {
    match arch {
        Arch::Riscv64 | Arch::Aarch64 | Arch::X86_64 => Class::Elf64,
        Arch::Riscv32 | Arch::Arm | Arch::I386 => Class::Elf32,
    }
}

/// The byte order of an architecture's ELF files (all little-endian here).
pub fn elf_endian(_arch: Arch) -> Endian {
    Endian::Little
}

/// A floating-point calling convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FloatAbi {
    Soft,
    Single,
    Double,
    Quad,
}

impl FloatAbi {
    pub fn name(self) -> &'static str {
        match self {
            FloatAbi::Soft => "soft-float",
            FloatAbi::Single => "single-float",
            FloatAbi::Double => "double-float",
            FloatAbi::Quad => "quad-float",
        }
    }
}

/// The ABI every userspace file must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Abi {
    /// RISC-V: float ABI and the RV32E/RV64E reduced register file.
    Riscv { float: FloatAbi, rve: bool },
    /// 32-bit ARM EABI version 5, hard-float (armhf) or soft-float (armel).
    Arm { hard_float: bool },
    /// The architecture has one ABI (AArch64 lp64, x86_64, i386).
    Native,
}

impl Abi {
    /// The conventional name (lp64d, ilp32, eabihf, ...).
    pub fn name(self, arch: Arch) -> String {
        match self {
            Abi::Riscv { float, rve } => {
                let base = if arch == Arch::Riscv32 { "ilp32" } else { "lp64" };
                let suffix = match (rve, float) {
                    (true, _) => "e",
                    (false, FloatAbi::Soft) => "",
                    (false, FloatAbi::Single) => "f",
                    (false, FloatAbi::Double) => "d",
                    (false, FloatAbi::Quad) => "q",
                };
                format!("{base}{suffix}")
            }
            Abi::Arm { hard_float: true } => "eabihf".into(),
            Abi::Arm { hard_float: false } => "eabi".into(),
            Abi::Native => match arch {
                Arch::Aarch64 => "lp64".into(),
                _ => "sysv".into(),
            },
        }
    }

    pub fn parse(arch: Arch, s: &str) -> Option<Abi> {
        let riscv = |prefix: &str| {
            let rest = s.strip_prefix(prefix)?;
            let (float, rve) = match rest {
                "" => (FloatAbi::Soft, false),
                "f" => (FloatAbi::Single, false),
                "d" => (FloatAbi::Double, false),
                "q" => (FloatAbi::Quad, false),
                "e" => (FloatAbi::Soft, true),
                _ => return None,
            };
            Some(Abi::Riscv { float, rve })
        };
        match arch {
            Arch::Riscv64 => riscv("lp64"),
            Arch::Riscv32 => riscv("ilp32"),
            Arch::Arm => match s {
                "eabihf" | "hard" => Some(Abi::Arm { hard_float: true }),
                "eabi" | "soft" => Some(Abi::Arm { hard_float: false }),
                _ => None,
            },
            Arch::Aarch64 => (s == "lp64").then_some(Abi::Native),
            Arch::X86_64 | Arch::I386 => (s == "sysv").then_some(Abi::Native),
        }
    }

    fn default_for(arch: Arch) -> Abi {
        match arch {
            Arch::Riscv64 | Arch::Riscv32 => Abi::Riscv { float: FloatAbi::Double, rve: false },
            Arch::Arm => Abi::Arm { hard_float: true },
            _ => Abi::Native,
        }
    }
}

/// Everything the files under check are expected to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expectation {
    pub arch: Arch,
    pub abi: Abi,
    /// Whether compressed (RVC) instructions are allowed: `Some(false)` for cores without C.
    pub rvc: Option<bool>,
    /// The dynamic loader every dynamically linked file must name in PT_INTERP.
    pub interp: Option<String>,
    /// The kernel's vermagic every module must carry (release and flags).
    pub vermagic: Option<String>,
    /// A compatible string every DTB must list in its root node.
    pub dtb_compatible: Option<String>,
    /// The board's device-tree compatible strings: the DTB that extlinux.conf names, and the
    /// DTBs inside a FIT, must list one of them or a compatible of the board's SoC.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub board_compatible: Vec<String>,
    /// The board's SoC as in compatible strings (`jh7110` matches `starfive,jh7110`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soc: Option<String>,
    /// File-name patterns (`*` wildcards) of freestanding ELF files (kernel, firmware,
    /// bootloader) that follow the kernel's soft-float ABI and have no dynamic loader.
    pub freestanding: Vec<String>,
    /// Path patterns (`*` matches across `/`) of files not checked at all: firmware for other
    /// processors of the SoC, which is ELF for another machine by design.
    pub ignore: Vec<String>,
}

/// Default ignored paths: device firmware loaded by drivers into other processors.
const IGNORE: &[&str] = &["*/lib/firmware/*"];

/// Default file names of freestanding ELF images.
const FREESTANDING: &[&str] =
    &["vmlinux", "vmlinux.*", "fw_*.elf", "u-boot", "u-boot.elf", "uboot.elf", "u-boot-spl", "opensbi*.elf"];

impl Expectation {
    /// A mismatch when a DTB that must describe the board (named by extlinux.conf, or inside a
    /// FIT) lists neither one of the board's compatible strings nor its SoC; `None` when it
    /// does or when the expectation names no board.
    pub(crate) fn board_dtb_mismatch(&self, compatible: &[String]) -> Option<super::Mismatch> {
        if self.board_compatible.is_empty() && self.soc.is_none() {
            return None;
        }
        let fits = compatible.iter().any(|c| {
            self.board_compatible.contains(c)
                || self.soc.as_deref().is_some_and(|soc| c.split_once(',').is_some_and(|(_, chip)| chip == soc))
        });
        if fits {
            return None;
        }
        let mut want: Vec<String> = self.board_compatible.clone();
        want.extend(self.soc.iter().map(|s| format!("*,{s}")));
        let found = if compatible.is_empty() { "no root compatible".to_string() } else { compatible.join(", ") };
        Some(super::Mismatch::new("dtb-board", format!("one of {}", want.join(", ")), found))
    }

    /// An expectation for an architecture with its default or given ABI and the glibc loader.
    pub fn new(arch: Arch, abi: Option<Abi>) -> Expectation {
        let abi = abi.unwrap_or(Abi::default_for(arch));
        Expectation {
            arch,
            abi,
            rvc: None,
            interp: glibc_loader(arch, abi).map(str::to_string),
            vermagic: None,
            dtb_compatible: None,
            board_compatible: Vec::new(),
            soc: None,
            freestanding: FREESTANDING.iter().map(|s| s.to_string()).collect(),
            ignore: IGNORE.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Parses `ARCH[,abi=ABI][,rvc=yes|no]`, e.g. `riscv64,abi=lp64d` or `aarch64`.
    pub fn parse_arch(spec: &str) -> Result<Expectation> {
        let mut parts = spec.split(',').map(str::trim);
        let arch_name = parts.next().unwrap_or_default();
        let arch = Arch::parse(arch_name).ok_or_else(|| {
            let known: Vec<_> = Arch::ALL.iter().map(|a| a.as_str()).collect();
            VerifyError::UnknownArch { name: arch_name.to_string(), known: known.join(", ") }
        })?;
        let mut abi = None;
        let mut rvc = None;
        for part in parts {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            match key {
                "abi" => {
                    abi = Some(Abi::parse(arch, value).ok_or_else(|| VerifyError::UnknownAbi {
                        value: value.to_string(),
                        arch: arch.as_str(),
                        abis: abi_help(arch),
                    })?)
                }
                "rvc" if matches!(arch, Arch::Riscv64 | Arch::Riscv32) => {
                    rvc = Some(match value {
                        "yes" | "true" | "1" => true,
                        "no" | "false" | "0" => false,
                        _ => {
                            return Err(VerifyError::BadRvc { value: value.to_string() }.into());
                        }
                    })
                }
                _ => {
                    return Err(VerifyError::UnknownOption { part: part.to_string(), spec: spec.to_string() }.into());
                }
            }
        }
        let mut exp = Expectation::new(arch, abi);
        exp.rvc = rvc;
        Ok(exp)
    }

    /// The ABI's conventional name.
    pub fn abi_name(&self) -> String {
        self.abi.name(self.arch)
    }

    /// The ignore pattern `path` matches, if any.
    pub fn ignored_by(&self, path: &str) -> Option<&str> {
        self.ignore.iter().find(|p| glob_match(p, path)).map(String::as_str)
    }

    /// True when `file_name` names a freestanding image (kernel, firmware, bootloader).
    pub fn is_freestanding(&self, file_name: &str) -> bool {
        self.freestanding.iter().any(|p| glob_match(p, file_name))
    }
}

fn abi_help(arch: Arch) -> String {
    let abis = match arch {
        Arch::Riscv64 => "lp64, lp64f, lp64d, lp64q, lp64e",
        Arch::Riscv32 => "ilp32, ilp32f, ilp32d, ilp32e",
        Arch::Arm => "eabihf, eabi",
        Arch::Aarch64 => "lp64",
        Arch::X86_64 | Arch::I386 => "sysv",
    };
    format!("ABIs of {}: {abis}", arch.as_str())
}

/// The glibc dynamic loader path of an architecture and ABI, when glibc has one.
pub fn glibc_loader(arch: Arch, abi: Abi) -> Option<&'static str> {
    Some(match (arch, abi) {
        (Arch::Riscv64, Abi::Riscv { float: FloatAbi::Double, rve: false }) => "/lib/ld-linux-riscv64-lp64d.so.1",
        (Arch::Riscv64, Abi::Riscv { float: FloatAbi::Soft, rve: false }) => "/lib/ld-linux-riscv64-lp64.so.1",
        (Arch::Riscv32, Abi::Riscv { float: FloatAbi::Double, rve: false }) => "/lib/ld-linux-riscv32-ilp32d.so.1",
        (Arch::Riscv32, Abi::Riscv { float: FloatAbi::Soft, rve: false }) => "/lib/ld-linux-riscv32-ilp32.so.1",
        (Arch::Aarch64, _) => "/lib/ld-linux-aarch64.so.1",
        (Arch::Arm, Abi::Arm { hard_float: true }) => "/lib/ld-linux-armhf.so.3",
        (Arch::Arm, Abi::Arm { hard_float: false }) => "/lib/ld-linux.so.3",
        (Arch::X86_64, _) => "/lib64/ld-linux-x86-64.so.2",
        (Arch::I386, _) => "/lib/ld-linux.so.2",
        _ => return None,
    })
}

/// Matches a file name against a pattern where `*` stands for any run of characters.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn arch_specs() {
        let e = Expectation::parse_arch("riscv64,abi=lp64d").unwrap();
        assert_eq!(e.arch, Arch::Riscv64);
        assert_eq!(e.abi_name(), "lp64d");
        assert_eq!(e.interp.as_deref(), Some("/lib/ld-linux-riscv64-lp64d.so.1"));
        let e = Expectation::parse_arch("riscv64,abi=lp64,rvc=no").unwrap();
        assert_eq!(e.abi_name(), "lp64");
        assert_eq!(e.rvc, Some(false));
        let e = Expectation::parse_arch("aarch64").unwrap();
        assert_eq!(e.interp.as_deref(), Some("/lib/ld-linux-aarch64.so.1"));
        assert_eq!(Expectation::parse_arch("riscv64").unwrap().abi_name(), "lp64d");
        for bad in ["mips", "riscv64,abi=eabihf", "aarch64,rvc=no", "riscv64,rvc=maybe", ""] {
            let err = Expectation::parse_arch(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("vmlinux", "vmlinux"));
        assert!(!glob_match("vmlinux", "vmlinux2"));
        assert!(glob_match("fw_*.elf", "fw_jump.elf"));
        assert!(!glob_match("fw_*.elf", "fw_jump.bin"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("*", ""));
        let mut e = Expectation::new(Arch::Aarch64, None);
        e.ignore.push("*/start*.elf".into());
        assert_eq!(e.ignored_by("out/lib/firmware/brcm/x.bin"), Some("*/lib/firmware/*"));
        assert_eq!(e.ignored_by("boot/start4.elf"), Some("*/start*.elf"));
        assert_eq!(e.ignored_by("boot/Image"), None);
    }
}
