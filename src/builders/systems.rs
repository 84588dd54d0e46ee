//! Nix system names from what a host reports: `uname -m`, the ELF machine a binfmt_misc handler
//! matches, and which systems a CPU family runs without emulation.

/// The systems rvbuild has benchmark binaries for (and measures emulation of).
pub const BENCH_SYSTEMS: &[&str] = &["x86_64-linux", "aarch64-linux", "riscv64-linux"];

/// The Nix system of a Linux machine whose `uname -m` is `machine`.
pub fn from_uname(machine: &str) -> Option<String> {
    let arch = match machine.trim() {
        "x86_64" | "amd64" => "x86_64",
        "aarch64" | "arm64" => "aarch64",
        "riscv64" => "riscv64",
        "i386" | "i486" | "i586" | "i686" => "i686",
        "armv7l" | "armv7" => "armv7l",
        "armv6l" => "armv6l",
        "" => return None,
        other => other,
    };
    Some(format!("{arch}-linux"))
}

/// The Nix system of ELF files a binfmt_misc handler matches, from its `magic` (hex bytes of
/// the ELF header from `offset` 0): EI_CLASS at byte 4, e_machine (little-endian) at byte 18.
pub fn from_binfmt_magic(offset: u32, magic_hex: &str) -> Option<&'static str> {
    if offset != 0 || !magic_hex.starts_with("7f454c46") {
        return None;
    }
    let byte = |i: usize| magic_hex.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
    let class64 = byte(4)? == 2;
    let machine = u16::from(byte(18)?) | (u16::from(byte(19)?) << 8);
    Some(match (machine, class64) {
        (0x3e, true) => "x86_64-linux",
        (0x03, false) => "i686-linux",
        (0xb7, true) => "aarch64-linux",
        (0x28, false) => "armv7l-linux",
        (0xf3, true) => "riscv64-linux",
        (0xf3, false) => "riscv32-linux",
        (0x15, true) => "powerpc64-linux",
        (0x16, true) => "s390x-linux",
        _ => return None,
    })
}

/// The CPU family of a system: systems of one family run on each other's hardware without
/// emulation (an x86_64 host runs i686; an aarch64 host usually runs armv7l).
pub fn family(system: &str) -> &str {
    let arch = system.split('-').next().unwrap_or(system);
    match arch {
        "x86_64" | "i686" | "i386" => "x86",
        a if a.starts_with("x86_64") => "x86",
        "aarch64" | "armv7l" | "armv6l" | "armv5tel" => "arm",
        "riscv64" | "riscv32" => "riscv",
        other => other,
    }
}

/// Whether a host whose native system is `native` runs `system` without emulation.
pub fn runs_natively(native: &str, system: &str) -> bool {
    native == system || family(native) == family(system)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uname_names_map_to_nix_systems() {
        assert_eq!(from_uname("x86_64\n").as_deref(), Some("x86_64-linux"));
        assert_eq!(from_uname("arm64").as_deref(), Some("aarch64-linux"));
        assert_eq!(from_uname("riscv64").as_deref(), Some("riscv64-linux"));
        assert_eq!(from_uname("mips64").as_deref(), Some("mips64-linux"));
        assert_eq!(from_uname(" "), None);
    }

    #[test]
    fn binfmt_magic_gives_the_elf_machine() {
        // Debian's qemu-user-static entries.
        assert_eq!(from_binfmt_magic(0, "7f454c460201010000000000000000000200f300"), Some("riscv64-linux"));
        assert_eq!(from_binfmt_magic(0, "7f454c460201010000000000000000000200b700"), Some("aarch64-linux"));
        assert_eq!(from_binfmt_magic(0, "7f454c4602010100000000000000000002003e00"), Some("x86_64-linux"));
        assert_eq!(from_binfmt_magic(0, "7f454c460101010000000000000000000200f300"), Some("riscv32-linux"));
        // Not ELF, wrong offset, truncated, unknown machine.
        assert_eq!(from_binfmt_magic(0, "4d5a"), None);
        assert_eq!(from_binfmt_magic(2, "7f454c460201010000000000000000000200f300"), None);
        assert_eq!(from_binfmt_magic(0, "7f454c4602"), None);
        assert_eq!(from_binfmt_magic(0, "7f454c460201010000000000000000000200ff00"), None);
    }

    #[test]
    fn families_decide_what_needs_emulation() {
        assert!(runs_natively("x86_64-linux", "i686-linux"));
        assert!(runs_natively("x86_64-linux", "x86_64-v3-linux"));
        assert!(runs_natively("aarch64-linux", "armv7l-linux"));
        assert!(!runs_natively("x86_64-linux", "riscv64-linux"));
        assert!(!runs_natively("riscv64-linux", "aarch64-linux"));
    }
}
