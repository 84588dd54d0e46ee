//! Fuzz target: U-Boot console output at the prompt (echo, output, crc32, loady).
//! The body is `rvbuild_fuzz::uboot_console` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvbuild_fuzz::uboot_console(data));
