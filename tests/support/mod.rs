//! Test support shared by the serial and QEMU flash tests: pty pairs with a real peer process
//! on the far end, QEMU running U-Boot, a noisy pty proxy, and a JH7110 boot-ROM simulator.
#![allow(dead_code)]

pub mod noisy;
pub mod pty;
pub mod qemu;
pub mod rom;
