//! Kernel image and device tree checks: the RISC-V and ARM64 `Image` headers (magic, declared
//! architecture, byte order), the 32-bit ARM zImage magic, and flattened device trees (FDT
//! magic, header sizes, the root node's `compatible` list).

use super::expect::Expectation;
use super::report::Mismatch;
use super::source::Source;
use crate::vocab::Arch;

/// Architecture a kernel image header declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageArch {
    Riscv,
    Arm64,
    Arm,
}

impl ImageArch {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ImageArch::Riscv => "RISC-V Image",
            ImageArch::Arm64 => "ARM64 Image",
            ImageArch::Arm => "ARM zImage",
        }
    }

    fn expected_for(arch: Arch) -> Option<ImageArch> {
        match arch {
            Arch::Riscv64 | Arch::Riscv32 => Some(ImageArch::Riscv),
            Arch::Aarch64 => Some(ImageArch::Arm64),
            Arch::Arm => Some(ImageArch::Arm),
            Arch::X86_64 | Arch::I386 => None,
        }
    }
}

/// A kernel image header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KernelImage {
    pub arch: ImageArch,
    pub big_endian: bool,
    pub image_size: u64,
}

/// Bytes of the file start needed to recognise a kernel image.
pub(crate) const IMAGE_HEAD: usize = 64;

const RISCV_MAGIC: &[u8; 8] = b"RISCV\0\0\0";
const RISCV_MAGIC2: &[u8; 4] = b"RSC\x05";
const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
const ZIMAGE_MAGIC: u32 = 0x016f_2818;

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

/// Recognises a kernel image from its first 64 bytes.
pub(crate) fn parse_kernel_image(head: &[u8]) -> Option<KernelImage> {
    if head.len() < IMAGE_HEAD {
        return None;
    }
    // Both 64-bit headers: u64 text_offset at 8, u64 image_size at 16, u64 flags at 24
    // (bit 0 = big-endian kernel), magic at 56 (RISC-V also has the older one at 48).
    let arch = if &head[56..60] == RISCV_MAGIC2 || &head[48..56] == RISCV_MAGIC {
        ImageArch::Riscv
    } else if &head[56..60] == ARM64_MAGIC {
        ImageArch::Arm64
    } else if le32(head, 0x24) == ZIMAGE_MAGIC {
        return Some(KernelImage {
            arch: ImageArch::Arm,
            big_endian: false,
            image_size: u64::from(le32(head, 0x2c).wrapping_sub(le32(head, 0x28))),
        });
    } else {
        return None;
    };
    Some(KernelImage { arch, big_endian: le64(head, 24) & 1 == 1, image_size: le64(head, 16) })
}

/// Mismatches of a kernel image against the expectation.
pub(crate) fn check_kernel_image(exp: &Expectation, img: &KernelImage) -> Vec<Mismatch> {
    let mut out = Vec::new();
    match ImageArch::expected_for(exp.arch) {
        Some(want) if want != img.arch => out.push(Mismatch::new("image-arch", want.name(), img.arch.name())),
        None => {
            out.push(Mismatch::new("image-arch", format!("no Image header for {}", exp.arch.as_str()), img.arch.name()))
        }
        _ => {}
    }
    if img.big_endian {
        out.push(Mismatch::new("image-endianness", "little-endian kernel", "big-endian kernel"));
    }
    out
}

/// What a kernel image declares, in one line.
pub(crate) fn describe_kernel_image(img: &KernelImage) -> String {
    format!(
        "{}, {} kernel, image size {}",
        img.arch.name(),
        if img.big_endian { "big-endian" } else { "little-endian" },
        img.image_size
    )
}

pub(crate) const FDT_MAGIC: [u8; 4] = [0xd0, 0x0d, 0xfe, 0xed];
/// Largest DTB read.
const MAX_DTB: u64 = 64 << 20;

/// What a device tree blob declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dtb {
    pub version: u32,
    pub compatible: Vec<String>,
    pub model: Option<String>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads a flattened device tree's header and its root node properties.
pub(crate) fn read_dtb(src: &dyn Source) -> Result<Dtb, String> {
    let head = src.bytes_at(0, 40, "the FDT header")?;
    let total = u64::from(be32(&head, 4).unwrap_or(0));
    if total > src.len() {
        return Err(format!("truncated: the FDT header says {total} bytes, the file has {}", src.len()));
    }
    if !(40..=MAX_DTB).contains(&total) {
        return Err(format!("FDT totalsize {total} is out of range"));
    }
    let blob = src.bytes_at(0, total as usize, "the device tree")?;
    parse_dtb(&blob)
}

