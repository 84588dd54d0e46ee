//! The ELF checks proper: compares what an ELF file declares (machine, class, byte order,
//! OS/ABI, type, RISC-V and ARM ABI flags, loader, vermagic) with the expectation.

use super::elf::{self, Header};
use super::expect::{Abi, Expectation, FloatAbi, elf_class, elf_endian, elf_machine};
use super::report::{ElfSummary, FileResult, Mismatch, Status};
use crate::vocab::Arch;

/// RISC-V e_flags bits.
const EF_RISCV_RVC: u32 = 0x1;
const EF_RISCV_FLOAT_ABI: u32 = 0x6;
const EF_RISCV_RVE: u32 = 0x8;
/// ARM e_flags bits.
const EF_ARM_EABIMASK: u32 = 0xff00_0000;
const EF_ARM_ABI_FLOAT_SOFT: u32 = 0x200;
const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;

const OSABI_SYSV: u8 = 0;
const OSABI_GNU: u8 = 3;

/// What was read from one ELF file.
#[derive(Debug, Clone)]
pub(crate) struct ElfFacts {
    pub header: Header,
    pub interp: Option<String>,
    /// `vermagic=` of `.modinfo`, for relocatable objects that have one.
    pub vermagic: Option<String>,
    /// A kernel module: named `*.ko` or carrying a vermagic.
    pub is_module: bool,
    /// A kernel, firmware or bootloader image (by file name, see `Expectation::freestanding`).
    pub freestanding: bool,
}

/// The float ABI a RISC-V file declares.
pub(crate) fn riscv_float_abi(flags: u32) -> FloatAbi {
    match (flags & EF_RISCV_FLOAT_ABI) >> 1 {
        0 => FloatAbi::Soft,
        1 => FloatAbi::Single,
        2 => FloatAbi::Double,
        _ => FloatAbi::Quad,
    }
}

/// The summary shown in reports and JSON.
pub(crate) fn summarize(f: &ElfFacts) -> ElfSummary {
    let h = &f.header;
    let riscv = h.machine == elf::EM_RISCV;
    let float_abi = match h.machine {
        elf::EM_RISCV => Some(riscv_float_abi(h.flags).name()),
        elf::EM_ARM if h.flags & EF_ARM_ABI_FLOAT_HARD != 0 => Some("hard-float"),
        elf::EM_ARM if h.flags & EF_ARM_ABI_FLOAT_SOFT != 0 => Some("soft-float"),
        _ => None,
    };
    ElfSummary {
        class: h.class.name(),
        data: match h.endian {
            elf::Endian::Little => "little",
            elf::Endian::Big => "big",
        },
        osabi: h.osabi,
        abi_version: h.abi_version,
        e_type: h.e_type,
        type_name: elf::type_name(h.e_type),
        machine: h.machine,
        machine_name: elf::machine_name(h.machine),
        flags: h.flags,
        float_abi,
        rvc: riscv.then_some(h.flags & EF_RISCV_RVC != 0),
        interp: f.interp.clone(),
        vermagic: f.vermagic.clone(),
    }
}

fn machine_label(m: u16) -> String {
    format!("{} ({m})", elf::machine_name(m))
}

