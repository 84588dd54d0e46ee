//! Property tests: random bytes and mutated real headers (this test binary is itself a real
//! ELF file) never make verify panic; every input gets a verdict, errors carry a reason, and
//! whatever is reported about an ELF header agrees with the header bytes.

use std::sync::OnceLock;

use proptest::prelude::*;
use rvbuild::verify::{self, Expectation, Status};

/// The first 64 KiB of this test executable: a real ELF header, program and (part of the)
/// section headers.
fn seed() -> &'static [u8] {
    static SEED: OnceLock<Vec<u8>> = OnceLock::new();
    SEED.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        let mut bytes = std::fs::read(exe).expect("reading the test executable");
        bytes.truncate(64 * 1024);
        bytes
    })
}

/// A small newc cpio archive holding a piece of the seed ELF.
fn seed_cpio() -> Vec<u8> {
    let mut out = Vec::new();
    let data = &seed()[..4096];
    for (name, mode, body) in [("bin/x", 0o100755u32, data), ("TRAILER!!!", 0, &[][..])] {
        out.extend_from_slice(
            format!(
                "070701{:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
                1,
                0,
                0,
                1,
                0,
                body.len(),
                0,
                0,
                0,
                0,
                name.len() + 1,
                0
            )
            .as_bytes(),
        );
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out.extend_from_slice(body);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }
    out
}

const NAMES: &[&str] = &["file", "mod.ko", "Image", "board.dtb", "initrd.cpio", "x.ko.gz"];

fn exp() -> Expectation {
    Expectation::parse_arch("riscv64,abi=lp64d").expect("valid spec")
}

/// Runs verify on `bytes` under every name and checks the invariants.
fn check_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    for name in NAMES {
        let results = verify::verify_bytes(name, bytes, &exp());
        prop_assert!(!results.is_empty());
        for r in &results {
            match r.status {
                Status::Error | Status::Skipped => {
                    prop_assert!(r.reason.as_deref().is_some_and(|s| !s.is_empty()))
                }
                Status::Mismatch => prop_assert!(!r.mismatches.is_empty()),
                Status::Ok => prop_assert!(r.mismatches.is_empty()),
            }
        }
        let top = &results[0];
        if let Some(elf) = &top.elf {
            // What is reported is what the header bytes say.
            let big = bytes[5] == 2;
            let m = [bytes[18], bytes[19]];
            let machine = if big { u16::from_be_bytes(m) } else { u16::from_le_bytes(m) };
            prop_assert_eq!(elf.machine, machine);
            prop_assert_eq!(elf.class, if bytes[4] == 1 { "ELF32" } else { "ELF64" });
        }
    }
    Ok(())
}

/// Mutations: (position, new byte) pairs, the positions mostly in the headers.
fn mutations() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec(prop_oneof![3 => (0usize..64, any::<u8>()), 1 => (0usize..65536, any::<u8>())], 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_never_panic(
        magic in prop_oneof![Just(b"\x7fELF".to_vec()), Just(vec![0xd0, 0x0d, 0xfe, 0xed]),
                             Just(b"070701".to_vec()), Just(vec![0x1f, 0x8b]),
                             Just(b"\xfd7zXZ\0".to_vec()), Just(vec![])],
        tail in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = magic;
        bytes.extend(tail);
        check_all(&bytes)?;
    }

    #[test]
    fn mutated_elf_headers_never_panic(muts in mutations(), cut in 0usize..65536) {
        let mut bytes = seed().to_vec();
        for (at, b) in muts {
            if at < bytes.len() {
                bytes[at] = b;
            }
        }
        bytes.truncate(cut.max(4));
        check_all(&bytes)?;
    }

    #[test]
    fn lying_counts_and_offsets_never_panic(
        phnum in any::<u16>(), phentsize in any::<u16>(), shnum in any::<u16>(),
        shentsize in any::<u16>(), shstrndx in any::<u16>(), phoff in any::<u64>(),
        shoff in any::<u64>(), e_type in 0u16..5,
    ) {
        let mut bytes = seed().to_vec();
        prop_assume!(bytes[4] == 2 && bytes[5] == 1);
        bytes[16..18].copy_from_slice(&e_type.to_le_bytes());
        bytes[32..40].copy_from_slice(&phoff.to_le_bytes());
        bytes[40..48].copy_from_slice(&shoff.to_le_bytes());
        bytes[54..56].copy_from_slice(&phentsize.to_le_bytes());
        bytes[56..58].copy_from_slice(&phnum.to_le_bytes());
        bytes[58..60].copy_from_slice(&shentsize.to_le_bytes());
        bytes[60..62].copy_from_slice(&shnum.to_le_bytes());
        bytes[62..64].copy_from_slice(&shstrndx.to_le_bytes());
        check_all(&bytes)?;
    }

    #[test]
    fn mutated_cpio_never_panics(muts in prop::collection::vec((0usize..4400, any::<u8>()), 1..8), cut in 0usize..4400) {
        let mut bytes = seed_cpio();
        for (at, b) in muts {
            if at < bytes.len() {
                bytes[at] = b;
            }
        }
        bytes.truncate(cut.max(6));
        check_all(&bytes)?;
    }
}

#[test]
fn the_seed_is_a_real_elf_with_program_headers() {
    let results = verify::verify_bytes("file", seed(), &exp());
    let elf = results[0].elf.as_ref().expect("the test executable is ELF");
    assert_eq!(results[0].status, Status::Mismatch, "x86_64 is not riscv64");
    assert!(elf.interp.is_some(), "a dynamically linked test binary has PT_INTERP");
}
