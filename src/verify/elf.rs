//! A small ELF reader that reads only what a check needs: the file header (first 64 bytes),
//! the program header table (only to find PT_INTERP) and, for relocatable objects, the section
//! table and one section (`.modinfo`). Every size and count from the file is bounds-checked
//! against the file length before anything is allocated or read.

use serde::Serialize;

use super::source::Source;

pub(crate) const MAGIC: [u8; 4] = *b"\x7fELF";

/// ELF file types (e_type).
pub(crate) const ET_NONE: u16 = 0;
pub(crate) const ET_REL: u16 = 1;
pub(crate) const ET_EXEC: u16 = 2;
pub(crate) const ET_DYN: u16 = 3;
pub(crate) const ET_CORE: u16 = 4;

/// Machines (e_machine) this crate names.
pub(crate) const EM_386: u16 = 3;
pub(crate) const EM_MIPS: u16 = 8;
pub(crate) const EM_PPC: u16 = 20;
pub(crate) const EM_PPC64: u16 = 21;
pub(crate) const EM_S390: u16 = 22;
pub(crate) const EM_ARM: u16 = 40;
pub(crate) const EM_X86_64: u16 = 62;
pub(crate) const EM_AARCH64: u16 = 183;
pub(crate) const EM_RISCV: u16 = 243;
pub(crate) const EM_LOONGARCH: u16 = 258;

const PT_INTERP: u32 = 3;
const PN_XNUM: u16 = 0xffff;
const SHN_XINDEX: u16 = 0xffff;
const SHT_NOBITS: u32 = 8;

/// Longest PT_INTERP accepted (Linux itself refuses more than a page).
const MAX_INTERP: u64 = 4096;
/// Largest section-name table and `.modinfo` read.
const MAX_SECTION_READ: u64 = 16 << 20;
/// Most program headers accepted after PN_XNUM extension.
const MAX_EXTENDED_COUNT: u64 = 1 << 20;

/// ELF class: 32- or 64-bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Class {
    #[serde(rename = "ELF32")]
    Elf32,
    #[serde(rename = "ELF64")]
    Elf64,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Elf32 => "ELF32",
            Class::Elf64 => "ELF64",
        }
    }

    fn header_size(self) -> usize {
        match self {
            Class::Elf32 => 52,
            Class::Elf64 => 64,
        }
    }

    fn phent_size(self) -> u16 {
        match self {
            Class::Elf32 => 32,
            Class::Elf64 => 56,
        }
    }

    fn shent_size(self) -> u16 {
        match self {
            Class::Elf32 => 40,
            Class::Elf64 => 64,
        }
    }
}

/// Byte order of the file's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endian {
    Little,
    Big,
}

impl Endian {
    pub fn name(self) -> &'static str {
        match self {
            Endian::Little => "little endian",
            Endian::Big => "big endian",
        }
    }
}

/// The ELF file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub class: Class,
    pub endian: Endian,
    pub osabi: u8,
    pub abi_version: u8,
    pub e_type: u16,
    pub machine: u16,
    pub flags: u32,
    pub phoff: u64,
    pub phentsize: u16,
    pub phnum: u16,
    pub shoff: u64,
    pub shentsize: u16,
    pub shnum: u16,
    pub shstrndx: u16,
}

/// True when the bytes start with the ELF magic.
pub(crate) fn is_elf(head: &[u8]) -> bool {
    head.starts_with(&MAGIC)
}

/// Fixed-width integer reads in the file's byte order. Callers check lengths first; a read past
/// the end yields zero-filled bytes instead of panicking.
#[derive(Clone, Copy)]
struct Rd<'a> {
    b: &'a [u8],
    endian: Endian,
}

impl Rd<'_> {
    fn arr<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(s) = off.checked_add(N).and_then(|end| self.b.get(off..end)) {
            out.copy_from_slice(s);
        }
        out
    }
    fn u32(&self, off: usize) -> u32 {
        let a = self.arr::<4>(off);
        match self.endian {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }
    fn u64(&self, off: usize) -> u64 {
        let a = self.arr::<8>(off);
        match self.endian {
            Endian::Little => u64::from_le_bytes(a),
            Endian::Big => u64::from_be_bytes(a),
        }
    }
}

