//! Fuzz target: any bytes, inspected under each file name that changes how verify reads them
//! (plain file, kernel module, compressed module, kernel Image, DTB, archive, disk image, FIT),
//! must give a verdict without panicking. The first byte picks the name. Disk images (MBR/GPT,
//! FAT, ext4 inside) and FITs are recognised by their bytes: `run-stable.sh` seeds the corpus
//! with small ones.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvbuild::verify::{Expectation, verify_bytes};

const NAMES: &[&str] = &[
    "file",
    "mod.ko",
    "mod.ko.gz",
    "mod.ko.xz",
    "Image",
    "Image.gz",
    "board.dtb",
    "initrd.cpio",
    "disk.img",
    "u-boot.itb",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let name = NAMES[usize::from(pick) % NAMES.len()];
    if let Ok(exp) = Expectation::parse_arch("riscv64,abi=lp64d") {
        let results = verify_bytes(name, bytes, &exp);
        assert!(!results.is_empty());
    }
});
