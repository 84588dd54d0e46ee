//! `rvbuild verify` on images assembled here with the real tools (sfdisk, mkfs.vfat + mtools,
//! mkfs.ext4 -d, cpio, gzip, the cross compilers): files of the wrong architecture deep inside
//! a disk image are found and named by their path inside it, FIT nodes are checked, and corrupt
//! or hostile images are clear errors, never a crash. Also: nothing checked is not a pass, and
//! directory walks follow links without looping.

#[path = "verify_common/mod.rs"]
mod common;
#[allow(unused)]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use support::images::fdt;

const MIB: u64 = 1 << 20;

fn cpio_gz(root: &Path, out: &Path) {
    require("cpio", "cpio");
    let list = Command::new("find").arg(".").current_dir(root).output().unwrap();
    let mut child = Command::new("sh")
        .args(["-c", "cpio -o -H newc --quiet | gzip -9n"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(out).unwrap())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&list.stdout).unwrap();
    assert!(child.wait().unwrap().success());
}

/// A disk image of `size` bytes with one partition at 1 MiB holding `part` (an sfdisk type).
fn disk_with(dir: &Path, label: &str, ty: &str, part: &Path, size: u64) -> PathBuf {
    require("sfdisk", "fdisk");
    let img = dir.join("disk.img");
    std::fs::File::create(&img).unwrap().set_len(size).unwrap();
    let part_sectors = std::fs::metadata(part).unwrap().len() / 512;
    let mut child = Command::new("sfdisk").args(["--quiet"]).arg(&img).stdin(Stdio::piped()).spawn().unwrap();
    let layout = format!("label: {label}\nstart=2048, size={part_sectors}, type={ty}\n");
    child.stdin.take().unwrap().write_all(layout.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    run(Command::new("dd").arg(format!("if={}", part.display())).arg(format!("of={}", img.display())).args([
        "bs=512",
        "seek=2048",
        "conv=notrunc",
        "status=none",
    ]));
    img
}

/// A FAT filesystem image holding the files of `root`.
fn vfat(dir: &Path, root: &Path) -> PathBuf {
    require("mkfs.vfat", "dosfstools");
    require("mcopy", "mtools");
    let fat = dir.join("boot.vfat");
    let _ = std::fs::remove_file(&fat);
    run(Command::new("mkfs.vfat").arg("-C").arg(&fat).arg("8192"));
    let entries: Vec<PathBuf> = std::fs::read_dir(root).unwrap().map(|e| e.unwrap().path()).collect();
    let mut cmd = Command::new("mcopy");
    cmd.arg("-s").arg("-i").arg(&fat).args(&entries).arg("::/");
    run(&mut cmd);
    fat
}

fn ext4(dir: &Path, root: &Path) -> PathBuf {
    require("mkfs.ext4", "e2fsprogs");
    let img = dir.join("root.ext4");
    std::fs::File::create(&img).unwrap().set_len(8 * MIB).unwrap();
    run(Command::new("mkfs.ext4").args(["-q", "-F", "-d"]).arg(root).arg(&img));
    img
}

fn boot_root(dir: &Path, init_cc: &str) -> PathBuf {
    let initrd = dir.join("initrd");
    std::fs::create_dir_all(&initrd).unwrap();
    compile(&initrd, init_cc, &["-static"], HELLO, "init");
    let boot = dir.join("boot");
    std::fs::create_dir_all(boot.join("extlinux")).unwrap();
    cpio_gz(&initrd, &boot.join("initramfs.cpio.gz"));
    // A RISC-V kernel Image header: magic at 56, image size at 16.
    let mut image = vec![0u8; 4096];
    image[16..24].copy_from_slice(&4096u64.to_le_bytes());
    image[56..60].copy_from_slice(b"RSC\x05");
    std::fs::write(boot.join("Image"), image).unwrap();
    std::fs::write(boot.join("extlinux/extlinux.conf"), "label rv\n  kernel /Image\n  initrd /initramfs.cpio.gz\n")
        .unwrap();
    boot
}

#[test]
fn aarch64_init_in_the_initramfs_of_a_fat_partition_is_refused_by_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let boot = boot_root(dir.path(), AARCH64_CC);
    let fat = vfat(dir.path(), &boot);
    let img = disk_with(dir.path(), "dos", "c", &fat, 16 * MIB);
    let out = verify(&["--arch", "riscv64"], &[&img]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    let line = out.stdout.lines().find(|l| l.contains("p1(vfat):/initramfs.cpio.gz:init")).unwrap_or_default();
    assert!(line.contains("machine: expected RISC-V (243), found AArch64 (183)"), "{}", out.stdout);
    // The rest of the image is checked too: the kernel and extlinux.conf pass.
    let json = verify(&["--arch", "riscv64", "--json"], &[&img]).json();
    assert_eq!(entry(&json, "p1(vfat):/Image")["status"], "ok");
    assert_eq!(entry(&json, "p1(vfat):/extlinux/extlinux.conf")["status"], "ok");

    // The same image built with a RISC-V init is clean.
    let dir2 = tempfile::tempdir().unwrap();
    let boot = boot_root(dir2.path(), RISCV_CC);
    let img = disk_with(dir2.path(), "dos", "c", &vfat(dir2.path(), &boot), 16 * MIB);
    let out = verify(&["--arch", "riscv64"], &[&img]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

#[test]
fn extlinux_naming_a_missing_kernel_is_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let boot = boot_root(dir.path(), RISCV_CC);
    std::fs::write(boot.join("extlinux/extlinux.conf"), "label rv\n  kernel /Image.gz\n").unwrap();
    let out = verify(&["--arch", "riscv64"], &[&vfat(dir.path(), &boot)]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("boot.vfat(vfat):/extlinux/extlinux.conf: extlinux: expected line 2: kernel /Image.gz in the image, found no such file"), "{}", out.stdout);
}

#[test]
fn aarch64_module_in_an_ext4_root_of_a_gpt_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let moddir = root.join("lib/modules/6.12.0/extra");
    std::fs::create_dir_all(&moddir).unwrap();
    compile(&root, RISCV_CC, &["-static"], HELLO, "init");
    let src = "__attribute__((section(\".modinfo\"), used)) static const char v[] = \"vermagic=6.12.0 SMP mod_unload aarch64\";\nint x;\n";
    let obj = compile(&moddir, AARCH64_CC, &["-c"], src, "rvhello.o");
    std::fs::rename(&obj, moddir.join("rvhello.ko")).unwrap();
    let img = disk_with(dir.path(), "gpt", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", &ext4(dir.path(), &root), 12 * MIB);
    let out = verify(&["--arch", "riscv64", "--json"], &[&img]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    let json = out.json();
    let m = entry(&json, "disk.img:p1(ext4):/lib/modules/6.12.0/extra/rvhello.ko");
    assert_eq!(m["status"], "mismatch", "{m:#}");
    assert_eq!(m["mismatches"][0]["found"], "AArch64 (183)");
    assert_eq!(entry(&json, "disk.img:p1(ext4):/init")["status"], "ok");
}

fn s(v: &str) -> Vec<u8> {
    format!("{v}\0").into_bytes()
}

#[test]
fn fit_whose_uboot_node_says_arm64_is_refused_for_a_riscv_board() {
    let dir = tempfile::tempdir().unwrap();
    let dtb = fdt(&[(0, "", vec![("compatible", s("starfive,visionfive-2-v1.3b"))])]);
    let fit = |arch: &str| {
        fdt(&[
            (0, "", vec![("description", s("test"))]),
            (1, "images", vec![]),
            (2, "uboot", vec![("type", s("standalone")), ("arch", s(arch)), ("data", vec![0x13; 64])]),
            (2, "fdt-1", vec![("type", s("flat_dt")), ("data", dtb.clone())]),
        ])
    };
    let bad = dir.path().join("u-boot.itb");
    std::fs::write(&bad, fit("arm64")).unwrap();
    let out = verify(&["--board", "visionfive2"], &[&bad]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("u-boot.itb:/images/uboot: fit-arch: expected riscv, found arm64"), "{}", out.stdout);
    std::fs::write(&bad, fit("riscv")).unwrap();
    let out = verify(&["--board", "visionfive2"], &[&bad]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // The embedded DTB is checked against the board: a Raspberry Pi's FIT DTB is not the VF2's.
    let out = verify(&["--board", "rpi4"], &[&bad]);
    assert!(out.stdout.contains("/images/fdt-1: dtb-board"), "{}", out.stdout);
}

#[test]
fn corrupt_and_hostile_images_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let boot = boot_root(dir.path(), RISCV_CC);
    let fat = vfat(dir.path(), &boot);
    let img = disk_with(dir.path(), "gpt", "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", &fat, 16 * MIB);
    let bytes = std::fs::read(&img).unwrap();
    let case = |name: &str, data: &[u8], want: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        let out = verify(&["--arch", "riscv64"], &[&p]);
        assert_eq!(out.code, 5, "{name}: {}{}", out.stdout, out.stderr);
        assert!(!out.stderr.contains("panicked"), "{name}: {}", out.stderr);
        assert!(
            out.stdout.contains(want) || out.stderr.contains(want),
            "{name}: want {want}: {}{}",
            out.stdout,
            out.stderr
        );
    };
    // Truncated: the GPT entry array is cut off; then the partition runs past the end.
    case("truncated-table.img", &bytes[..1500], "truncated");
    case("truncated-partition.img", &bytes[..4 * MIB as usize], "lies past the end of the image");
    // A corrupted GPT entry array fails its CRC.
    let mut crc = bytes.clone();
    crc[1024 + 40] ^= 0xff;
    case("bad-crc.img", &crc, "CRC does not match");
    // An MBR partition pointing past the end.
    let mut mbr = vec![0u8; 64 * 1024];
    mbr[446 + 4] = 0x83;
    mbr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    mbr[446 + 12..446 + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    case("mbr-past-end.img", &mbr, "past the end");
    // FAT with absurd geometry: sectors per cluster 0, then a FAT whose size covers the disk.
    let mut fat_bytes = std::fs::read(&fat).unwrap();
    fat_bytes[13] = 0;
    case("zero-cluster.vfat", &fat_bytes, "FAT");
    let mut fat_bytes = std::fs::read(&fat).unwrap();
    fat_bytes[22..24].copy_from_slice(&0xffffu16.to_le_bytes());
    case("huge-fat.vfat", &fat_bytes, "vfat");
    // A file whose directory entry claims 4 GiB.
    let mut fat_bytes = std::fs::read(&fat).unwrap();
    let le16 = |b: &[u8], at: usize| usize::from(u16::from_le_bytes([b[at], b[at + 1]]));
    let root = (le16(&fat_bytes, 14) + usize::from(fat_bytes[16]) * le16(&fat_bytes, 22)) * 512;
    let e =
        (0..le16(&fat_bytes, 17)).map(|i| root + 32 * i).find(|&e| fat_bytes[e..e + 6] == *b"INITRA").expect("entry");
    fat_bytes[e + 28..e + 32].copy_from_slice(&u32::MAX.to_le_bytes());
    case("absurd-size.vfat", &fat_bytes, "larger than its filesystem");
    // A full directory whose cluster chain points back at itself (a loop in the FAT).
    case("loop.vfat", &fat_dir_loop(dir.path()), "listed twice in its directory");
    // An ext4 filesystem whose inode table is garbage.
    let root = dir.path().join("deep");
    std::fs::create_dir_all(root.join("d")).unwrap();
    std::fs::write(root.join("d/x"), b"x").unwrap();
    let ext = ext4(dir.path(), &root);
    let mut e = std::fs::read(&ext).unwrap();
    // Inode table garbage: every inode of the first group overwritten.
    let inode_table = 1024 * 8 + 4096;
    for b in &mut e[inode_table..inode_table + 64 * 1024] {
        *b = 0xa5;
    }
    case("garbage-inodes.ext4", &e, "ext4");
    // A cpio whose member climbs out of the archive.
    let mut cpio = Vec::new();
    let name = b"../../etc/passwd\0";
    let header = format!(
        "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
        1,
        0o100644,
        0,
        0,
        1,
        0,
        4,
        0,
        0,
        0,
        0,
        name.len(),
        0
    );
    cpio.extend_from_slice(header.as_bytes());
    cpio.extend_from_slice(name);
    cpio.resize(cpio.len().div_ceil(4) * 4, 0);
    cpio.extend_from_slice(b"evil");
    let trailer = b"TRAILER!!!\0";
    cpio.extend_from_slice(
        format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            trailer.len(),
            0
        )
        .as_bytes(),
    );
    cpio.extend_from_slice(trailer);
    case("evil.cpio", &cpio, "climbs out of the archive");
}

/// A FAT16 image whose directory `/D` fills its one cluster (no end marker) and whose FAT entry
/// for that cluster points to itself: reading the directory never ends on its own.
fn fat_dir_loop(dir: &Path) -> Vec<u8> {
    let fat = dir.join("loop.src.vfat");
    run(Command::new("mkfs.vfat").args(["-F", "16", "-s", "1", "-C"]).arg(&fat).arg("8192"));
    run(Command::new("mmd").arg("-i").arg(&fat).arg("::/D"));
    // ".", ".." and 14 short names: 16 entries of 32 bytes, one 512-byte cluster.
    for i in 1..=14 {
        let f = dir.join(format!("F{i:02}"));
        std::fs::write(&f, b"x").unwrap();
        run(Command::new("mcopy").arg("-i").arg(&fat).arg(&f).arg(format!("::/D/F{i:02}")));
    }
    let mut b = std::fs::read(&fat).unwrap();
    let le16 = |b: &[u8], at: usize| usize::from(u16::from_le_bytes([b[at], b[at + 1]]));
    let (reserved, fats, root_entries, per_fat) = (le16(&b, 14), usize::from(b[16]), le16(&b, 17), le16(&b, 22));
    let root = (reserved + fats * per_fat) * 512;
    let entry = (0..root_entries).map(|i| root + 32 * i).find(|&e| &b[e..e + 11] == b"D          ").expect("/D");
    let cluster = le16(&b, entry + 26) as u16;
    for f in 0..fats {
        let at = (reserved + f * per_fat) * 512 + 2 * usize::from(cluster);
        b[at..at + 2].copy_from_slice(&cluster.to_le_bytes());
    }
    b
}

#[test]
fn nothing_checked_is_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README"), "text\n").unwrap();
    std::fs::write(dir.path().join("blob.bin"), [0u8; 100]).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", dir.path().join("dangling")).unwrap();
    let out = verify(&["--arch", "riscv64"], &[dir.path()]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("nothing checked"), "{}", out.stderr);
    assert!(out.stderr.contains("2 not ELF, kernel image, DTB or archive"), "{}", out.stderr);
    let out = verify(&["--arch", "riscv64", "-v"], &[dir.path()]);
    assert!(
        out.stdout.contains("skipped") && out.stdout.contains("symbolic link that does not resolve"),
        "{}",
        out.stdout
    );
}

#[test]
fn directory_links_are_followed_once_without_loops() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store-path");
    std::fs::create_dir_all(store.join("bin")).unwrap();
    compile(&store.join("bin"), RISCV_CC, &[], HELLO, "hello");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    compile(&outside, AARCH64_CC, &[], HELLO, "foreign");
    // Inside the target: a loop back to itself and a link that leaves it.
    std::os::unix::fs::symlink(&store, store.join("bin/loop")).unwrap();
    std::os::unix::fs::symlink(&outside, store.join("leave")).unwrap();
    let result = dir.path().join("result-folder");
    std::fs::create_dir_all(result.join(".gcroots")).unwrap();
    std::os::unix::fs::symlink(&store, result.join("out")).unwrap();
    std::os::unix::fs::symlink(&store, result.join(".gcroots/out")).unwrap();
    // A link to a file of the folder itself: the file is checked under its own name, once.
    compile(&result, RISCV_CC, &[], HELLO, "plain");
    std::os::unix::fs::symlink(result.join("plain"), result.join("also-plain")).unwrap();
    let out = verify(&["--arch", "riscv64", "--json"], &[&result]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let json = out.json();
    assert_eq!(json["checked"], 2, "{json:#}");
    assert_eq!(entry(&json, "result-folder/plain")["status"], "ok");
    assert_eq!(entry(&json, "result-folder/also-plain")["status"], "skipped");
    assert_eq!(entry(&json, "result-folder/out/bin/hello")["status"], "ok");
    assert_eq!(entry(&json, "result-folder/out/leave")["status"], "skipped");
}

#[test]
fn mutated_disk_images_give_a_verdict_without_panicking() {
    // A small MBR image with a FAT partition holding a kernel header, an initramfs and
    // extlinux.conf; then 200 variants with bytes flipped in the table, the boot
    // sector, the FATs and the directories (the region the fuzz seeds cover too).
    let dir = tempfile::tempdir().unwrap();
    let boot = boot_root(dir.path(), RISCV_CC);
    let fat = vfat(dir.path(), &boot);
    let img = disk_with(dir.path(), "dos", "c", &fat, 10 * MIB);
    let clean = std::fs::read(&img).unwrap();
    let exp = rvbuild::verify::Expectation::parse_arch("riscv64").unwrap();
    let hot = 1 << 20..(1 << 20) + 48 * 1024;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for case in 0..200 {
        let mut bytes = clean.clone();
        for _ in 0..1 + next() % 8 {
            let at = if next() % 8 == 0 { (next() % 512) as usize } else { hot.start + (next() as usize) % hot.len() };
            bytes[at] = next() as u8;
        }
        let results = rvbuild::verify::verify_bytes("disk.img", &bytes, &exp);
        assert!(!results.is_empty(), "case {case}");
        assert!(results.iter().all(|r| r.path.starts_with("disk.img")), "case {case}: {results:?}");
    }
}