/// Parses the ELF file header from the first bytes of a file (64 bytes are enough).
pub(crate) fn parse_header(head: &[u8]) -> Result<Header, String> {
    if !is_elf(head) {
        return Err("not an ELF file (no \\x7fELF magic)".into());
    }
    if head.len() < 16 {
        return Err(format!("truncated ELF identification: {} bytes, 16 needed", head.len()));
    }
    let class = match head[4] {
        1 => Class::Elf32,
        2 => Class::Elf64,
        c => return Err(format!("invalid ELF class byte {c} (1 = ELF32, 2 = ELF64)")),
    };
    let endian = match head[5] {
        1 => Endian::Little,
        2 => Endian::Big,
        d => {
            return Err(format!("invalid ELF data byte {d} (1 = little, 2 = big endian)"));
        }
    };
    if head.len() < class.header_size() {
        return Err(format!(
            "truncated ELF header: {} bytes, an {} header has {}",
            head.len(),
            class.name(),
            class.header_size()
        ));
    }
    // The fields themselves are decoded by goblin (from these first bytes only: no whole-file
    // read); the checks above give the per-file messages for broken identifications.
    let g = goblin::elf::Elf::parse_header(head).map_err(|e| format!("malformed ELF header: {e}"))?;
    Ok(Header {
        class,
        endian,
        osabi: g.e_ident[7],
        abi_version: g.e_ident[8],
        e_type: g.e_type,
        machine: g.e_machine,
        phoff: g.e_phoff,
        shoff: g.e_shoff,
        flags: g.e_flags,
        phentsize: g.e_phentsize,
        phnum: g.e_phnum,
        shentsize: g.e_shentsize,
        shnum: g.e_shnum,
        shstrndx: g.e_shstrndx,
    })
}

/// Reads the ELF header of a source. `Ok(None)` when the source is not ELF.
pub(crate) fn read_header(src: &dyn Source) -> Result<Option<Header>, String> {
    let mut head = [0u8; 64];
    let n = src.read_at(0, &mut head).map_err(|e| format!("reading the file header: {e}"))?;
    if !is_elf(&head[..n]) {
        return Ok(None);
    }
    parse_header(&head[..n]).map(Some)
}

/// One section header's location.
#[derive(Debug, Clone, Copy)]
struct Section {
    name: u32,
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
}

fn parse_section(h: &Header, b: &[u8]) -> Section {
    let r = Rd { b, endian: h.endian };
    match h.class {
        Class::Elf32 => Section {
            name: r.u32(0),
            kind: r.u32(4),
            offset: u64::from(r.u32(16)),
            size: u64::from(r.u32(20)),
            link: r.u32(24),
            info: r.u32(28),
        },
        Class::Elf64 => Section {
            name: r.u32(0),
            kind: r.u32(4),
            offset: r.u64(24),
            size: r.u64(32),
            link: r.u32(40),
            info: r.u32(44),
        },
    }
}

/// Section header 0, which holds the real counts when they overflow the 16-bit header fields.
fn section_zero(src: &dyn Source, h: &Header) -> Result<Section, String> {
    if h.shoff == 0 {
        return Err("extended numbering is used but the file has no section header table".into());
    }
    check_entsize(h.shentsize, h.class.shent_size(), "e_shentsize", "section")?;
    let b = src.bytes_at(h.shoff, usize::from(h.shentsize), "section header 0")?;
    Ok(parse_section(h, &b))
}

fn check_entsize(found: u16, want: u16, field: &str, what: &str) -> Result<(), String> {
    if found != want {
        return Err(format!("{field} is {found} but {what} headers of this class are {want} bytes"));
    }
    Ok(())
}

