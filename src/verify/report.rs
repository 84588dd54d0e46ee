//! Results of a verify run: one entry per inspected file or archive member, with what was found
//! and every mismatch (check, expected, found), plus the human and JSON renderings.

use std::fmt::Write as _;

use serde::Serialize;

use super::expect::Expectation;

/// One failed check: what was expected and what the file has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// Which check failed (machine, class, float-abi, interp, vermagic, ...).
    pub check: &'static str,
    pub expected: String,
    pub found: String,
}

impl Mismatch {
    pub fn new(check: &'static str, expected: impl Into<String>, found: impl Into<String>) -> Self {
        Mismatch { check, expected: expected.into(), found: found.into() }
    }
}

/// The verdict on one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Inspected, every check passed.
    Ok,
    /// Inspected, at least one check failed.
    Mismatch,
    /// Not a kind of file verify checks (text, data, symlink, ...).
    Skipped,
    /// Could not be inspected (unreadable, truncated, corrupt headers).
    Error,
}

/// What kind of file was inspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Elf,
    KernelImage,
    Dtb,
    Cpio,
    Tar,
    /// A partition table (MBR or GPT) of a disk image.
    DiskImage,
    /// A FAT or ext2/3/4 filesystem (a partition, or a filesystem image).
    Filesystem,
    /// A FIT image or one of its `/images/*` nodes.
    Fit,
    /// A StarFive SPL (header and payload CRC).
    Spl,
    /// `extlinux/extlinux.conf` and the files it names.
    Extlinux,
}

impl Kind {
    /// What the kind is, in words.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Elf => "an ELF file",
            Kind::KernelImage => "a kernel image",
            Kind::Dtb => "a device tree",
            Kind::Cpio => "a cpio archive",
            Kind::Tar => "a tar archive",
            Kind::DiskImage => "a disk image",
            Kind::Filesystem => "a filesystem",
            Kind::Fit => "a FIT image",
            Kind::Spl => "a StarFive SPL",
            Kind::Extlinux => "an extlinux.conf",
        }
    }

    /// Kinds whose check says something about the CPU the code is for.
    pub fn carries_code(self) -> bool {
        matches!(self, Kind::Elf | Kind::KernelImage | Kind::Fit)
    }
}

/// The identifying fields of an ELF file (as `readelf -h` shows them) and the decoded extras.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElfSummary {
    pub class: &'static str,
    pub data: &'static str,
    pub osabi: u8,
    pub abi_version: u8,
    #[serde(rename = "type")]
    pub e_type: u16,
    pub type_name: &'static str,
    pub machine: u16,
    pub machine_name: &'static str,
    pub flags: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_abi: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rvc: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vermagic: Option<String>,
}

