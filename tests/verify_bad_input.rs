//! Bad input never panics or hangs `rvbuild verify`: truncated files, lying header sizes,
//! out-of-range counts, unreadable files, symlink loops and FIFOs each give one clear per-file
//! error or skip, and the run still reports every other file.

#[path = "verify_common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use rvbuild::verify::{self, Expectation, Status};

fn riscv_exe(dir: &Path) -> (PathBuf, Vec<u8>) {
    let exe = compile(dir, RISCV_CC, &[], HELLO, "seed");
    let bytes = std::fs::read(&exe).unwrap();
    (exe, bytes)
}

/// Writes `bytes` to `dir/name`, runs verify on it and returns its one JSON entry.
fn verdict(dir: &Path, name: &str, bytes: &[u8]) -> serde_json::Value {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    let out = verify(&["--arch", "riscv64", "--json"], &[&p]);
    assert!(out.code == 0 || out.code == 5, "exit {}: {}", out.code, out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    entry(&out.json(), name).clone()
}

fn reason(v: &serde_json::Value) -> &str {
    v["reason"].as_str().unwrap_or_default()
}

#[test]
fn truncated_elf_files_are_per_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes) = riscv_exe(dir.path());
    let short = verdict(dir.path(), "short", &bytes[..30]);
    assert_eq!(short["status"], "error");
    assert!(reason(&short).contains("truncated ELF header"), "{short:#}");
    // Header intact, program headers cut off.
    let cut = verdict(dir.path(), "cut", &bytes[..100]);
    assert_eq!(cut["status"], "error");
    assert!(reason(&cut).contains("program header table"), "{cut:#}");
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn lying_header_sizes_and_counts_are_per_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes) = riscv_exe(dir.path());
    let mut b = bytes.clone();
    put16(&mut b, 54, 7); // e_phentsize
    let v = verdict(dir.path(), "phentsize", &b);
    assert!(reason(&v).contains("e_phentsize is 7"), "{v:#}");

    let mut b = bytes.clone();
    put16(&mut b, 56, 0xfff0); // e_phnum far past the end of the file
    let v = verdict(dir.path(), "phnum", &b);
    assert_eq!(v["status"], "error");
    assert!(reason(&v).contains("truncated"), "{v:#}");

    let obj = compile(dir.path(), RISCV_CC, &["-march=rv64imac", "-mabi=lp64", "-c"], FLOATY, "obj.o");
    let obj = std::fs::read(obj).unwrap();
    let mut b = obj.clone();
    put16(&mut b, 62, 0xfffe); // e_shstrndx out of range
    let v = verdict(dir.path(), "shstrndx.o", &b);
    assert!(reason(&v).contains("e_shstrndx 65534 is out of range"), "{v:#}");
    let mut b = obj.clone();
    put16(&mut b, 60, 0xfff0); // e_shnum past the end
    put16(&mut b, 62, 1);
    let v = verdict(dir.path(), "shnum.o", &b);
    assert_eq!(v["status"], "error", "{v:#}");
    let mut b = obj;
    put16(&mut b, 58, 3); // e_shentsize
    let v = verdict(dir.path(), "shentsize.o", &b);
    assert!(reason(&v).contains("e_shentsize is 3"), "{v:#}");
}

