//! Inspection of one file or archive member: recognise what it is from its first bytes (and
//! its name when the bytes say nothing), run the matching checks, and return the results.
//! Containers are opened here and their contents inspected in turn: archives, disk images
//! (partition tables, FAT and ext4 filesystems, extlinux.conf), FIT images and SPLs.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::GzDecoder;

use super::archive;
use super::check::{self, ElfFacts};
use super::disk::{self, Content};
use super::elf;
use super::expect::Expectation;
use super::extlinux::{self, Role};
use super::fit;
use super::fs::{EntryKind, Fs};
use super::image;
use super::report::{FileResult, Kind, Mismatch, Status};
use super::source::{FileSource, Source, Window};
use super::spl;

/// How deep archives inside archives are opened.
const MAX_ARCHIVE_DEPTH: u32 = 2;
/// Largest compressed module decompressed for checking.
const MAX_MODULE: u64 = 256 << 20;
/// How deep disk images and filesystems inside each other are opened (a filesystem image on a
/// partition of a disk image is two).
const MAX_IMAGE_DEPTH: u32 = 2;
/// Bytes of a file inside a filesystem read to recognise it.
const FS_HEAD: u64 = 4096;
/// Largest extlinux.conf read.
const MAX_EXTLINUX: u64 = 64 << 10;

/// How deep the current file lies in archives and in images.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Depth {
    archives: u32,
    images: u32,
}

/// A stream over a window, for archive readers.
struct WindowReader {
    w: Window,
    pos: u64,
}