/// Reads the program interpreter (PT_INTERP), if the file has one.
pub(crate) fn read_interp(src: &dyn Source, h: &Header) -> Result<Option<String>, String> {
    let count = if h.phnum == PN_XNUM { u64::from(section_zero(src, h)?.info) } else { u64::from(h.phnum) };
    if count == 0 {
        return Ok(None);
    }
    if count > MAX_EXTENDED_COUNT {
        return Err(format!("program header count {count} is out of range"));
    }
    check_entsize(h.phentsize, h.class.phent_size(), "e_phentsize", "program")?;
    let size = count * u64::from(h.phentsize);
    let table = src.bytes_at(
        h.phoff,
        usize::try_from(size).map_err(|_| "program header table too large".to_string())?,
        &format!("the program header table ({count} entries at offset {})", h.phoff),
    )?;
    let r = Rd { b: &table, endian: h.endian };
    for i in 0..count as usize {
        let at = i * usize::from(h.phentsize);
        if r.u32(at) != PT_INTERP {
            continue;
        }
        let (offset, filesz) = match h.class {
            Class::Elf32 => (u64::from(r.u32(at + 4)), u64::from(r.u32(at + 16))),
            Class::Elf64 => (r.u64(at + 8), r.u64(at + 32)),
        };
        if filesz > MAX_INTERP {
            return Err(format!("PT_INTERP is {filesz} bytes long (at most {MAX_INTERP} are valid)"));
        }
        let bytes = src.bytes_at(offset, filesz as usize, "the PT_INTERP string")?;
        let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
        return Ok(Some(String::from_utf8_lossy(&bytes[..end]).into_owned()));
    }
    Ok(None)
}

/// Reads the contents of the section called `name`, if the file has one.
pub(crate) fn read_section(src: &dyn Source, h: &Header, name: &str) -> Result<Option<Vec<u8>>, String> {
    if h.shoff == 0 {
        return Ok(None);
    }
    let needs_zero = h.shnum == 0 || h.shstrndx == SHN_XINDEX;
    let zero = if needs_zero { Some(section_zero(src, h)?) } else { None };
    let count = match (h.shnum, zero) {
        (0, Some(z)) => z.size,
        (n, _) => u64::from(n),
    };
    if count == 0 {
        return Ok(None);
    }
    let strndx = match (h.shstrndx, zero) {
        (SHN_XINDEX, Some(z)) => u64::from(z.link),
        (n, _) => u64::from(n),
    };
    if strndx >= count {
        return Err(format!("e_shstrndx {strndx} is out of range: the file has {count} sections"));
    }
    check_entsize(h.shentsize, h.class.shent_size(), "e_shentsize", "section")?;
    let ent = u64::from(h.shentsize);
    let size = count
        .checked_mul(ent)
        .filter(|&s| s <= src.len())
        .ok_or_else(|| format!("section count {count} is out of range for a file of {} bytes", src.len()))?;
    let table = src.bytes_at(
        h.shoff,
        size as usize,
        &format!("the section header table ({count} entries at offset {})", h.shoff),
    )?;
    let section = |i: u64| {
        let at = (i * ent) as usize;
        parse_section(h, table.get(at..).unwrap_or(&[]))
    };
    let strtab = section(strndx);
    if strtab.size > MAX_SECTION_READ {
        return Err(format!("the section name table is {} bytes (limit {MAX_SECTION_READ})", strtab.size));
    }
    let names = src.bytes_at(strtab.offset, strtab.size as usize, "the section name table")?;
    for i in 0..count {
        let s = section(i);
        let Some(rest) = names.get(s.name as usize..) else {
            continue;
        };
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        if &rest[..end] != name.as_bytes() {
            continue;
        }
        if s.kind == SHT_NOBITS {
            return Ok(Some(Vec::new()));
        }
        if s.size > MAX_SECTION_READ {
            return Err(format!("section {name} is {} bytes (limit {MAX_SECTION_READ})", s.size));
        }
        return src.bytes_at(s.offset, s.size as usize, &format!("section {name}")).map(Some);
    }
    Ok(None)
}

