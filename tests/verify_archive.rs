//! `rvbuild verify` on archives made by the real tools: cpio newc (plain, gzip, an early
//! uncompressed archive followed by a compressed one as in an initramfs) and tar (plain, gzip).

#[path = "verify_common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// A root with a good RISC-V binary, a wrong AArch64 one and a text file.
fn rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    compile(&root.join("bin"), RISCV_CC, &[], HELLO, "good");
    compile(&root.join("bin"), AARCH64_CC, &[], HELLO, "bad");
    std::fs::write(root.join("etc/motd"), "hello\n").unwrap();
    root
}

/// `find . | cpio -o -H newc` in `root`, written to `out`.
fn cpio(root: &Path, out: &Path) {
    require("cpio", "cpio");
    let list = Command::new("find").arg(".").current_dir(root).output().unwrap();
    let mut child = Command::new("cpio")
        .args(["-o", "-H", "newc", "--quiet"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(out).unwrap())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&list.stdout).unwrap();
    assert!(child.wait().unwrap().success());
}

fn gzip(path: &Path) -> PathBuf {
    require("gzip", "gzip");
    run(Command::new("gzip").arg("-kf").arg(path));
    PathBuf::from(format!("{}.gz", path.display()))
}

fn assert_members(out: &Outcome, archive: &Path) {
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    let report = out.json();
    let bad = entry(&report, &format!("{}:bin/bad", archive.display()));
    assert_eq!(bad["status"], "mismatch", "{bad:#}");
    assert_eq!(bad["mismatches"][0]["check"], "machine");
    assert_eq!(bad["mismatches"][0]["found"], "AArch64 (183)");
    let good = entry(&report, &format!("{}:bin/good", archive.display()));
    assert_eq!(good["status"], "ok", "{good:#}");
    let motd = entry(&report, &format!("{}:etc/motd", archive.display()));
    assert_eq!(motd["status"], "skipped");
    assert_eq!(report["errors"], 0, "{report:#}");
}

#[test]
fn cpio_newc_members_are_checked_plain_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = rootfs(dir.path());
    let plain = dir.path().join("initramfs.cpio");
    cpio(&root, &plain);
    let out = verify(&["--arch", "riscv64", "--json"], &[&plain]);
    assert_members(&out, &plain);
    let gz = gzip(&plain);
    let out = verify(&["--arch", "riscv64", "--json"], &[&gz]);
    assert_members(&out, &gz);
    // Human output names the member.
    let out = verify(&["--arch", "riscv64"], &[&gz]);
    assert!(
        out.stdout.contains(&format!(
            "MISMATCH {}:bin/bad: machine: expected RISC-V (243), found AArch64 (183)",
            gz.display()
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn initramfs_with_early_cpio_and_compressed_main_archive() {
    let dir = tempfile::tempdir().unwrap();
    let root = rootfs(dir.path());
    let early_root = dir.path().join("early");
    std::fs::create_dir_all(early_root.join("kernel")).unwrap();
    compile(&early_root.join("kernel"), AARCH64_CC, &["-c"], FLOATY, "early.o");
    let early = dir.path().join("early.cpio");
    cpio(&early_root, &early);
    let main = dir.path().join("main.cpio");
    cpio(&root, &main);
    let main_gz = gzip(&main);
    let mut joined = std::fs::read(&early).unwrap();
    joined.extend(std::fs::read(&main_gz).unwrap());
    let initrd = dir.path().join("initrd.img");
    std::fs::write(&initrd, joined).unwrap();
    let out = verify(&["--arch", "riscv64", "--json"], &[&initrd]);
    assert_members(&out, &initrd);
    let early_member = entry(&out.json(), "initrd.img:kernel/early.o").clone();
    assert_eq!(early_member["status"], "mismatch");
}

#[test]
fn tar_members_are_checked_plain_and_gzipped() {
    require("tar", "tar");
    let dir = tempfile::tempdir().unwrap();
    let root = rootfs(dir.path());
    let tar = dir.path().join("rootfs.tar");
    run(Command::new("tar").arg("-cf").arg(&tar).arg("-C").arg(&root).arg("."));
    let out = verify(&["--arch", "riscv64", "--json"], &[&tar]);
    assert_members(&out, &tar);
    let tgz = dir.path().join("rootfs.tar.gz");
    run(Command::new("tar").arg("-czf").arg(&tgz).arg("-C").arg(&root).arg("."));
    let out = verify(&["--arch", "riscv64", "--json"], &[&tgz]);
    assert_members(&out, &tgz);
    // All-good archive exits 0.
    std::fs::remove_file(root.join("bin/bad")).unwrap();
    let clean = dir.path().join("clean.tar");
    run(Command::new("tar").arg("-cf").arg(&clean).arg("-C").arg(&root).arg("."));
    let out = verify(&["--arch", "riscv64"], &[&clean]);
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[test]
fn truncated_archive_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = rootfs(dir.path());
    let plain = dir.path().join("initramfs.cpio");
    cpio(&root, &plain);
    let bytes = std::fs::read(&plain).unwrap();
    let cut = dir.path().join("cut.cpio");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = verify(&["--arch", "riscv64", "--json"], &[&cut]);
    assert_eq!(out.code, 5);
    let e = entry(&out.json(), "cut.cpio").clone();
    assert_eq!(e["status"], "error");
    assert!(e["reason"].as_str().unwrap().contains("truncated archive"), "{e:#}");
}

#[test]
fn gzip_padding_is_accepted_and_gzip_damage_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = rootfs(dir.path());
    std::fs::remove_file(root.join("bin/bad")).unwrap();
    let plain = dir.path().join("initramfs.cpio");
    cpio(&root, &plain);
    let gz = std::fs::read(gzip(&plain)).unwrap();

    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let mut padded = gz.clone();
    padded.extend(vec![0u8; 4096 - padded.len() % 4096]);
    let out = verify(&["--arch", "riscv64"], &[&write("padded.cpio.gz", &padded)]);
    assert_eq!(out.code, 0, "zero padding after gzip is fine: {}", out.stdout);

    let cut = write("cut.cpio.gz", &gz[..gz.len() - 4]);
    let out = verify(&["--arch", "riscv64", "--json"], &[&cut]);
    assert_eq!(out.code, 5);
    let e = entry(&out.json(), "cut.cpio.gz").clone();
    assert_eq!(e["status"], "error", "a missing gzip trailer is caught: {e:#}");

    let mut junk = gz.clone();
    junk.extend_from_slice(b"junk");
    let out = verify(&["--arch", "riscv64"], &[&write("junk.cpio.gz", &junk)]);
    assert_eq!(out.code, 5);
    assert!(out.stdout.contains("unexpected data after the end of the gzip stream"), "{}", out.stdout);
}

#[test]
fn xz_initramfs_with_stream_padding_is_read() {
    require("xz", "xz-utils");
    let dir = tempfile::tempdir().unwrap();
    let root = rootfs(dir.path());
    let plain = dir.path().join("initramfs.cpio");
    cpio(&root, &plain);
    // The kernel's unpacker wants CRC32 checks in xz initramfs images.
    run(Command::new("xz").args(["-k", "--check=crc32"]).arg(&plain));
    let xz = dir.path().join("initramfs.cpio.xz");
    let mut bytes = std::fs::read(&xz).unwrap();
    bytes.extend([0u8; 512]);
    std::fs::write(&xz, &bytes).unwrap();
    let out = verify(&["--arch", "riscv64", "--json"], &[&xz]);
    assert_members(&out, &xz);
}
