//! The disk images the boards really build (shared builds, see `support::built`) verified
//! from the inside: clean against their own board, refused against a board of the other
//! architecture with the path inside the image in the message; and `rvbuild verify` on a
//! result folder checks the files `rvbuild board` checks.

mod support;

use std::collections::BTreeSet;

use support::{built, manifest, run, text};

const BOARDS: &[(&str, &str)] = &[
    ("qemu-riscv64", "qemu-aarch64"),
    ("qemu-aarch64", "qemu-riscv64"),
    ("visionfive2", "qemu-aarch64"),
    ("star64", "qemu-aarch64"),
    ("milkv-mars", "qemu-aarch64"),
    ("rpi4", "qemu-riscv64"),
];

fn paths(json: &serde_json::Value) -> BTreeSet<String> {
    json["files"].as_array().expect("files").iter().filter_map(|f| f["path"].as_str().map(str::to_string)).collect()
}

#[test]
fn nixbuild_board_images_verify_inside_against_their_board() {
    for (board, other) in BOARDS {
        let out = built(board);
        let m = manifest(&out);
        let image = m["artifacts"]["disk.img"].as_str().unwrap_or_else(|| panic!("{board}: no disk.img")).to_string();
        let dir = out.parent().expect("shared dir");

        let o = run(&["verify", "--board", board, &image, "--json"], dir);
        assert!(o.status.success(), "{board}: {}", text(&o));
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        let inside = paths(&json).into_iter().filter(|p| p.contains("disk.img:p")).count();
        assert!(inside >= 3, "{board}: the image's partitions and files are checked: {json:#}");

        let o = run(&["verify", "--board", other, &image], dir);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(5), "{board} against {other}: {t}");
        let kernel = t.lines().find(|l| l.starts_with("MISMATCH") && l.contains("disk.img:p") && l.contains("/Image"));
        assert!(kernel.is_some_and(|l| l.contains("image-arch")), "{board} against {other}: {t}");
        assert!(t.contains("initramfs.cpio.gz:init: machine"), "{board} against {other}: {t}");

        // The result folder: the files `rvbuild board` checks, whether asked with the board
        // (its build's own check) or with only the arch (the walk of the manifest's outputs).
        let out_s = out.to_str().unwrap_or_default();
        let o = run(&["verify", "--board", board, out_s, "--json"], dir);
        assert!(o.status.success(), "{board}: {}", text(&o));
        let by_board = paths(&serde_json::from_slice(&o.stdout).expect("json"));
        let arch = m["arch"].as_str().unwrap_or_else(|| panic!("{board}: manifest arch"));
        // Without the board, its GPU firmware (the Pi's start4.elf, ELF for the VideoCore) must be
        // named as ignored, as the board profile does.
        let o = run(&["verify", "--arch", arch, "--ignore", "*/start4.elf", out_s, "--json"], dir);
        assert!(o.status.success(), "{board}: {}", text(&o));
        let by_walk = paths(&serde_json::from_slice(&o.stdout).expect("json"));
        assert_eq!(by_board, by_walk, "{board}: the result folder stands for the build's outputs");
        assert!(by_board.iter().any(|p| p.contains("disk.img:p")), "{board}: the disk image is among them");
        assert!(!by_board.iter().any(|p| p.contains("-dev/")), "{board}: not the kernel's dev output");
    }
}
