//! Fuzz target: a builder's serve-protocol replies (handshake, path queries, BuildResult, NAR download).
//! The body is `rvbuild_fuzz::serve_reply` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvbuild_fuzz::serve_reply(data));
