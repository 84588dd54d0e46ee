//! FIT images (`u-boot.itb`, `*.itb`, `*.fit`): a device tree whose `/images/*` nodes each hold
//! a payload (embedded `data`, or `data-offset`/`data-position` with `data-size` after the
//! tree). Each node's `arch`, `type` and `compression` are checked against the board; the
//! payloads are handed back for the usual checks (ELF, Image, DTB).

use super::expect::Expectation;
use super::fdt;
use super::report::Mismatch;
use super::source::{Source, Window};
use crate::vocab::Arch;

/// Largest FIT read into memory (its tree; external payloads stay where they are).
const MAX_FIT: u64 = 64 << 20;

/// Image types U-Boot's `mkimage -l` knows (`genimg_get_type_id`), the ones that occur in FITs.
const TYPES: &[&str] = &[
    "kernel",
    "kernel_noload",
    "firmware",
    "standalone",
    "ramdisk",
    "flat_dt",
    "fdt",
    "script",
    "filesystem",
    "multi",
    "tee",
    "fpga",
    "loadable",
    "copro",
];
/// Types that carry code for a CPU, so their `arch` must be the board's.
const CODE_TYPES: &[&str] = &["kernel", "kernel_noload", "firmware", "standalone", "tee", "loadable"];
const COMPRESSIONS: &[&str] = &["none", "gzip", "bzip2", "lzma", "lzo", "lz4", "zstd"];

/// The FIT `arch` name of an architecture (U-Boot's `uimage_arch`).
pub(crate) fn fit_arch(arch: Arch) -> &'static str {
    match arch {
        Arch::Riscv64 | Arch::Riscv32 => "riscv",
        Arch::Aarch64 => "arm64",
        Arch::Arm => "arm",
        Arch::X86_64 => "x86_64",
        Arch::I386 => "x86",
    }
}

/// One `/images/*` node.
pub(crate) struct FitImage {
    /// The node path, `/images/uboot`.
    pub node: String,
    pub mismatches: Vec<Mismatch>,
    /// `none` unless the node says otherwise.
    pub compression: String,
    /// The payload, or why it cannot be read.
    pub data: Result<Window, String>,
    /// type, arch, compression and size, in one line.
    pub detail: String,
}

/// A FIT read from `src`: its description and image nodes; `None` when the device tree is not
/// a FIT (no `/images` node with children).
pub(crate) fn read(src: &dyn Source, exp: &Expectation) -> Result<Option<(String, Vec<FitImage>)>, String> {
    let head = src.bytes_at(0, 40, "the FDT header")?;
    let total = u64::from(fdt::total_size(&head).ok_or("no FDT magic")?);
    if !(40..=MAX_FIT).contains(&total) || total > src.len() {
        return Err(format!("FDT totalsize {total} is out of range (the file has {} bytes)", src.len()));
    }
    let blob = src.bytes_at(0, total as usize, "the device tree")?;
    let nodes = fdt::nodes(&blob)?;
    let images: Vec<&fdt::Node<'_>> =
        nodes.iter().filter(|n| n.path.strip_prefix("/images/").is_some_and(|rest| !rest.contains('/'))).collect();
    if images.is_empty() {
        return Ok(None);
    }
    let description = nodes.first().and_then(|root| root.text("description")).unwrap_or_default();
    let whole = src.window()?;
    // External payloads start after the tree, 4-byte aligned.
    let external_base = total.div_ceil(4) * 4;
    let want_arch = fit_arch(exp.arch);
    let mut out = Vec::new();
    for n in images {
        let mut mismatches = Vec::new();
        let ty = n.text("type");
        let arch = n.text("arch");
        let compression = n.text("compression").unwrap_or_else(|| "none".into());
        if let Some(t) = &ty
            && !TYPES.contains(&t.as_str())
        {
            mismatches.push(Mismatch::new("fit-type", "a U-Boot image type", t.clone()));
        }
        let carries_code = ty.as_deref().is_some_and(|t| CODE_TYPES.contains(&t));
        match &arch {
            Some(a) if a != want_arch => mismatches.push(Mismatch::new("fit-arch", want_arch, a.clone())),
            None if carries_code => mismatches.push(Mismatch::new("fit-arch", want_arch, "no arch property")),
            _ => {}
        }
        if !COMPRESSIONS.contains(&compression.as_str()) {
            mismatches.push(Mismatch::new("fit-compression", COMPRESSIONS.join(", "), compression.clone()));
        }
        let data = payload(n, &blob, &whole, external_base);
        let size = data.as_ref().map(|w| w.len().to_string()).unwrap_or_else(|_| "?".into());
        let detail = format!(
            "FIT image: type {}, arch {}, compression {compression}, {size} bytes",
            ty.as_deref().unwrap_or("-"),
            arch.as_deref().unwrap_or("-")
        );
        out.push(FitImage { node: n.path.clone(), mismatches, compression, data, detail });
    }
    Ok(Some((description, out)))
}

