//! Fuzz target: `.drv` ATerm text (parse, write back, parse again).
//! The body is `rvbuild_fuzz::drv_aterm` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvbuild_fuzz::drv_aterm(data));