/// Parses a whole device tree blob held in memory.
pub(crate) fn parse_dtb(blob: &[u8]) -> Result<Dtb, String> {
    let nodes = super::fdt::nodes(blob)?;
    let version = be32(blob, 20).ok_or("truncated FDT header")?;
    let root = nodes.first().filter(|n| n.path == "/").ok_or("FDT without a root node")?;
    let compatible = root
        .prop("compatible")
        .map(|v| {
            v.split(|&c| c == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
        })
        .unwrap_or_default();
    Ok(Dtb { version, compatible, model: root.text("model") })
}

/// Mismatches of a DTB against the expectation.
pub(crate) fn check_dtb(exp: &Expectation, dtb: &Dtb) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if dtb.version < 16 {
        out.push(Mismatch::new("fdt-version", "16 or later", dtb.version.to_string()));
    }
    if let Some(want) = &exp.dtb_compatible
        && !dtb.compatible.iter().any(|c| c == want)
    {
        let found = if dtb.compatible.is_empty() {
            "no root compatible property".to_string()
        } else {
            dtb.compatible.join(", ")
        };
        out.push(Mismatch::new("dtb-compatible", want, found));
    }
    out
}

pub(crate) fn describe_dtb(dtb: &Dtb) -> String {
    format!(
        "FDT v{}, compatible: {}{}",
        dtb.version,
        dtb.compatible.join(", "),
        dtb.model.as_deref().map(|m| format!(", model: {m}")).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::super::fdt::{FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_PROP};
    use super::*;

    /// A minimal DTB: root node with compatible and model, one child node.
    pub(crate) fn tiny_dtb(compatible: &[&str]) -> Vec<u8> {
        let mut strings = b"compatible\0model\0".to_vec();
        while !strings.len().is_multiple_of(4) {
            strings.push(0);
        }
        let mut st = Vec::new();
        let push = |st: &mut Vec<u8>, v: u32| st.extend_from_slice(&v.to_be_bytes());
        push(&mut st, FDT_BEGIN_NODE);
        st.extend_from_slice(&[0, 0, 0, 0]);
        let mut value = Vec::new();
        for c in compatible {
            value.extend_from_slice(c.as_bytes());
            value.push(0);
        }
        push(&mut st, FDT_PROP);
        push(&mut st, value.len() as u32);
        push(&mut st, 0);
        st.extend_from_slice(&value);
        while !st.len().is_multiple_of(4) {
            st.push(0);
        }
        push(&mut st, FDT_PROP);
        push(&mut st, 4);
        push(&mut st, 11);
        st.extend_from_slice(b"abc\0");
        push(&mut st, FDT_BEGIN_NODE);
        st.extend_from_slice(b"cpus\0\0\0\0");
        push(&mut st, FDT_END_NODE);
        push(&mut st, FDT_END_NODE);
        push(&mut st, FDT_END);
        let off_struct = 40 + 16;
        let off_strings = off_struct + st.len();
        let total = off_strings + strings.len();
        let mut b = Vec::new();
        for v in [
            0xd00d_feed,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            40,
            17,
            16,
            0,
            strings.len() as u32,
            st.len() as u32,
        ] {
            push(&mut b, v);
        }
        b.extend_from_slice(&[0u8; 16]);
        b.extend_from_slice(&st);
        b.extend_from_slice(&strings);
        b
    }

    #[test]
    fn dtb_root_compatible() {
        let blob = tiny_dtb(&["starfive,visionfive-2-v1.3b", "starfive,jh7110"]);
        let dtb = read_dtb(&blob.as_slice()).unwrap();
        assert_eq!(dtb.version, 17);
        assert_eq!(dtb.compatible, ["starfive,visionfive-2-v1.3b", "starfive,jh7110"]);
        assert_eq!(dtb.model.as_deref(), Some("abc"));
        let mut exp = Expectation::parse_arch("riscv64").unwrap();
        exp.dtb_compatible = Some("starfive,jh7110".into());
        assert!(check_dtb(&exp, &dtb).is_empty());
        exp.dtb_compatible = Some("pine64,star64".into());
        assert_eq!(check_dtb(&exp, &dtb)[0].check, "dtb-compatible");
    }

    #[test]
    fn dtb_lies_are_errors() {
        let mut blob = tiny_dtb(&["a"]);
        blob.truncate(60);
        assert!(read_dtb(&blob.as_slice()).unwrap_err().contains("truncated"));
        let mut blob = tiny_dtb(&["a"]);
        blob[36..40].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        assert!(read_dtb(&blob.as_slice()).unwrap_err().contains("outside"));
    }

    #[test]
    fn kernel_image_headers() {
        let mut head = [0u8; 64];
        head[56..60].copy_from_slice(RISCV_MAGIC2);
        head[16..24].copy_from_slice(&1234u64.to_le_bytes());
        let img = parse_kernel_image(&head).unwrap();
        assert_eq!(img.arch, ImageArch::Riscv);
        assert_eq!(img.image_size, 1234);
        let rv = Expectation::parse_arch("riscv64").unwrap();
        let arm = Expectation::parse_arch("aarch64").unwrap();
        assert!(check_kernel_image(&rv, &img).is_empty());
        assert_eq!(check_kernel_image(&arm, &img)[0].check, "image-arch");
        head[56..60].copy_from_slice(ARM64_MAGIC);
        head[24] = 1;
        let img = parse_kernel_image(&head).unwrap();
        assert_eq!(img.arch, ImageArch::Arm64);
        assert_eq!(check_kernel_image(&arm, &img)[0].check, "image-endianness");
        assert!(parse_kernel_image(&[0u8; 64]).is_none());
    }
}
