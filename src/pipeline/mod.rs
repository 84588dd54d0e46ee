//! The board pipeline, assembled in one place: profile → plan → nix → schedule → build →
//! verify, with the manifest written for flash and qemu.

pub mod board;
