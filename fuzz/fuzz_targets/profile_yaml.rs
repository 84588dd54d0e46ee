//! Fuzz target: board and build-profile YAML (parse, validate, render every problem).
//! The body is `rvbuild_fuzz::profile_yaml` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvbuild_fuzz::profile_yaml(data));