/// The result for one file or archive member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileResult {
    /// The file path; what lies inside a file follows a colon: archive members
    /// `ARCHIVE:MEMBER`, partitions `IMAGE:p1`, files in their filesystem `IMAGE:p1(vfat):/PATH`,
    /// FIT nodes `FIT:/images/NODE`.
    pub path: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elf: Option<ElfSummary>,
    /// What was found, in one line (for kernel images, DTBs and archives).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<Mismatch>,
    /// Why the file was skipped, or the error that stopped its inspection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl FileResult {
    /// An inspected file: `Ok` or `Mismatch` depending on `mismatches`.
    pub fn checked(path: String, kind: Kind, mismatches: Vec<Mismatch>) -> Self {
        FileResult {
            path,
            status: if mismatches.is_empty() { Status::Ok } else { Status::Mismatch },
            kind: Some(kind),
            elf: None,
            detail: None,
            mismatches,
            reason: None,
        }
    }

    pub fn skipped(path: String, reason: impl Into<String>) -> Self {
        FileResult {
            path,
            status: Status::Skipped,
            kind: None,
            elf: None,
            detail: None,
            mismatches: Vec::new(),
            reason: Some(reason.into()),
        }
    }

    pub fn error(path: String, kind: Option<Kind>, message: impl Into<String>) -> Self {
        FileResult {
            path,
            status: Status::Error,
            kind,
            elf: None,
            detail: None,
            mismatches: Vec::new(),
            reason: Some(message.into()),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// Version of the JSON layout below; bumped when a field changes meaning or goes away.
pub(crate) const JSON_SCHEMA: u32 = 1;

/// Everything a verify run found. Serialized as the `--json` output: `schema`, `expectation`,
/// the counts, and `files` (one entry per file or archive member, in path order).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: u32,
    pub expectation: Expectation,
    /// Files inspected (ELF, kernel image, DTB, archive), whatever the verdict.
    pub checked: usize,
    pub mismatched: usize,
    pub skipped: usize,
    pub errors: usize,
    pub files: Vec<FileResult>,
}

impl Report {
    pub fn new(expectation: Expectation, files: Vec<FileResult>) -> Report {
        let count = |s: Status| files.iter().filter(|f| f.status == s).count();
        Report {
            schema: JSON_SCHEMA,
            expectation,
            checked: count(Status::Ok) + count(Status::Mismatch),
            mismatched: count(Status::Mismatch),
            skipped: count(Status::Skipped),
            errors: count(Status::Error),
            files,
        }
    }

    /// True when nothing mismatched, every file could be read, and something was checked.
    pub fn is_clean(&self) -> bool {
        self.mismatched == 0 && self.errors == 0 && self.nothing_checked().is_none()
    }

    /// Why this run proves nothing, when no file that carries code for a CPU (an ELF file, a
    /// kernel image or a FIT) was checked: what was skipped and why, the most common reasons
    /// first. `None` when at least one was checked.
    pub fn nothing_checked(&self) -> Option<String> {
        let code = self
            .files
            .iter()
            .any(|f| matches!(f.status, Status::Ok | Status::Mismatch) && f.kind.is_some_and(Kind::carries_code));
        if code {
            return None;
        }
        let mut reasons: Vec<(String, usize)> = Vec::new();
        for f in self.files.iter().filter(|f| f.status == Status::Skipped) {
            let r = f.reason.clone().unwrap_or_default();
            match reasons.iter_mut().find(|(seen, _)| *seen == r) {
                Some((_, n)) => *n += 1,
                None => reasons.push((r, 1)),
            }
        }
        reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
        let why = if reasons.is_empty() {
            "no files".to_string()
        } else {
            reasons.iter().map(|(r, n)| format!("{n} {r}")).collect::<Vec<_>>().join("; ")
        };
        Some(format!(
            "nothing checked: none of the {} file(s) is an ELF file, kernel image or FIT that could carry the board's code ({} other checked, {} skipped: {why})",
            self.files.len(),
            self.checked,
            self.skipped
        ))
    }

    /// The files that block a flash: mismatches and unreadable files.
    pub fn findings(&self) -> impl Iterator<Item = &FileResult> {
        self.files.iter().filter(|f| matches!(f.status, Status::Mismatch | Status::Error))
    }

    /// One line per finding (every file when `verbose`), then a summary line.
    pub fn render_human(&self, verbose: bool) -> String {
        let mut out = String::new();
        for f in &self.files {
            match f.status {
                Status::Mismatch => {
                    for m in &f.mismatches {
                        let _ = writeln!(
                            out,
                            "MISMATCH {}: {}: expected {}, found {}",
                            f.path, m.check, m.expected, m.found
                        );
                    }
                }
                Status::Error => {
                    let _ = writeln!(out, "ERROR    {}: {}", f.path, f.reason.as_deref().unwrap_or("unknown error"));
                }
                Status::Skipped if verbose => {
                    let _ = writeln!(out, "skipped  {}: {}", f.path, f.reason.as_deref().unwrap_or(""));
                }
                Status::Ok if verbose => {
                    let _ = writeln!(out, "ok       {}: {}", f.path, describe(f));
                }
                _ => {}
            }
        }
        let e = &self.expectation;
        let _ = writeln!(
            out,
            "verify ({} {}): {} checked, {} mismatched, {} errors, {} skipped",
            e.arch.as_str(),
            e.abi_name(),
            self.checked,
            self.mismatched,
            self.errors,
            self.skipped
        );
        out
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

fn describe(f: &FileResult) -> String {
    if let Some(elf) = &f.elf {
        let mut s = format!("{} {}-endian {} {}", elf.class, elf.data, elf.machine_name, elf.type_name);
        if let Some(fl) = elf.float_abi {
            let _ = write!(s, " {fl}");
        }
        if elf.rvc == Some(true) {
            s.push_str(" RVC");
        }
        if let Some(i) = &elf.interp {
            let _ = write!(s, " interp={i}");
        }
        if let Some(v) = &elf.vermagic {
            let _ = write!(s, " vermagic=\"{v}\"");
        }
        return s;
    }
    f.detail.clone().unwrap_or_default()
}
