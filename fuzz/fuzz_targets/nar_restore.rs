//! Fuzz target: NAR bytes restored into a directory (refused, or restored so it dumps back the same).
//! The body is `rvbuild_fuzz::nar_restore` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvbuild_fuzz::nar_restore(data));
