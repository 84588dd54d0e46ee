//! `rvbuild verify` on boot images: a real device tree dumped by QEMU's `virt` machine (FDT
//! magic, root compatible) and kernel `Image` headers laid out as the kernel documents them.

#[path = "verify_common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn qemu_virt_dtb(dir: &Path, qemu: &str, package: &str) -> PathBuf {
    require(qemu, package);
    let dtb = dir.join("virt.dtb");
    run(Command::new(qemu).arg("-machine").arg(format!("virt,dumpdtb={}", dtb.display())).args(["-display", "none"]));
    dtb
}

#[test]
fn dtb_compatible_from_a_real_device_tree() {
    let dir = tempfile::tempdir().unwrap();
    let dtb = qemu_virt_dtb(dir.path(), "qemu-system-riscv64", "qemu-system-misc");
    // The DTB matches, but a DTB alone carries no code: the run is not a pass.
    let out = verify(&["--arch", "riscv64", "--compatible", "riscv-virtio", "--json"], &[&dtb]);
    assert_eq!(out.code, 5, "{}", out.stdout);
    assert!(out.stderr.contains("nothing checked"), "{}", out.stderr);
    let e = entry(&out.json(), "virt.dtb").clone();
    assert_eq!(e["status"], "ok");
    assert_eq!(e["kind"], "dtb");
    assert!(e["detail"].as_str().unwrap().contains("riscv-virtio"));

    let out = verify(&["--arch", "riscv64", "--compatible", "starfive,jh7110"], &[&dtb]);
    assert_eq!(out.code, 5);
    assert!(
        out.stdout.contains(&format!(
            "MISMATCH {}: dtb-compatible: expected starfive,jh7110, found riscv-virtio",
            dtb.display()
        )),
        "{}",
        out.stdout
    );

    // Cut short, the header's totalsize lies: one error for the file.
    let bytes = std::fs::read(&dtb).unwrap();
    let cut = dir.path().join("cut.dtb");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = verify(&["--arch", "riscv64", "--json"], &[&cut]);
    assert_eq!(out.code, 5);
    let e = entry(&out.json(), "cut.dtb").clone();
    assert_eq!(e["status"], "error");
    assert!(e["reason"].as_str().unwrap().contains("truncated"), "{e:#}");
}

/// A kernel Image header: code words, text_offset, image_size, flags, then the magic at 48/56
/// (Documentation/arch/riscv/boot-image-header.rst, Documentation/arch/arm64/booting.rst).
fn image_header(riscv: bool, big_endian: bool) -> Vec<u8> {
    let mut h = vec![0u8; 4096];
    h[8..16].copy_from_slice(&0x20_0000u64.to_le_bytes());
    h[16..24].copy_from_slice(&0x100_0000u64.to_le_bytes());
    h[24..32].copy_from_slice(&u64::from(big_endian).to_le_bytes());
    if riscv {
        h[32..36].copy_from_slice(&2u32.to_le_bytes());
        h[48..56].copy_from_slice(b"RISCV\0\0\0");
        h[56..60].copy_from_slice(b"RSC\x05");
    } else {
        h[56..60].copy_from_slice(b"ARM\x64");
    }
    h
}

#[test]
fn kernel_image_arch_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let rv = dir.path().join("rv");
    let arm = dir.path().join("arm");
    std::fs::create_dir_all(&rv).unwrap();
    std::fs::create_dir_all(&arm).unwrap();
    std::fs::write(rv.join("Image"), image_header(true, false)).unwrap();
    std::fs::write(arm.join("Image"), image_header(false, false)).unwrap();

    assert_eq!(verify(&["--arch", "riscv64"], &[&rv]).code, 0);
    assert_eq!(verify(&["--board", "rpi4"], &[&arm]).code, 0);
    let out = verify(&["--board", "visionfive2"], &[&arm]);
    assert_eq!(out.code, 5);
    assert!(out.stdout.contains("image-arch: expected RISC-V Image, found ARM64 Image"), "{}", out.stdout);
    std::fs::write(arm.join("Image"), image_header(false, true)).unwrap();
    let out = verify(&["--board", "rpi4"], &[&arm]);
    assert!(out.stdout.contains("image-endianness"), "{}", out.stdout);

    // Image.gz: the header is read from the decompressed start.
    require("gzip", "gzip");
    run(Command::new("gzip").arg(rv.join("Image")));
    let out = verify(&["--arch", "aarch64", "--json"], &[&rv.join("Image.gz")]);
    assert_eq!(out.code, 5);
    let e = entry(&out.json(), "Image.gz").clone();
    assert_eq!(e["kind"], "kernel-image");
    assert_eq!(e["mismatches"][0]["found"], "RISC-V Image");
}