impl Read for WindowReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.w.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

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
    inspect(&display, &src, &mut open_stream, exp, Depth::default())
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
    depth: Depth,
) -> Vec<FileResult> {
    if let Some(skip) = ignored(display, exp) {
        return vec![skip];
    }
    let display = display.to_string();
    let mut head = [0u8; disk::HEAD];
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
        match fit::read(src, exp) {
            Ok(Some((description, images))) => return inspect_fit(display, &description, images, exp, depth),
            Err(e) if name.ends_with(".itb") || name.ends_with(".fit") => {
                return vec![FileResult::error(display, Some(Kind::Fit), e)];
            }
            _ => {}
        }
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
    if spl::is_spl(head) {
        return vec![inspect_spl(display, src)];
    }
    if let Some(content) = disk::detect(head) {
        return inspect_image(display, src, content, exp, depth);
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
    depth: Depth,
) -> Vec<FileResult> {
    if depth.archives >= MAX_ARCHIVE_DEPTH {
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
        let shown = format!("{display}:{member}");
        if member.split('/').any(|c| c == "..") {
            let why = "member name climbs out of the archive (`..`): a hostile or broken archive, not unpacked";
            results.push(FileResult::error(shown, None, why));
            return;
        }
        let data = match content {
            archive::Member::Data(d) => d,
            archive::Member::TooLarge(size) => {
                results.push(FileResult::skipped(shown, format!("member of {size} bytes, too large to inspect")));
                return;
            }
        };
        let mut open = || -> Result<Box<dyn Read>, String> { Ok(Box::new(std::io::Cursor::new(data.clone()))) };
        let inner = Depth { archives: depth.archives + 1, ..depth };
        results.extend(inspect(&shown, &data.as_slice(), &mut open, exp, inner));
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
    inspect(name, &bytes, &mut open, exp, Depth::default())
}

fn inspect_spl(display: String, src: &dyn Source) -> FileResult {
    match spl::check(src) {
        Ok(Ok(detail)) => FileResult::checked(display, Kind::Spl, Vec::new()).with_detail(detail),
        Ok(Err(m)) => FileResult::checked(display, Kind::Spl, vec![m]),
        Err(e) => FileResult::error(display, Some(Kind::Spl), e),
    }
}

/// A FIT: one result per `/images/*` node (its arch, type, compression; the DTB it carries
/// against the board), and the usual checks of payloads that are ELF files or kernel images.
fn inspect_fit(
    display: String,
    description: &str,
    images: Vec<fit::FitImage>,
    exp: &Expectation,
    depth: Depth,
) -> Vec<FileResult> {
    let detail = format!("FIT \"{description}\" with {} image(s)", images.len());
    let mut out = vec![FileResult::checked(display.clone(), Kind::Fit, Vec::new()).with_detail(detail)];
    for img in images {
        let shown = format!("{display}:{}", img.node);
        let data = match img.data {
            Ok(w) => w,
            Err(e) => {
                out.push(FileResult::error(shown, Some(Kind::Fit), e));
                continue;
            }
        };
        let mut mismatches = img.mismatches;
        let mut inner = Vec::new();
        if img.compression == "none" {
            let mut head = [0u8; image::IMAGE_HEAD];
            let n = data.read_at(0, &mut head).unwrap_or(0);
            let head = &head[..n];
            if head.starts_with(&image::FDT_MAGIC) {
                match image::read_dtb(&data) {
                    Ok(dtb) => {
                        mismatches.extend(image::check_dtb(exp, &dtb));
                        mismatches.extend(exp.board_dtb_mismatch(&dtb.compatible));
                    }
                    Err(e) => {
                        out.push(FileResult::error(shown, Some(Kind::Dtb), e));
                        continue;
                    }
                }
            } else if elf::is_elf(head) || image::parse_kernel_image(head).is_some() {
                let w = data.clone();
                let mut open =
                    move || -> Result<Box<dyn Read>, String> { Ok(Box::new(WindowReader { w: w.clone(), pos: 0 })) };
                inner = inspect(&format!("{shown}:data"), &data, &mut open, exp, depth);
            }
        }
        out.push(FileResult::checked(shown, Kind::Fit, mismatches).with_detail(img.detail));
        out.extend(inner);
    }
    out
}

/// A disk image (partition table) or a bare filesystem image.
fn inspect_image(
    display: String,
    src: &dyn Source,
    content: Content,
    exp: &Expectation,
    depth: Depth,
) -> Vec<FileResult> {
    if depth.images >= MAX_IMAGE_DEPTH {
        return vec![FileResult::skipped(display, format!("{} image nested too deeply, not opened", content.name()))];
    }
    let inner = Depth { images: depth.images + 1, ..depth };
    let whole = match src.window() {
        Ok(w) => w,
        Err(e) => return vec![FileResult::error(display, None, e)],
    };
    if matches!(content, Content::Fat | Content::Ext4) {
        return inspect_fs(&display, whole, content, exp, inner);
    }
    let parts = match disk::partitions(src, content) {
        Ok(p) => p,
        Err(e) => return vec![FileResult::error(display, Some(Kind::DiskImage), e)],
    };
    let detail = format!("{} partition table, {} partition(s)", content.name(), parts.len());
    let mut out = vec![if parts.is_empty() {
        FileResult::checked(
            display.clone(),
            Kind::DiskImage,
            vec![Mismatch::new("partitions", "at least one partition", "an empty partition table")],
        )
    } else {
        FileResult::checked(display.clone(), Kind::DiskImage, Vec::new()).with_detail(detail)
    }];
    for p in parts {
        let shown = format!("{display}:p{}", p.number);
        let Some(w) = whole.sub(p.start, p.len) else {
            out.push(FileResult::error(shown, Some(Kind::DiskImage), "partition lies outside the image"));
            continue;
        };
        let mut head = vec![0u8; disk::HEAD];
        let n = match w.read_at(0, &mut head) {
            Ok(n) => n,
            Err(e) => {
                out.push(FileResult::error(shown, None, format!("cannot read: {e}")));
                continue;
            }
        };
        head.truncate(n);
        // The JH7110's boot ROM and SPL find their partitions by type: they must hold what the
        // type promises.
        let promised = match &p.ty {
            disk::PartType::Gpt(g) if g == disk::GPT_STARFIVE_SPL => Some(("a StarFive SPL", spl::is_spl(&head))),
            disk::PartType::Gpt(g) if g == disk::GPT_STARFIVE_FIT => {
                Some(("a U-Boot FIT", head.starts_with(&image::FDT_MAGIC)))
            }
            _ => None,
        };
        if let Some((what, false)) = promised {
            out.push(FileResult::checked(
                shown,
                Kind::DiskImage,
                vec![Mismatch::new("partition-content", format!("{what} (by its type GUID)"), "something else")],
            ));
            continue;
        }
        if head.iter().all(|&b| b == 0) {
            out.push(FileResult::skipped(shown, format!("{}, empty", p.describe())));
            continue;
        }
        let stream_w = w.clone();
        let mut open =
            move || -> Result<Box<dyn Read>, String> { Ok(Box::new(WindowReader { w: stream_w.clone(), pos: 0 })) };
        let results = match disk::detect(&head) {
            Some(c @ (Content::Fat | Content::Ext4)) => inspect_fs(&shown, w, c, exp, inner),
            _ => inspect(&shown, &w, &mut open, exp, inner),
        };
        out.extend(results.into_iter().map(|mut r| {
            if r.path == shown && r.status == Status::Skipped {
                r.reason = Some(format!("{}: {}", p.describe(), r.reason.unwrap_or_default()));
            }
            r
        }));
    }
    out
}

/// Every file of a filesystem (`PREFIX(vfat):/PATH`), then its extlinux.conf.
fn inspect_fs(prefix: &str, w: Window, content: Content, exp: &Expectation, depth: Depth) -> Vec<FileResult> {
    let fs_name = content.name();
    let root = format!("{prefix}({fs_name})");
    let cap = w.len().min(archive::MAX_MEMBER);
    let fs = match Fs::open(w, content) {
        Ok(fs) => fs,
        Err(e) => return vec![FileResult::error(root, Some(Kind::Filesystem), e)],
    };
    let (entries, walk_error) = fs.entries();
    let files = entries.iter().filter(|e| matches!(e.kind, EntryKind::File { .. })).count();
    let mut out = vec![match &walk_error {
        None => FileResult::checked(root.clone(), Kind::Filesystem, Vec::new())
            .with_detail(format!("{fs_name} filesystem, {files} file(s)")),
        Some(e) => FileResult::error(root.clone(), Some(Kind::Filesystem), e.clone()),
    }];
    let mut confs = Vec::new();
    // Index in `out` of each file's own result, by path.
    let mut by_path: Vec<(String, usize)> = Vec::new();
    for e in &entries {
        let shown = format!("{root}:{}", e.path);
        let size = match e.kind {
            EntryKind::File { size } => size,
            EntryKind::Symlink => {
                out.push(FileResult::skipped(
                    shown,
                    "symbolic link inside the image (its target is checked where it lives)",
                ));
                continue;
            }
            EntryKind::Special => {
                out.push(FileResult::skipped(shown, "not a regular file (device, FIFO or socket)"));
                continue;
            }
        };
        if extlinux::is_extlinux_conf(&e.path) {
            confs.push(e.path.clone());
            continue;
        }
        if let Some(skip) = ignored(&shown, exp) {
            out.push(skip);
            continue;
        }
        by_path.push((e.path.clone(), out.len()));
        out.extend(inspect_fs_file(&fs, &e.path, shown, size, cap, exp, depth));
    }
    for conf in confs {
        out.push(check_extlinux(&fs, content, &root, &conf, &by_path, &out, exp));
    }
    out
}

/// One file inside a filesystem: its first bytes, and all of it only when its kind needs more
/// than a header (ELF, DTB, archives, compressed files, images).
fn inspect_fs_file(
    fs: &Fs,
    path: &str,
    shown: String,
    size: u64,
    cap: u64,
    exp: &Expectation,
    depth: Depth,
) -> Vec<FileResult> {
    let head = match fs.read(path, FS_HEAD) {
        Ok(h) => h,
        Err(e) => return vec![FileResult::error(shown, None, format!("cannot read: {e}"))],
    };
    let needs_all = elf::is_elf(&head)
        || head.starts_with(&image::FDT_MAGIC)
        || archive::detect(&head).is_some()
        || spl::is_spl(&head)
        || disk::detect(&head).is_some();
    let data = if needs_all && size > FS_HEAD {
        if size > cap {
            let why = format!("{size} bytes: larger than its filesystem or than {} bytes", archive::MAX_MEMBER);
            return vec![FileResult::error(shown, None, why)];
        }
        match fs.read(path, size) {
            Ok(d) => d,
            Err(e) => return vec![FileResult::error(shown, None, format!("cannot read: {e}"))],
        }
    } else {
        head
    };
    let mut open = || -> Result<Box<dyn Read>, String> { Ok(Box::new(std::io::Cursor::new(data.clone()))) };
    inspect(&shown, &data.as_slice(), &mut open, exp, depth)
}

/// extlinux.conf: every kernel, initrd and FDT it names is in the same filesystem and is what
/// its role needs (a kernel for the board, an archive, a DTB of the board).
fn check_extlinux(
    fs: &Fs,
    content: Content,
    root: &str,
    conf: &str,
    by_path: &[(String, usize)],
    results: &[FileResult],
    exp: &Expectation,
) -> FileResult {
    let shown = format!("{root}:{conf}");
    let text = match fs.read(conf, MAX_EXTLINUX) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) => return FileResult::error(shown, Some(Kind::Extlinux), format!("cannot read: {e}")),
    };
    let named = extlinux::named_files(&text);
    let mut mismatches = Vec::new();
    if !named.iter().any(|n| n.role == Role::Kernel) {
        mismatches.push(Mismatch::new("extlinux", "a kernel line", "no kernel named"));
    }
    // FAT names are case-insensitive.
    let same = |a: &str, b: &str| if content == Content::Fat { a.eq_ignore_ascii_case(b) } else { a == b };
    for n in &named {
        let what = format!("line {}: {} {}", n.line, n.role.name(), n.path);
        let Some((real, i)) = by_path.iter().find(|(p, _)| same(p, &n.path)) else {
            mismatches.push(Mismatch::new("extlinux", format!("{what} in the image"), "no such file"));
            continue;
        };
        let r = &results[*i];
        let fine = match n.role {
            Role::Kernel => matches!(r.kind, Some(Kind::KernelImage | Kind::Elf)),
            Role::Initrd => matches!(r.kind, Some(Kind::Cpio)),
            Role::Fdt => matches!(r.kind, Some(Kind::Dtb)),
        };
        if !fine {
            let found = match (r.kind, &r.reason) {
                (Some(k), _) => k.name().to_string(),
                (None, Some(why)) => why.clone(),
                (None, None) => "something else".to_string(),
            };
            mismatches.push(Mismatch::new("extlinux", format!("{what}: a {}", n.role.name()), found));
        } else if r.status == Status::Mismatch {
            mismatches.push(Mismatch::new("extlinux", format!("{what} for the board"), "a mismatch (listed above)"));
        } else if n.role == Role::Fdt
            && let Ok(blob) = fs.read(real, archive::MAX_MEMBER)
            && let Ok(dtb) = image::parse_dtb(&blob)
            && let Some(mut m) = exp.board_dtb_mismatch(&dtb.compatible)
        {
            m.expected = format!("{what}: {}", m.expected);
            mismatches.push(m);
        }
    }
    let detail = format!(
        "{} file(s) named: {}",
        named.len(),
        named.iter().map(|n| n.path.as_str()).collect::<Vec<_>>().join(", ")
    );
    FileResult::checked(shown, Kind::Extlinux, mismatches).with_detail(detail)
}
