//! Inspection of one file or archive member: recognise what it is from its first bytes (and
//! its name when the bytes say nothing), run the matching checks, and return the results.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::GzDecoder;

use super::archive;
use super::check::{self, ElfFacts};
use super::elf;
use super::expect::Expectation;
use super::image;
use super::report::{FileResult, Kind, Mismatch};
use super::source::{FileSource, Source};

/// How deep archives inside archives are opened.
const MAX_ARCHIVE_DEPTH: u32 = 2;
/// Largest compressed module decompressed for checking.
const MAX_MODULE: u64 = 256 << 20;

/// Inspects a regular file on disk.
pub(crate) fn inspect_path(path: &Path, exp: &Expectation) -> Vec<FileResult> {
    let display = path.display().to_string();
    if let Some(skip) = ignored(&display, exp) {
        return vec![skip];
    }
    let src = match open_regular(path) {
        Ok(Some(src)) => src,
        Ok(None) => return vec![FileResult::skipped(display, "not a regular file")],
        Err(e) => return vec![FileResult::error(display, None, e)],
    };
    let mut open_stream = || -> Result<Box<dyn Read>, String> {
        let mut f = src.file().try_clone().map_err(|e| e.to_string())?;
        f.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        Ok(Box::new(std::io::BufReader::with_capacity(256 * 1024, f)))
    };
    inspect(&display, &src, &mut open_stream, exp, 0)
}

/// Opens `path`; `None` when it is not a regular file after all.
fn open_regular(path: &Path) -> Result<Option<FileSource>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    Ok(meta.is_file().then(|| FileSource::new(file, meta.len())))
}

/// Inspects any source. `open_stream` gives the whole content as a stream, for archives.
fn inspect(
    display: &str,
    src: &dyn Source,
    open_stream: &mut dyn FnMut() -> Result<Box<dyn Read>, String>,
    exp: &Expectation,
    depth: u32,
) -> Vec<FileResult> {
    if let Some(skip) = ignored(display, exp) {
        return vec![skip];
    }
    let display = display.to_string();
    let mut head = [0u8; archive::HEAD];
    let n = match src.read_at(0, &mut head) {
        Ok(n) => n,
        Err(e) => {
            return vec![FileResult::error(display, None, format!("cannot read: {e}"))];
        }
    };
    let head = &head[..n];
    let name = display.rsplit('/').next().unwrap_or(&display).to_string();

    if elf::is_elf(head) {
        return vec![inspect_elf(display, &name, src, exp)];
    }
    if head.starts_with(&image::FDT_MAGIC) {
        return vec![match image::read_dtb(src) {
            Ok(dtb) => FileResult::checked(display, Kind::Dtb, image::check_dtb(exp, &dtb))
                .with_detail(image::describe_dtb(&dtb)),
            Err(e) => FileResult::error(display, Some(Kind::Dtb), e),
        }];
    }
    if let Some(img) = image::parse_kernel_image(head) {
        return vec![
            FileResult::checked(display, Kind::KernelImage, image::check_kernel_image(exp, &img))
                .with_detail(image::describe_kernel_image(&img)),
        ];
    }
    let format = archive::detect(head);
    if let Some(f @ (archive::Format::Gzip | archive::Format::Xz)) = format
        && let Some(r) = inspect_compressed_by_name(&display, &name, f, open_stream, exp)
    {
        return vec![r];
    }
    if let Some(format) = format {
        return inspect_archive(display, &name, format, open_stream, exp, depth);
    }
    vec![by_name_only(display, &name)]
}

fn ignored(display: &str, exp: &Expectation) -> Option<FileResult> {
    exp.ignored_by(display).map(|p| FileResult::skipped(display.to_string(), format!("ignored (matches {p})")))
}

/// A file that is none of the known kinds: a mismatch when its name promises one, else skipped.
fn by_name_only(display: String, name: &str) -> FileResult {
    let mismatch = |kind, expected: &str| {
        FileResult::checked(
            display.clone(),
            kind,
            vec![Mismatch::new("format", expected, "none of these magic numbers")],
        )
    };
    if name.ends_with(".ko") {
        mismatch(Kind::Elf, "an ELF kernel module (\\x7fELF)")
    } else if name.ends_with(".dtb") {
        mismatch(Kind::Dtb, "an FDT device tree (d00dfeed)")
    } else if name == "Image" {
        mismatch(Kind::KernelImage, "a kernel Image header magic")
    } else if name.ends_with(".ko.zst") {
        FileResult::skipped(display, "zstd-compressed module, not inspected")
    } else {
        FileResult::skipped(display, "not ELF, kernel image, DTB or archive")
    }
}

