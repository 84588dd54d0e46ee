//! Partition tables of disk images: MBR (four primary entries) and GPT (header at LBA 1, entry
//! array with its CRC), read from headers only with every count, size and offset bounded. Bare
//! filesystem images (FAT, ext2/3/4) are recognised too, so that they are not taken for an MBR.
//!
//! Written here rather than taken from a crate: only the entries' type, start, size and name
//! are needed, and the table must be read from a byte window of a file or of a buffer with
//! hostile values (the `gpt` and `mbrman` crates open whole devices and size their allocations
//! from the header).

use super::source::Source;

const SECTOR: u64 = 512;
/// Most GPT entries read (the standard array has 128).
const MAX_GPT_ENTRIES: u32 = 1024;

/// GPT type GUIDs with a known meaning for verify.
pub(crate) const GPT_STARFIVE_SPL: &str = "2E54B353-1271-4842-806F-E436D6AF6985";
pub(crate) const GPT_STARFIVE_FIT: &str = "5B193300-FC78-4CD8-8528-8D5AB16A52F0";

/// What a byte range holds, from its first sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    Mbr,
    Gpt,
    Fat,
    Ext4,
}

impl Content {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Content::Mbr => "dos",
            Content::Gpt => "gpt",
            Content::Fat => "vfat",
            Content::Ext4 => "ext4",
        }
    }
}

/// Bytes needed by [`detect`] (the ext4 superblock magic sits at 1080, the GPT header at 512).
pub(crate) const HEAD: usize = 1088;

/// Recognises a partition table or a filesystem from the first [`HEAD`] bytes.
pub(crate) fn detect(head: &[u8]) -> Option<Content> {
    if head.get(1080..1082) == Some(&[0x53, 0xef]) {
        return Some(Content::Ext4);
    }
    if head.get(510..512) != Some(&[0x55, 0xaa]) {
        return None;
    }
    // A FAT boot sector also ends in 55 AA; its jump and filesystem type tell it apart.
    let fat_label = |at: usize| head.get(at..at + 3) == Some(b"FAT");
    if matches!(head.first(), Some(0xeb | 0xe9)) && (fat_label(0x36) || fat_label(0x52)) {
        return Some(Content::Fat);
    }
    if head.get(512..520) == Some(b"EFI PART") {
        return Some(Content::Gpt);
    }
    // An MBR: at least one entry with a type, and status bytes that are 0x00 or 0x80.
    let entries = head.get(446..510)?;
    let valid = entries.chunks(16).all(|e| e[0] == 0 || e[0] == 0x80);
    let used = entries.chunks(16).any(|e| e[4] != 0);
    (valid && used).then_some(Content::Mbr)
}

/// The kind of a partition: its MBR type byte or GPT type GUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PartType {
    Mbr(u8),
    Gpt(String),
}

/// One partition: number (from 1), byte range, type and GPT name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Partition {
    pub number: u32,
    pub start: u64,
    pub len: u64,
    pub ty: PartType,
    pub name: String,
}

impl Partition {
    pub(crate) fn describe(&self) -> String {
        let ty = match &self.ty {
            PartType::Mbr(t) => format!("type {t:#04x}"),
            PartType::Gpt(g) => format!("type {g}"),
        };
        let name = if self.name.is_empty() { String::new() } else { format!(" \"{}\"", self.name) };
        format!("partition {}{name}: {} bytes at {}, {ty}", self.number, self.len, self.start)
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
}

/// A partition table's entries. Entries that point past the end of the image are errors.
pub(crate) fn partitions(src: &dyn Source, table: Content) -> Result<Vec<Partition>, String> {
    let parts = match table {
        Content::Mbr => mbr(src)?,
        Content::Gpt => gpt(src)?,
        Content::Fat | Content::Ext4 => return Ok(Vec::new()),
    };
    for p in &parts {
        if p.start.checked_add(p.len).is_none_or(|end| end > src.len()) {
            return Err(format!(
                "partition {} ({} bytes at {}) lies past the end of the image ({} bytes): truncated image or corrupt table",
                p.number,
                p.len,
                p.start,
                src.len()
            ));
        }
    }
    Ok(parts)
}

fn mbr(src: &dyn Source) -> Result<Vec<Partition>, String> {
    let sector = src.bytes_at(0, 512, "the MBR")?;
    let mut out = Vec::new();
    for i in 0..4u32 {
        let e = &sector[446 + 16 * i as usize..462 + 16 * i as usize];
        let ty = e[4];
        let (start, count) = (u64::from(le32(e, 8)), u64::from(le32(e, 12)));
        if ty == 0 || count == 0 {
            continue;
        }
        if matches!(ty, 0x05 | 0x0f | 0x85) {
            // Extended partitions hold logical ones; the boards' images use none.
            return Err(format!("partition {}: extended MBR partitions are not read", i + 1));
        }
        if ty == 0xee {
            return Err("protective MBR without a GPT header at LBA 1".into());
        }
        out.push(Partition {
            number: i + 1,
            start: start * SECTOR,
            len: count * SECTOR,
            ty: PartType::Mbr(ty),
            name: String::new(),
        });
    }
    Ok(out)
}

/// A GUID in its text form from the mixed-endian bytes GPT stores.
fn guid(b: &[u8]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{}-{}",
        le32(b, 0),
        u16::from_le_bytes([b[4], b[5]]),
        u16::from_le_bytes([b[6], b[7]]),
        b[8..10].iter().map(|x| format!("{x:02X}")).collect::<String>(),
        b[10..16].iter().map(|x| format!("{x:02X}")).collect::<String>()
    )
}

