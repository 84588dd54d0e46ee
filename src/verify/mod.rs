//! Checks of build outputs before they are flashed: ELF machine, class, byte order, OS/ABI,
//! type, RISC-V/ARM ABI flags, dynamic loader, kernel-module vermagic, kernel `Image` headers,
//! device trees, and the members of cpio/tar archives (initramfs). Headers only, in parallel.
//!
//! Entry points: [`Expectation`] (what the files must be) and [`verify_paths`] (the check),
//! which returns a [`Report`] whose [`Report::is_clean`] decides whether flashing may go on.

mod archive;
pub mod board;
mod check;
mod disk;
mod elf;
pub mod error;
mod expect;
mod extlinux;
mod fdt;
mod fit;
mod fs;
mod image;
mod inspect;
mod report;
mod source;
pub(crate) mod spl;
pub mod walk;

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use crate::vocab::Arch;
pub use expect::{Abi, Expectation, FloatAbi, elf_class, elf_endian, elf_machine, glibc_loader};
pub use report::{ElfSummary, FileResult, Kind, Mismatch, Report, Status};

/// Checks every file under `paths` (directories recursively, archive members included)
/// against `exp`. Never fails as a whole: unreadable or corrupt files are per-file errors.
pub fn verify_paths(paths: &[PathBuf], exp: &Expectation) -> Report {
    let items = walk::expand(paths);
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Vec<FileResult>>> = items.iter().map(|_| Mutex::new(Vec::new())).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let results = match item {
                        walk::Item::File(p) => inspect::inspect_path(p, exp),
                        walk::Item::Done(r) => vec![(**r).clone()],
                    };
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = results;
                    }
                }
            });
        }
    });
    let mut files: Vec<FileResult> =
        slots.into_iter().flat_map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner())).collect();
    check::cross_check_vermagic(exp, &mut files);
    Report::new(exp.clone(), files)
}

/// Checks one in-memory file (e.g. a header the fuzzer made) as if it were at `name`.
pub fn verify_bytes(name: &str, bytes: &[u8], exp: &Expectation) -> Vec<FileResult> {
    inspect::inspect_bytes(name, bytes, exp)
}

/// Most findings named in the error of [`check_before_flash`].
const MAX_FINDINGS_IN_ERROR: usize = 20;

/// For `rvbuild board` before it opens the serial port: the report when every output is
/// clean, else an [`ErrorKind::Verify`](crate::ErrorKind::Verify) error naming the files.
pub fn check_before_flash(paths: &[PathBuf], exp: &Expectation) -> crate::Result<Report> {
    let report = verify_paths(paths, exp);
    if report.is_clean() { Ok(report) } else { Err(refusal(&report)) }
}

/// The [`ErrorKind::Verify`](crate::ErrorKind::Verify) error for a report that is not clean,
/// naming its findings (the first [`MAX_FINDINGS_IN_ERROR`]).
pub fn refusal(report: &Report) -> crate::Error {
    let exp = &report.expectation;
    let mut lines = Vec::new();
    for f in report.findings() {
        if f.mismatches.is_empty() {
            lines.push(format!("  {}: {}", f.path, f.reason.as_deref().unwrap_or("unreadable")));
        }
        for m in &f.mismatches {
            lines.push(format!("  {}: {}: expected {}, found {}", f.path, m.check, m.expected, m.found));
        }
    }
    if let Some(why) = report.nothing_checked() {
        lines.push(format!("  {why}"));
    }
    let total = lines.len();
    lines.truncate(MAX_FINDINGS_IN_ERROR);
    if total > lines.len() {
        lines.push(format!("  ... and {} more", total - lines.len()));
    }
    error::VerifyError::Refused {
        mismatched: report.mismatched,
        arch: exp.arch.as_str(),
        abi: exp.abi_name(),
        unreadable: report.errors,
        findings: lines,
    }
    .into()
}
