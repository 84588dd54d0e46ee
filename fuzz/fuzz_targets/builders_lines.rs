//! Fuzz target: machines lines and specifications, ssh_config text, known_hosts lines.
//! The body is `rvbuild_fuzz::builders_lines` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvbuild_fuzz::builders_lines(data));