/// Compressed files whose name says what is inside: `Image.gz` (header only), `*.ko.gz` and
/// `*.ko.xz`.
fn inspect_compressed_by_name(
    display: &str,
    name: &str,
    format: archive::Format,
    open_stream: &mut dyn FnMut() -> Result<Box<dyn Read>, String>,
    exp: &Expectation,
) -> Option<FileResult> {
    let display = display.to_string();
    let gzip = format == archive::Format::Gzip;
    let is_image = gzip && name.starts_with("Image") && name.ends_with(".gz");
    let is_module = (gzip && name.ends_with(".ko.gz")) || (!gzip && name.ends_with(".ko.xz"));
    if !is_image && !is_module {
        return None;
    }
    let stream = match open_stream() {
        Ok(s) => s,
        Err(e) => {
            return Some(FileResult::error(display, None, format!("cannot read: {e}")));
        }
    };
    if is_image {
        let mut head = [0u8; image::IMAGE_HEAD];
        if let Err(e) = GzDecoder::new(stream).read_exact(&mut head) {
            let msg = format!("cannot decompress the kernel image header: {e}");
            return Some(FileResult::error(display, Some(Kind::KernelImage), msg));
        }
        return Some(match image::parse_kernel_image(&head) {
            Some(img) => FileResult::checked(display, Kind::KernelImage, image::check_kernel_image(exp, &img))
                .with_detail(image::describe_kernel_image(&img)),
            None => by_name_only(display, "Image"),
        });
    }
    let data = if gzip {
        let mut data = Vec::new();
        GzDecoder::new(stream)
            .take(MAX_MODULE)
            .read_to_end(&mut data)
            .map(|_| data)
            .map_err(|e| format!("cannot decompress: {e}"))
    } else {
        archive::xz_to_vec(&mut std::io::BufReader::new(stream), MAX_MODULE)
    };
    let data = match data {
        Ok(d) => d,
        Err(e) => return Some(FileResult::error(display, Some(Kind::Elf), e)),
    };
    let module_name = name.strip_suffix(".gz").or(name.strip_suffix(".xz")).unwrap_or(name);
    Some(if elf::is_elf(&data) {
        inspect_elf(display, module_name, &data.as_slice(), exp)
    } else {
        by_name_only(display, module_name)
    })
}

fn inspect_archive(
    display: String,
    name: &str,
    format: archive::Format,
    open_stream: &mut dyn FnMut() -> Result<Box<dyn Read>, String>,
    exp: &Expectation,
    depth: u32,
) -> Vec<FileResult> {
    if depth >= MAX_ARCHIVE_DEPTH {
        return vec![FileResult::skipped(display, "archive nested too deeply")];
    }
    let mut stream = match open_stream() {
        Ok(s) => s,
        Err(e) => {
            return vec![FileResult::error(display, None, format!("cannot read: {e}"))];
        }
    };
    let mut results = Vec::new();
    let outcome = archive::for_each_member(&mut stream, &mut |member: &str, content| {
        let member = member.trim_start_matches("./").trim_start_matches('/');
        let shown = format!("{display}!/{member}");
        let data = match content {
            archive::Member::Data(d) => d,
            archive::Member::TooLarge(size) => {
                results.push(FileResult::skipped(shown, format!("member of {size} bytes, too large to inspect")));
                return;
            }
        };
        let mut open = || -> Result<Box<dyn Read>, String> { Ok(Box::new(std::io::Cursor::new(data.clone()))) };
        results.extend(inspect(&shown, &data.as_slice(), &mut open, exp, depth + 1));
    });
    let kind = archive_kind(format, name);
    let head = match outcome {
        Ok(n) => {
            FileResult::checked(display, kind, Vec::new()).with_detail(format!("archive with {n} regular members"))
        }
        Err(e)
            if matches!(format, archive::Format::Gzip | archive::Format::Xz)
                && results.is_empty()
                && !looks_archive(name) =>
        {
            FileResult::skipped(display, format!("compressed data that is not a cpio or tar archive ({e})"))
        }
        Err(e) => FileResult::error(display, Some(kind), e),
    };
    let mut out = vec![head];
    out.extend(results);
    out
}

fn looks_archive(name: &str) -> bool {
    [".cpio", ".tar", ".tgz", "initr", ".cpio.gz"].iter().any(|p| name.contains(p))
}

fn archive_kind(format: archive::Format, name: &str) -> Kind {
    match format {
        archive::Format::Tar => Kind::Tar,
        archive::Format::Gzip | archive::Format::Xz
            if name.contains(".tar") || name.ends_with(".tgz") || name.ends_with(".txz") =>
        {
            Kind::Tar
        }
        archive::Format::Cpio | archive::Format::Gzip | archive::Format::Xz => Kind::Cpio,
    }
}

/// Reads what the ELF checks need and runs them.
fn inspect_elf(display: String, name: &str, src: &dyn Source, exp: &Expectation) -> FileResult {
    let header = match elf::read_header(src) {
        Ok(Some(h)) => h,
        Ok(None) => return FileResult::error(display, Some(Kind::Elf), "not an ELF file"),
        Err(e) => return FileResult::error(display, Some(Kind::Elf), e),
    };
    let mut facts = ElfFacts {
        interp: None,
        vermagic: None,
        is_module: name.ends_with(".ko"),
        freestanding: exp.is_freestanding(name),
        header,
    };
    let h = &facts.header;
    if matches!(h.e_type, elf::ET_EXEC | elf::ET_DYN) {
        match elf::read_interp(src, h) {
            Ok(i) => facts.interp = i,
            Err(e) => return FileResult::error(display, Some(Kind::Elf), e),
        }
    } else if h.e_type == elf::ET_REL {
        match elf::read_section(src, h, ".modinfo") {
            Ok(Some(m)) => {
                facts.vermagic = elf::modinfo_value(&m, "vermagic");
                facts.is_module |= facts.vermagic.is_some();
            }
            Ok(None) => {}
            Err(e) => return FileResult::error(display, Some(Kind::Elf), e),
        }
    }
    let mismatches = check::check_elf(exp, &facts);
    let mut r = FileResult::checked(display, Kind::Elf, mismatches);
    r.elf = Some(check::summarize(&facts));
    r
}

/// Inspects bytes already in memory as if they were the file `name`.
pub(crate) fn inspect_bytes(name: &str, bytes: &[u8], exp: &Expectation) -> Vec<FileResult> {
    let mut open = || -> Result<Box<dyn Read>, String> { Ok(Box::new(std::io::Cursor::new(bytes.to_vec()))) };
    inspect(name, &bytes, &mut open, exp, 0)
}