/// Every mismatch between the file and the expectation.
pub(crate) fn check_elf(exp: &Expectation, f: &ElfFacts) -> Vec<Mismatch> {
    let h = &f.header;
    let mut out = Vec::new();
    let arch = exp.arch;
    if h.machine != elf_machine(arch) {
        out.push(Mismatch::new("machine", machine_label(elf_machine(arch)), machine_label(h.machine)));
    }
    if h.class != elf_class(arch) {
        out.push(Mismatch::new("class", elf_class(arch).name(), h.class.name()));
    }
    if h.endian != elf_endian(arch) {
        out.push(Mismatch::new("endianness", elf_endian(arch).name(), h.endian.name()));
    }
    if h.osabi != OSABI_SYSV && h.osabi != OSABI_GNU {
        out.push(Mismatch::new(
            "os-abi",
            "UNIX - System V (0) or UNIX - GNU (3)",
            format!("{} ({})", elf::osabi_name(h.osabi), h.osabi),
        ));
    }
    if !matches!(h.e_type, elf::ET_REL | elf::ET_EXEC | elf::ET_DYN) {
        out.push(Mismatch::new("type", "REL, EXEC or DYN", format!("{} ({})", elf::type_name(h.e_type), h.e_type)));
    }
    // ABI flags only mean something once the machine is the right one.
    if out.iter().all(|m| m.check != "machine") {
        match (arch, exp.abi) {
            (Arch::Riscv64 | Arch::Riscv32, Abi::Riscv { float, rve }) => check_riscv(exp, f, float, rve, &mut out),
            (Arch::Arm, Abi::Arm { hard_float }) => check_arm(f, hard_float, &mut out),
            _ => {}
        }
    }
    if let (Some(found), Some(want)) = (&f.interp, &exp.interp)
        && !interp_matches(want, found)
    {
        out.push(Mismatch::new("interp", want, found));
    }
    if f.is_module {
        match (&exp.vermagic, &f.vermagic) {
            (Some(want), Some(found)) if want != found => out.push(Mismatch::new("vermagic", want, found)),
            (want, None) => out.push(Mismatch::new(
                "vermagic",
                want.as_deref().unwrap_or("a vermagic= entry in .modinfo"),
                "none (no .modinfo vermagic)",
            )),
            _ => {}
        }
    }
    out
}

fn check_riscv(exp: &Expectation, f: &ElfFacts, float: FloatAbi, rve: bool, out: &mut Vec<Mismatch>) {
    let flags = f.header.flags;
    let found = riscv_float_abi(flags);
    // Linux builds the kernel and its modules soft-float; firmware and bootloaders likewise
    // follow no userspace ABI.
    if f.is_module {
        if found != FloatAbi::Soft {
            out.push(Mismatch::new("float-abi", "soft-float (kernel modules)", found.name()));
        }
    } else if !f.freestanding && found != float {
        out.push(Mismatch::new("float-abi", format!("{} ({})", float.name(), exp.abi_name()), found.name()));
    }
    let has_rve = flags & EF_RISCV_RVE != 0;
    if has_rve != rve {
        let name = |e: bool| if e { "RVE (16 registers)" } else { "no RVE" };
        out.push(Mismatch::new("rve", name(rve), name(has_rve)));
    }
    if exp.rvc == Some(false) && flags & EF_RISCV_RVC != 0 {
        out.push(Mismatch::new("rvc", "no compressed instructions", "RVC (compressed instructions)"));
    }
}

fn check_arm(f: &ElfFacts, hard_float: bool, out: &mut Vec<Mismatch>) {
    let flags = f.header.flags;
    let eabi = (flags & EF_ARM_EABIMASK) >> 24;
    if eabi != 5 {
        out.push(Mismatch::new("arm-eabi", "EABI version 5", format!("EABI version {eabi}")));
    }
    let want_hard = hard_float && !f.is_module && !f.freestanding;
    if want_hard && flags & EF_ARM_ABI_FLOAT_SOFT != 0 {
        out.push(Mismatch::new("float-abi", "hard-float", "soft-float"));
    }
    if !want_hard && flags & EF_ARM_ABI_FLOAT_HARD != 0 {
        out.push(Mismatch::new("float-abi", "soft-float", "hard-float"));
    }
}

/// The loader matches when it is the expected path, or the same loader inside a Nix store path
/// (`/nix/store/<hash>-glibc-<version>/lib/ld-linux-riscv64-lp64d.so.1`).
pub(crate) fn interp_matches(want: &str, found: &str) -> bool {
    if want == found {
        return true;
    }
    let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
    found.starts_with("/nix/store/") && base(found) == base(want)
}