/// Looks up `key=` in a `.modinfo` section (NUL-separated `key=value` strings).
pub(crate) fn modinfo_value(modinfo: &[u8], key: &str) -> Option<String> {
    modinfo.split(|&c| c == 0).find_map(|entry| {
        let rest = entry.strip_prefix(key.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(rest).into_owned())
    })
}

/// Human name of a machine, as readelf spells the common ones.
pub(crate) fn machine_name(machine: u16) -> &'static str {
    match machine {
        0 => "None",
        2 => "Sparc",
        EM_386 => "Intel 80386",
        EM_MIPS => "MIPS R3000",
        EM_PPC => "PowerPC",
        EM_PPC64 => "PowerPC64",
        EM_S390 => "IBM S/390",
        EM_ARM => "ARM",
        43 => "Sparc v9",
        50 => "Intel IA-64",
        EM_X86_64 => "Advanced Micro Devices X86-64",
        EM_AARCH64 => "AArch64",
        EM_RISCV => "RISC-V",
        EM_LOONGARCH => "LoongArch",
        _ => "unknown",
    }
}

/// Short name of an ELF file type.
pub(crate) fn type_name(e_type: u16) -> &'static str {
    match e_type {
        ET_NONE => "NONE",
        ET_REL => "REL",
        ET_EXEC => "EXEC",
        ET_DYN => "DYN",
        ET_CORE => "CORE",
        _ => "unknown",
    }
}

/// Human name of an OS/ABI byte.
pub(crate) fn osabi_name(osabi: u8) -> &'static str {
    match osabi {
        0 => "UNIX - System V",
        3 => "UNIX - GNU",
        6 => "UNIX - Solaris",
        9 => "UNIX - FreeBSD",
        12 => "UNIX - OpenBSD",
        97 => "ARM",
        255 => "Standalone App",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header64(e_type: u16, machine: u16) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(&MAGIC);
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&e_type.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[48..52].copy_from_slice(&5u32.to_le_bytes());
        b[52..54].copy_from_slice(&64u16.to_le_bytes());
        b
    }

    #[test]
    fn parses_a_minimal_header() {
        let h = parse_header(&header64(ET_DYN, EM_RISCV)).unwrap();
        assert_eq!(h.class, Class::Elf64);
        assert_eq!(h.endian, Endian::Little);
        assert_eq!(h.machine, EM_RISCV);
        assert_eq!(h.e_type, ET_DYN);
        assert_eq!(h.flags, 5);
    }

    #[test]
    fn rejects_truncated_and_invalid_identification() {
        let b = header64(ET_EXEC, EM_AARCH64);
        assert!(parse_header(&b[..40]).unwrap_err().contains("truncated ELF header"));
        assert!(parse_header(&b[..10]).unwrap_err().contains("identification"));
        let mut bad = b.clone();
        bad[4] = 7;
        assert!(parse_header(&bad).unwrap_err().contains("class byte 7"));
        bad[4] = 2;
        bad[5] = 0;
        assert!(parse_header(&bad).unwrap_err().contains("data byte 0"));
    }

    #[test]
    fn program_headers_beyond_the_file_are_an_error_not_a_panic() {
        let mut b = header64(ET_EXEC, EM_RISCV);
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        b[56..58].copy_from_slice(&60000u16.to_le_bytes()); // phnum
        let h = parse_header(&b).unwrap();
        let err = read_interp(&b.as_slice(), &h).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        b[54..56].copy_from_slice(&12u16.to_le_bytes());
        let h = parse_header(&b).unwrap();
        assert!(read_interp(&b.as_slice(), &h).unwrap_err().contains("e_phentsize is 12"));
    }

    #[test]
    fn modinfo_lookup() {
        let m = b"license=GPL\0vermagic=6.12.0 SMP mod_unload riscv\0name=x\0";
        assert_eq!(modinfo_value(m, "vermagic").as_deref(), Some("6.12.0 SMP mod_unload riscv"));
        assert_eq!(modinfo_value(m, "author"), None);
    }
}
