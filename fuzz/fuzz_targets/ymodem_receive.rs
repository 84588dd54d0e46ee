//! Fuzz target: a YMODEM sender's bytes as rvbuild's receiver reads them.
//! The body is `rvbuild_fuzz::ymodem_receive` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvbuild_fuzz::ymodem_receive(data));