/// Without an expected vermagic, the modules of one run must at least agree with each other:
/// those that differ from the most common vermagic are mismatches.
pub(crate) fn cross_check_vermagic(exp: &Expectation, files: &mut [FileResult]) {
    if exp.vermagic.is_some() {
        return;
    }
    let mut counts: Vec<(String, usize)> = Vec::new();
    for v in files.iter().filter_map(|f| f.elf.as_ref()?.vermagic.clone()) {
        match counts.iter_mut().find(|(seen, _)| *seen == v) {
            Some((_, n)) => *n += 1,
            None => counts.push((v, 1)),
        }
    }
    if counts.len() < 2 {
        return;
    }
    // max_by_key keeps the last maximum; reverse so the first-seen value wins ties.
    let Some((common, n)) = counts.iter().rev().max_by_key(|(_, n)| *n).cloned() else {
        return;
    };
    for f in files.iter_mut() {
        let Some(found) = f.elf.as_ref().and_then(|e| e.vermagic.clone()) else {
            continue;
        };
        if found != common {
            f.mismatches.push(Mismatch::new("vermagic", format!("{common} (as {n} other modules)"), found));
            f.status = Status::Mismatch;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::elf::{Class, Endian};

    fn facts(machine: u16, flags: u32) -> ElfFacts {
        ElfFacts {
            header: Header {
                class: Class::Elf64,
                endian: Endian::Little,
                osabi: 0,
                abi_version: 0,
                e_type: elf::ET_DYN,
                machine,
                flags,
                phoff: 0,
                phentsize: 56,
                phnum: 0,
                shoff: 0,
                shentsize: 64,
                shnum: 0,
                shstrndx: 0,
            },
            interp: None,
            vermagic: None,
            is_module: false,
            freestanding: false,
        }
    }

    fn checks(m: &[Mismatch]) -> Vec<&str> {
        m.iter().map(|m| m.check).collect()
    }

    #[test]
    fn riscv_float_abi_and_rve() {
        let exp = Expectation::parse_arch("riscv64,abi=lp64d").unwrap();
        assert!(check_elf(&exp, &facts(elf::EM_RISCV, 0x5)).is_empty());
        assert_eq!(checks(&check_elf(&exp, &facts(elf::EM_RISCV, 0x1))), ["float-abi"]);
        assert_eq!(checks(&check_elf(&exp, &facts(elf::EM_RISCV, 0xd))), ["rve"]);
        let mut module = facts(elf::EM_RISCV, 0x1);
        module.is_module = true;
        module.vermagic = Some("6.12.0 SMP mod_unload riscv".into());
        assert!(check_elf(&exp, &module).is_empty());
        let no_rvc = Expectation::parse_arch("riscv64,rvc=no").unwrap();
        assert_eq!(checks(&check_elf(&no_rvc, &facts(elf::EM_RISCV, 0x5))), ["rvc"]);
    }

    #[test]
    fn arm_flags() {
        let exp = Expectation::parse_arch("arm,abi=eabihf").unwrap();
        let mut f = facts(elf::EM_ARM, 0x0500_0400);
        f.header.class = Class::Elf32;
        assert!(check_elf(&exp, &f).is_empty());
        f.header.flags = 0x0500_0200;
        assert_eq!(checks(&check_elf(&exp, &f)), ["float-abi"]);
        f.header.flags = 0x0400_0400;
        assert_eq!(checks(&check_elf(&exp, &f)), ["arm-eabi"]);
    }

    #[test]
    fn wrong_machine_skips_flag_checks() {
        let exp = Expectation::parse_arch("riscv64").unwrap();
        let m = check_elf(&exp, &facts(elf::EM_AARCH64, 0));
        assert_eq!(checks(&m), ["machine"]);
        assert_eq!(m[0].expected, "RISC-V (243)");
        assert_eq!(m[0].found, "AArch64 (183)");
    }

    #[test]
    fn interp_rules() {
        let want = "/lib/ld-linux-riscv64-lp64d.so.1";
        assert!(interp_matches(want, want));
        assert!(interp_matches(want, "/nix/store/abc-glibc-2.40/lib/ld-linux-riscv64-lp64d.so.1"));
        assert!(!interp_matches(want, "/lib/ld-linux-riscv64-lp64.so.1"));
        assert!(!interp_matches(want, "/opt/lib/ld-linux-riscv64-lp64d.so.1"));
    }
}
