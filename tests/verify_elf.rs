//! `rvbuild verify` on real ELF files made by the cross compilers: architecture, float ABI,
//! dynamic loader, kernel-module vermagic, and agreement with `readelf -h`.

#[path = "verify_common/mod.rs"]
mod common;

use common::*;

#[test]
fn riscv_lp64d_executable_is_clean_and_described_like_readelf() {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile(dir.path(), RISCV_CC, &["-march=rv64gc", "-mabi=lp64d"], HELLO, "hello");
    let out = verify(&["--arch", "riscv64,abi=lp64d", "--json"], &[&exe]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let report = out.json();
    let e = entry(&report, "/hello");
    assert_eq!(e["status"], "ok");
    let elf = &e["elf"];
    assert_eq!(elf["interp"], "/lib/ld-linux-riscv64-lp64d.so.1");
    assert_eq!(elf["float_abi"], "double-float");
    assert_eq!(elf["rvc"], true);

    let re = readelf_header(&exe);
    assert_eq!(re["Class"], elf["class"].as_str().unwrap());
    assert_eq!(re["Machine"], elf["machine_name"].as_str().unwrap());
    let flags = re["Flags"].split(',').next().unwrap();
    assert_eq!(u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap(), elf["flags"].as_u64().unwrap() as u32);
    assert!(re["Flags"].contains("double-float ABI"));
}

#[test]
fn soft_float_object_is_a_mismatch_against_lp64d() {
    let dir = tempfile::tempdir().unwrap();
    let obj = compile(dir.path(), RISCV_CC, &["-march=rv64imac", "-mabi=lp64", "-c"], FLOATY, "soft.o");
    let out = verify(&["--arch", "riscv64,abi=lp64d"], &[&obj]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    let line = format!("MISMATCH {}: float-abi: expected double-float (lp64d), found soft-float", obj.display());
    assert!(out.stdout.contains(&line), "{}", out.stdout);
    // The same object is right for a soft-float board.
    let out = verify(&["--arch", "riscv64,abi=lp64"], &[&obj]);
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[test]
fn aarch64_binary_is_refused_for_a_riscv_board() {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile(dir.path(), AARCH64_CC, &[], HELLO, "hello-arm64");
    let out = verify(&["--board", "visionfive2"], &[dir.path()]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains(&format!("MISMATCH {}: machine: expected RISC-V (243), found AArch64 (183)", exe.display())),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("interp: expected /lib/ld-linux-riscv64-lp64d.so.1, found /lib/ld-linux-aarch64.so.1"));
    assert!(out.stderr.contains("do not match riscv64 lp64d"), "{}", out.stderr);

    let out = verify(&["--board", "rpi4"], &[dir.path()]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let out = verify(&["--arch", "aarch64", "--json"], &[&exe]);
    assert_eq!(out.code, 0);
    let re = readelf_header(&exe);
    let e = entry(&out.json(), "hello-arm64").clone();
    assert_eq!(re["Machine"], e["elf"]["machine_name"].as_str().unwrap());
    assert_eq!(re["Class"], "ELF64");
}

#[test]
fn dynamic_loader_must_be_the_boards() {
    let dir = tempfile::tempdir().unwrap();
    let flags = |ld: &str| format!("-Wl,--dynamic-linker={ld}");
    let nix = flags("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-glibc-2.40/lib/ld-linux-riscv64-lp64d.so.1");
    let good = compile(dir.path(), RISCV_CC, &[&nix], HELLO, "nix-hello");
    let wrong = flags("/lib/ld-linux-riscv64-lp64.so.1");
    let bad = compile(dir.path(), RISCV_CC, &[&wrong], HELLO, "wrong-loader");
    let out = verify(&["--arch", "riscv64"], &[&good]);
    assert_eq!(out.code, 0, "a Nix store loader of the same name is accepted: {}", out.stdout);
    let out = verify(&["--arch", "riscv64"], &[&bad]);
    assert_eq!(out.code, 5);
    assert!(
        out.stdout.contains("interp: expected /lib/ld-linux-riscv64-lp64d.so.1, found /lib/ld-linux-riscv64-lp64.so.1"),
        "{}",
        out.stdout
    );
    let out = verify(&["--arch", "riscv64", "--interp", "/lib/ld-linux-riscv64-lp64.so.1"], &[&bad]);
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[test]
fn host_binary_checks_against_x86_64() {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile(dir.path(), "gcc", &[], HELLO, "host-hello");
    let out = verify(&["--arch", "x86_64", "--json"], &[&exe]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let out = verify(&["--arch", "riscv64"], &[&exe]);
    assert_eq!(out.code, 5);
    assert!(out.stdout.contains("found Advanced Micro Devices X86-64 (62)"));
}

const MODINFO: &str = r#"
__attribute__((section(".modinfo"), used, aligned(1)))
static const char modinfo[] = "license=GPL\0vermagic=6.12.0 SMP mod_unload riscv\0name=fake\0";
int init_module(void) { return 0; }
"#;

#[test]
fn kernel_module_vermagic_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let ko = compile(dir.path(), RISCV_CC, &["-march=rv64imac", "-mabi=lp64", "-c"], MODINFO, "fake.ko");
    let good = verify(&["--arch", "riscv64", "--vermagic", "6.12.0 SMP mod_unload riscv", "--json"], &[&ko]);
    assert_eq!(good.code, 0, "{}", good.stdout);
    assert_eq!(entry(&good.json(), "fake.ko")["elf"]["vermagic"], "6.12.0 SMP mod_unload riscv");
    let bad = verify(&["--arch", "riscv64", "--vermagic", "6.12.1 SMP preempt mod_unload riscv"], &[&ko]);
    assert_eq!(bad.code, 5);
    assert!(
        bad.stdout
            .contains("vermagic: expected 6.12.1 SMP preempt mod_unload riscv, found 6.12.0 SMP mod_unload riscv"),
        "{}",
        bad.stdout
    );

    // A module built with the userspace float ABI does not match the kernel's.
    let hard = compile(dir.path(), RISCV_CC, &["-c"], MODINFO, "hard.ko");
    let out = verify(&["--arch", "riscv64"], &[&hard]);
    assert_eq!(out.code, 5);
    assert!(
        out.stdout.contains("float-abi: expected soft-float (kernel modules), found double-float"),
        "{}",
        out.stdout
    );

    // Compressed modules, as distributions and nixpkgs install them.
    for (tool, package, ext) in [("xz", "xz-utils", "xz"), ("gzip", "gzip", "gz")] {
        require(tool, package);
        run(std::process::Command::new(tool).arg("-kf").arg(&ko));
        let packed = dir.path().join(format!("fake.ko.{ext}"));
        let out = verify(&["--arch", "riscv64", "--vermagic", "6.12.1 SMP preempt mod_unload riscv"], &[&packed]);
        assert_eq!(out.code, 5, "{}", out.stdout);
        assert!(
            out.stdout.contains(&format!("MISMATCH {}: vermagic: expected 6.12.1", packed.display())),
            "{}",
            out.stdout
        );
    }

    // A .ko without .modinfo has no vermagic.
    let bare = compile(dir.path(), RISCV_CC, &["-march=rv64imac", "-mabi=lp64", "-c"], FLOATY, "bare.ko");
    let out = verify(&["--arch", "riscv64"], &[&bare]);
    assert_eq!(out.code, 5);
    assert!(out.stdout.contains("vermagic: expected a vermagic= entry in .modinfo, found none"), "{}", out.stdout);
}

#[test]
fn many_files_are_checked_in_parallel_with_stable_order() {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile(dir.path(), RISCV_CC, &[], HELLO, "seed");
    let bytes = std::fs::read(&exe).unwrap();
    for i in 0..200 {
        let sub = dir.path().join(format!("d{}", i % 7));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i:03}")), &bytes).unwrap();
    }
    let out = verify(&["--arch", "riscv64", "--json"], &[dir.path()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.json();
    assert_eq!(report["checked"], 201);
    let paths: Vec<&str> = report["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "results keep the walk order");
}

#[test]
fn modules_disagreeing_on_vermagic_are_flagged_without_an_expected_one() {
    let dir = tempfile::tempdir().unwrap();
    let soft = ["-march=rv64imac", "-mabi=lp64", "-c"];
    compile(dir.path(), RISCV_CC, &soft, MODINFO, "a.ko");
    compile(dir.path(), RISCV_CC, &soft, MODINFO, "b.ko");
    let other = MODINFO.replace("6.12.0 SMP", "6.6.0 SMP preempt");
    let odd = compile(dir.path(), RISCV_CC, &soft, &other, "odd.ko");
    let out = verify(&["--arch", "riscv64"], &[dir.path()]);
    assert_eq!(out.code, 5, "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "MISMATCH {}: vermagic: expected 6.12.0 SMP mod_unload riscv (as 2 other modules), found 6.6.0 SMP preempt mod_unload riscv",
            odd.display()
        )),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.matches("MISMATCH").count(), 1, "{}", out.stdout);
}

#[test]
fn check_before_flash_refuses_and_names_the_files() {
    use rvbuild::verify::{Expectation, check_before_flash};
    let dir = tempfile::tempdir().unwrap();
    let good = compile(dir.path(), RISCV_CC, &[], HELLO, "good");
    let exp = Expectation::new(rvbuild::verify::Arch::Riscv64, None);
    let report = check_before_flash(&[good], &exp).expect("a clean output passes");
    assert_eq!(report.checked, 1);
    let bad = compile(dir.path(), AARCH64_CC, &[], HELLO, "bad");
    let err = check_before_flash(&[dir.path().to_path_buf()], &exp).unwrap_err();
    assert_eq!(err.kind(), rvbuild::ErrorKind::Verify);
    let msg = err.to_string();
    assert!(msg.starts_with("refusing to flash: 1 output file(s)"), "{msg}");
    assert!(msg.contains(&format!("{}: machine: expected RISC-V (243), found AArch64 (183)", bad.display())), "{msg}");
}