#[test]
fn symlink_loops_and_fifos_never_hang() {
    let dir = tempfile::tempdir().unwrap();
    let (exe, _) = riscv_exe(dir.path());
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::copy(&exe, tree.join("ok")).unwrap();
    std::os::unix::fs::symlink("loop-b", tree.join("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", tree.join("loop-b")).unwrap();
    std::os::unix::fs::symlink(".", tree.join("self")).unwrap();
    require("mkfifo", "coreutils");
    run(std::process::Command::new("mkfifo").arg(tree.join("fifo")));

    let started = Instant::now();
    let out = verify(&["--arch", "riscv64", "--json"], &[&tree]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(out.code, 0, "links and FIFOs are skipped: {}", out.stdout);
    let report = out.json();
    assert_eq!(report["checked"], 1);
    assert_eq!(entry(&report, "/fifo")["status"], "skipped");
    assert_eq!(entry(&report, "/self")["status"], "skipped");

    // Named on the command line, a loop is followed and fails with the OS's reason.
    let out = verify(&["--arch", "riscv64", "--json"], &[&tree.join("loop-a")]);
    assert_eq!(out.code, 5);
    let v = entry(&out.json(), "loop-a").clone();
    assert_eq!(v["status"], "error");
    assert!(reason(&v).contains("symbolic links"), "ELOOP is named: {v:#}");
    // A FIFO alone is skipped without being opened, which leaves nothing checked: exit 5.
    let out = verify(&["--arch", "riscv64", "--json"], &[&tree.join("fifo")]);
    assert_eq!(out.code, 5);
    assert!(out.stderr.contains("nothing checked"), "{}", out.stderr);
    assert_eq!(entry(&out.json(), "fifo")["status"], "skipped");
}

#[test]
fn unreadable_file_is_a_per_file_error() {
    // /proc/self/mem is a regular file whose offset 0 cannot be read (EIO) even for root,
    // unlike a chmod 000 file.
    let exp = Expectation::parse_arch("riscv64").unwrap();
    let report = verify::verify_paths(&[PathBuf::from("/proc/self/mem")], &exp);
    assert_eq!(report.errors, 1, "{}", report.render_human(true));
    assert_eq!(report.files[0].status, Status::Error);
    assert!(report.files[0].reason.as_deref().unwrap().contains("cannot read"), "{:?}", report.files[0]);
    assert!(!report.is_clean());
}

#[test]
fn non_elf_files_are_skipped_and_listed_in_verbose_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README"), "text\n").unwrap();
    std::fs::write(dir.path().join("empty"), "").unwrap();
    // Nothing that could carry code was checked: not a pass, and the message says why.
    let out = verify(&["--arch", "riscv64"], &[dir.path()]);
    assert_eq!(out.code, 5);
    assert!(!out.stdout.contains("README"));
    assert!(out.stderr.contains("nothing checked") && out.stderr.contains("2 not ELF"), "{}", out.stderr);
    let out = rvbuild(&["--verbose", "verify", "--arch", "riscv64", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 5);
    assert!(out.stdout.contains("skipped  ") && out.stdout.contains("README: not ELF"), "{}", out.stdout);
    assert!(out.stdout.contains("0 checked, 0 mismatched, 0 errors, 2 skipped"));
}

#[test]
fn files_named_like_modules_images_and_dtbs_must_be_them() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["x.ko", "board.dtb", "Image"] {
        std::fs::write(dir.path().join(name), vec![0x55u8; 128]).unwrap();
    }
    let out = verify(&["--arch", "riscv64", "--json"], &[dir.path()]);
    assert_eq!(out.code, 5);
    let report = out.json();
    for name in ["x.ko", "board.dtb", "Image"] {
        let v = entry(&report, name);
        assert_eq!(v["status"], "mismatch", "{v:#}");
        assert_eq!(v["mismatches"][0]["check"], "format");
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = verify(&["--arch", "riscv64"], &[&missing]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no such file or directory"));
    let out = verify(&["--arch", "mips9"], &[dir.path()]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("unknown architecture `mips9`"));
    let out = verify(&["--board", "nope"], &[dir.path()]);
    assert_eq!(out.code, 2);
    let out = verify(&[], &[dir.path()]);
    assert_eq!(out.code, 2, "one of --board/--arch is required");
}

#[test]
fn firmware_and_ignored_paths_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let fw = dir.path().join("lib/firmware/dsp");
    std::fs::create_dir_all(&fw).unwrap();
    compile(&fw, AARCH64_CC, &["-c"], FLOATY, "coproc.elf");
    let extra = dir.path().join("opt");
    std::fs::create_dir_all(&extra).unwrap();
    compile(&extra, AARCH64_CC, &["-c"], FLOATY, "tool.o");
    let out = verify(&["--arch", "riscv64", "--json"], &[dir.path()]);
    assert_eq!(out.code, 5, "opt/tool.o is still checked: {}", out.stdout);
    let report = out.json();
    let fw_entry = entry(&report, "coproc.elf");
    assert_eq!(fw_entry["status"], "skipped");
    assert!(reason(fw_entry).contains("*/lib/firmware/*"));
    // With both ignored, nothing is left to check: not a pass.
    let out = verify(&["--arch", "riscv64", "--ignore", "*/opt/*"], &[dir.path()]);
    assert_eq!(out.code, 5, "{}", out.stdout);
    assert!(
        out.stderr.contains("nothing checked") && out.stderr.contains("ignored (matches */opt/*)"),
        "{}",
        out.stderr
    );
}