fn gpt(src: &dyn Source) -> Result<Vec<Partition>, String> {
    let hdr = src.bytes_at(SECTOR, 92, "the GPT header")?;
    let header_size = le32(&hdr, 12) as usize;
    if !(92..=512).contains(&header_size) {
        return Err(format!("GPT header size {header_size} is out of range"));
    }
    let full = src.bytes_at(SECTOR, header_size, "the GPT header")?;
    let mut zeroed = full.clone();
    zeroed[16..20].fill(0);
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    if crc.checksum(&zeroed) != le32(&full, 16) {
        return Err("GPT header CRC does not match: corrupt partition table".into());
    }
    let entries_lba = le64(&hdr, 72);
    let count = le32(&hdr, 80);
    let size = le32(&hdr, 84);
    if count > MAX_GPT_ENTRIES {
        return Err(format!("GPT declares {count} entries (at most {MAX_GPT_ENTRIES} are read)"));
    }
    if !(128..=4096).contains(&size) || !size.is_multiple_of(8) {
        return Err(format!("GPT entry size {size} is out of range"));
    }
    let array_len = count as usize * size as usize;
    let at = entries_lba.checked_mul(SECTOR).ok_or("GPT entry array offset overflows")?;
    let array = src.bytes_at(at, array_len, "the GPT entry array")?;
    if crc.checksum(&array) != le32(&hdr, 88) {
        return Err("GPT entry array CRC does not match: corrupt partition table".into());
    }
    let mut out = Vec::new();
    for (i, e) in array.chunks(size as usize).enumerate() {
        if e[..16].iter().all(|&b| b == 0) {
            continue;
        }
        let (first, last) = (le64(e, 32), le64(e, 40));
        if last < first {
            return Err(format!("GPT entry {}: last LBA {last} before first LBA {first}", i + 1));
        }
        let name: Vec<u16> =
            e[56..128].chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&c| c != 0).collect();
        let start = first.checked_mul(SECTOR).ok_or("GPT entry start overflows")?;
        let len = (last - first + 1).checked_mul(SECTOR).ok_or("GPT entry size overflows")?;
        out.push(Partition {
            number: i as u32 + 1,
            start,
            len,
            ty: PartType::Gpt(guid(&e[..16])),
            name: String::from_utf16_lossy(&name),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbr_image(entries: &[(u8, u32, u32)], len: usize) -> Vec<u8> {
        let mut d = vec![0u8; len];
        for (i, (ty, start, count)) in entries.iter().enumerate() {
            let e = 446 + 16 * i;
            d[e + 4] = *ty;
            d[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
            d[e + 12..e + 16].copy_from_slice(&count.to_le_bytes());
        }
        d[510] = 0x55;
        d[511] = 0xaa;
        d
    }

    #[test]
    fn mbr_entries_and_bounds() {
        let d = mbr_image(&[(0x83, 2, 4)], 4096);
        assert_eq!(detect(&d), Some(Content::Mbr));
        let p = partitions(&d.as_slice(), Content::Mbr).unwrap();
        assert_eq!((p[0].number, p[0].start, p[0].len, &p[0].ty), (1, 1024, 2048, &PartType::Mbr(0x83)));
        let past = mbr_image(&[(0x83, 2, 400)], 4096);
        assert!(partitions(&past.as_slice(), Content::Mbr).unwrap_err().contains("past the end"));
        let huge = mbr_image(&[(0x0c, u32::MAX, u32::MAX)], 1024);
        assert!(partitions(&huge.as_slice(), Content::Mbr).unwrap_err().contains("past the end"));
    }

    #[test]
    fn fat_and_ext4_are_not_tables() {
        let mut fat = mbr_image(&[(0x83, 2, 4)], 2048);
        fat[0] = 0xeb;
        fat[0x36..0x39].copy_from_slice(b"FAT");
        assert_eq!(detect(&fat), Some(Content::Fat));
        let mut ext = vec![0u8; 2048];
        ext[1080] = 0x53;
        ext[1081] = 0xef;
        assert_eq!(detect(&ext), Some(Content::Ext4));
        assert_eq!(detect(&[0u8; 2048]), None);
    }

    #[test]
    fn gpt_lies_are_errors() {
        let mut d = mbr_image(&[(0xee, 1, 100)], 64 * 1024);
        d[512..520].copy_from_slice(b"EFI PART");
        d[512 + 12..512 + 16].copy_from_slice(&92u32.to_le_bytes());
        assert_eq!(detect(&d), Some(Content::Gpt));
        assert!(partitions(&d.as_slice(), Content::Gpt).unwrap_err().contains("CRC"));
        // A truncated image: the header cannot even be read.
        assert!(partitions(&&d[..600], Content::Gpt).unwrap_err().contains("truncated"));
    }
}