/// Where a node's payload lies: embedded, or after the tree.
fn payload(n: &fdt::Node<'_>, blob: &[u8], whole: &Window, external_base: u64) -> Result<Window, String> {
    if let Some(d) = n.prop("data") {
        // The property value is a slice of `blob`, which holds the file's first bytes.
        let offset = (d.as_ptr() as usize).wrapping_sub(blob.as_ptr() as usize) as u64;
        return whole.sub(offset, d.len() as u64).ok_or_else(|| "embedded data outside the FIT".to_string());
    }
    let size = n.u32("data-size").ok_or("no data, data-offset or data-position property")?;
    let start = match (n.u32("data-position"), n.u32("data-offset")) {
        (Some(p), _) => u64::from(p),
        (None, Some(o)) => external_base + u64::from(o),
        (None, None) => return Err("data-size without data-offset or data-position".into()),
    };
    whole.sub(start, u64::from(size)).ok_or_else(|| {
        format!("external data ({size} bytes at {start}) lies past the end of the file ({} bytes)", whole.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::fdt::tests::build;

    fn fit(uboot_arch: &str) -> Vec<u8> {
        build(&[
            (0, "", vec![("description", b"test fit\0".to_vec())]),
            (1, "images", vec![]),
            (
                2,
                "uboot",
                vec![
                    ("type", b"standalone\0".to_vec()),
                    ("arch", format!("{uboot_arch}\0").into_bytes()),
                    ("compression", b"none\0".to_vec()),
                    ("data", vec![1, 2, 3, 4, 5]),
                ],
            ),
            (2, "fdt-1", vec![("data-offset", vec![0, 0, 0, 0]), ("data-size", vec![0, 0, 0, 8])]),
            (1, "configurations", vec![]),
        ])
    }

    #[test]
    fn arch_of_each_node_and_payloads() {
        let exp = Expectation::parse_arch("riscv64").unwrap();
        let mut blob = fit("riscv");
        while !blob.len().is_multiple_of(4) {
            blob.push(0);
        }
        blob.extend_from_slice(b"EXTERNAL");
        let (desc, images) = read(&blob.as_slice(), &exp).unwrap().unwrap();
        assert_eq!(desc, "test fit");
        assert_eq!(images.len(), 2);
        assert!(images[0].mismatches.is_empty());
        let data = images[0].data.as_ref().unwrap();
        assert_eq!(data.bytes_at(0, 5, "x").unwrap(), [1, 2, 3, 4, 5]);
        assert_eq!(images[1].data.as_ref().unwrap().bytes_at(0, 8, "x").unwrap(), b"EXTERNAL");

        let blob = fit("arm64");
        let (_, images) = read(&blob.as_slice(), &exp).unwrap().unwrap();
        assert_eq!(images[0].mismatches[0].check, "fit-arch");
        assert_eq!(images[0].mismatches[0].found, "arm64");
        // The external payload is missing: an error for that node only.
        assert!(images[1].data.as_ref().err().unwrap().contains("past the end"));
    }

    #[test]
    fn a_plain_dtb_is_not_a_fit() {
        let exp = Expectation::parse_arch("riscv64").unwrap();
        let blob = build(&[(0, "", vec![("compatible", b"a,b\0".to_vec())]), (1, "cpus", vec![])]);
        assert!(read(&blob.as_slice(), &exp).unwrap().is_none());
    }
}
