//! End to end with real Nix and real QEMU: each QEMU board builds (kernel, out-of-tree module,
//! initramfs, boot files, firmware, disk image) and boots OpenSBI/U-Boot -> kernel -> init, which
//! loads the module and prints the marker. Builds are shared between tests (support::built).

mod support;

use std::fs;

use support::{built, manifest, run, text};

fn builds_and_boots(board: &str, arch_word: &str) {
    let out = built(board);
    let m = manifest(&out);
    assert_eq!(m["board"], board);
    let comps = m["components"].as_object().expect("components");
    for c in ["kernel", "module-rvhello", "init", "initramfs", "bootfiles", "firmware", "image"] {
        let outputs = comps[c]["outputs"].as_array().expect("outputs");
        assert!(!outputs.is_empty(), "{c} has no outputs");
        for o in outputs {
            let p = o.as_str().unwrap_or_default();
            assert!(std::path::Path::new(p).exists(), "{c}: {p} missing");
        }
        assert!(fs::metadata(comps[c]["log"].as_str().unwrap_or_default()).is_ok(), "{c}: no log file");
    }
    assert_eq!(comps["kernel"]["outputs"].as_array().map(|a| a.len()), Some(2), "kernel has out and dev");
    let arts = m["artifacts"].as_object().expect("artifacts");
    for a in ["disk.img", "Image", "initramfs.cpio.gz", "extlinux/extlinux.conf", "u-boot.bin"] {
        assert!(arts.contains_key(a), "artifact {a} missing: {arts:?}");
    }
    assert!(arts.keys().any(|k| k.ends_with("extra/rvhello.ko")), "module artefact missing");
    assert!(m["kernel_release"].as_str().unwrap_or_default().starts_with("6.12."));

    let o = run(&["qemu", board, "--no-build", "--out", out.to_str().unwrap_or_default()], &out);
    let t = text(&o);
    assert!(o.status.success(), "boot failed:\n{t}");
    assert!(t.contains("rvhello.ko") && t.contains("virtio_blk.ko"), "{t}");
    let log = fs::read_to_string(out.join("logs/boot.log")).expect("boot log");
    assert!(log.contains("U-Boot"), "did not boot through U-Boot:\n{log}");
    assert!(log.contains("rvhello: loaded, /dev/rvhello ready"), "module message missing:\n{log}");
    assert!(log.contains(&format!("rvhello says hi from {arch_word} 6.12")), "device read missing:\n{log}");
    assert!(log.lines().any(|l| l.trim() == "RVBUILD-BOOT-OK"), "marker missing:\n{log}");
    // VIRTIO_BLK is an in-tree module on the QEMU boards: init loads it and it finds the disk.
    assert!(log.contains("/kernel/drivers/block/virtio_blk.ko"), "in-tree module not loaded:\n{log}");
    assert!(log.contains("[vda]"), "virtio disk not found by the module:\n{log}");
}

#[test]
fn qemu_riscv64_builds_and_boots() {
    builds_and_boots("qemu-riscv64", "riscv64");
}

#[test]
fn qemu_aarch64_builds_and_boots() {
    builds_and_boots("qemu-aarch64", "aarch64");
}

#[test]
fn qemu_rebuild_is_a_no_op_with_the_same_store_paths() {
    let out = built("qemu-riscv64");
    let before = manifest(&out);
    let o = run(&["board", "qemu-riscv64", "--profile", "ci", "--out", out.to_str().unwrap_or_default()], &out);
    assert!(o.status.success(), "{}", text(&o));
    let after = manifest(&out);
    for c in ["kernel", "image", "initramfs"] {
        assert_eq!(before["components"][c]["outputs"], after["components"][c]["outputs"], "{c} changed");
        assert_eq!(after["components"][c]["cached"], true, "{c} was rebuilt");
    }
    assert!(text(&o).contains("kernel: already built"), "{}", text(&o));
}

#[test]
fn qemu_boot_without_the_marker_fails_with_exit_7() {
    // Same kernel (shared build), but the console points nowhere: init's marker never appears.
    built("qemu-riscv64");
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("boards")).expect("mkdir");
    let b = support::board_text("qemu-riscv64")
        .replace("name: qemu-riscv64", "name: silent")
        .replace("cmdline: console=ttyS0 earlycon", "cmdline: console=ttyS7")
        .replace("timeout: 180", "timeout: 40");
    fs::write(dir.path().join("boards/silent.yaml"), b).expect("write");
    let o = run(&["qemu", "silent", "--profile", "ci"], dir.path());
    let t = text(&o);
    assert_eq!(o.status.code(), Some(7), "{t}");
    assert!(t.contains("boot test of silent failed"), "{t}");
    assert!(t.contains("full console log:"), "{t}");
}
