//! Target-system builds with the host provider: the userland component as a riscv64-linux
//! derivation whose builder is the Debian riscv64 userland's bash, run by the local Nix through
//! binfmt qemu-user (the userland comes from scripts/setup-host.sh). Checked with the real Nix,
//! readelf, `rvbuild verify` and a QEMU boot; plus the strategy flag's refusals.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{built, manifest, run, text};

/// Writes the qemu-riscv64 expression with the given extra flags; returns its path.
fn expression(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    board_expression("qemu-riscv64", dir, name, extra)
}

fn board_expression(board: &str, dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["board", board, "--profile", "ci", "--expr-only", "--out"];
    let out_s = out.to_string_lossy().into_owned();
    args.push(&out_s);
    args.extend_from_slice(extra);
    let o = run(&args, dir);
    assert!(o.status.success(), "{}", text(&o));
    out.join("board.nix")
}

fn drvs(file: &Path, comps: &[&str]) -> std::collections::BTreeMap<String, String> {
    let comps: Vec<String> = comps.iter().map(|c| c.to_string()).collect();
    rvbuild::nix::instantiate::instantiate(file, &comps).expect("instantiate").drvs
}

fn drv_json(drv: &str) -> serde_json::Value {
    let o = Command::new("nix")
        .args(["--extra-experimental-features", "nix-command", "show-derivation", drv])
        .output()
        .expect("nix show-derivation");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    v[drv].clone()
}

fn realise(drv: &str, root: &Path, extra: &[&str]) -> String {
    let o = Command::new("nix-store")
        .args(["--realise", drv, "--add-root"])
        .arg(root)
        .args(["--indirect", "--option", "substituters", ""])
        .args(extra)
        .output()
        .expect("nix-store");
    assert!(o.status.success(), "realise {drv}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).lines().last().unwrap_or_default().trim().to_string()
}

fn readelf(args: &[&str], file: &Path) -> String {
    let o = Command::new("readelf").args(args).arg(file).output().expect("readelf");
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn target_system_init_is_a_riscv64_derivation_and_the_kernel_drv_is_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cross = drvs(&expression(dir.path(), "cross", &[]), &["kernel", "module-rvhello", "init"]);
    let emu = expression(dir.path(), "emu", &["--strategy", "userland=emulated"]);
    let text = fs::read_to_string(&emu).expect("board.nix");
    assert!(text.contains("strategy = \"emulated\""), "{text}");
    let emu = drvs(&emu, &["kernel", "module-rvhello", "init"]);
    // Only the userland changes: the kernel group keeps its derivations (nothing rebuilds).
    assert_eq!(cross["kernel"], emu["kernel"]);
    assert_eq!(cross["module-rvhello"], emu["module-rvhello"]);
    assert_ne!(cross["init"], emu["init"]);
    let d = drv_json(&emu["init"]);
    assert_eq!(d["system"], "riscv64-linux");
    let builder = d["builder"].as_str().unwrap_or_default();
    assert!(builder.ends_with("userland-riscv64/usr/bin/bash"), "{builder}");
    let env = &d["env"];
    assert_eq!(env["crossPrefix"], "");
    assert_eq!(env["userlandId"].as_str().map(str::len), Some(64), "{env}");
    assert!(env["QEMU_LD_PREFIX"].as_str().is_some_and(|p| builder.starts_with(p)), "{env}");
    // native and emulated are one derivation: only the placement differs
    let native = drvs(&expression(dir.path(), "native", &["--strategy", "init=native"]), &["init"]);
    assert_eq!(native["init"], emu["init"]);
}

#[test]
fn strategy_flags_the_host_provider_cannot_honour_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&[&str], &str); 4] = [
        (&["--strategy", "kernel=emulated"], "kernel group) only as cross"),
        (&["--strategy", "module-rvhello=native"], "only as cross"),
        (&["--strategy", "image=native"], "`image` is arch-neutral"),
        (&["--strategy", "userland=quick"], "unknown strategy `quick`"),
    ];
    for (flags, needle) in cases {
        let mut args = vec!["board", "qemu-riscv64", "--expr-only", "--out", "out"];
        args.extend_from_slice(flags);
        let o = run(&args, dir.path());
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", text(&o));
        assert!(text(&o).contains(needle), "{flags:?}: {}", text(&o));
    }
    // A machine without the userland says what to run.
    let o = support::rvbuild()
        .args(["board", "qemu-riscv64", "--expr-only", "--out", "out", "--strategy", "userland=emulated"])
        .env("RVBUILD_USERLAND_ROOT", dir.path())
        .current_dir(dir.path())
        .output()
        .expect("rvbuild");
    assert_eq!(o.status.code(), Some(8), "{}", text(&o));
    assert!(text(&o).contains("riscv64 userland") && text(&o).contains("setup-host.sh"), "{}", text(&o));
}

#[test]
fn nixbuild_init_target_system_riscv64_builds_emulated_and_matches_the_cross_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cross = drvs(&expression(dir.path(), "cross", &[]), &["init"]);
    let emu = drvs(&expression(dir.path(), "emu", &["--strategy", "userland=emulated"]), &["init"]);
    let cross_out = realise(&cross["init"], &dir.path().join("cross-init"), &[]);
    let emu_out = realise(&emu["init"], &dir.path().join("emu-init"), &[]);
    assert_ne!(cross_out, emu_out);
    // Rebuilding gives the same bytes: the emulated build is reproducible.
    realise(&emu["init"], &dir.path().join("emu-init-check"), &["--check"]);
    for out in [&cross_out, &emu_out] {
        let init = Path::new(out).join("bin/init");
        let header = readelf(&["-h"], &init);
        assert!(header.contains("RISC-V") && header.contains("double-float ABI"), "{out}: {header}");
        let program = readelf(&["-l"], &init);
        assert!(!program.contains("INTERP"), "{out} is not static: {program}");
        let o = run(&["verify", "--arch", "riscv64,abi=lp64d", out], dir.path());
        assert!(o.status.success(), "{out}: {}", text(&o));
    }
    // The emulated one was compiled by the userland's gcc, not the cross gcc.
    let comment = |out: &str| readelf(&["-p", ".comment"], &Path::new(out).join("bin/init"));
    assert_ne!(comment(&cross_out), comment(&emu_out));
}

#[test]
fn nixbuild_init_target_system_aarch64_builds_emulated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = board_expression("qemu-aarch64", dir.path(), "emu", &["--strategy", "userland=emulated"]);
    let emu = drvs(&file, &["init"]);
    assert_eq!(drv_json(&emu["init"])["system"], "aarch64-linux");
    let out = realise(&emu["init"], &dir.path().join("emu-init"), &[]);
    let init = Path::new(&out).join("bin/init");
    assert!(readelf(&["-h"], &init).contains("AArch64"));
    assert!(!readelf(&["-l"], &init).contains("INTERP"), "{out} is not static");
    let o = run(&["verify", "--arch", "aarch64", &out], dir.path());
    assert!(o.status.success(), "{out}: {}", text(&o));
}

#[test]
fn qemu_riscv64_boots_with_its_userland_built_emulated() {
    // The shared cross build puts the kernel in the store; this build must reuse it.
    built("qemu-riscv64");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let out_s = out.to_string_lossy().into_owned();
    let o = run(
        &["board", "qemu-riscv64", "--profile", "ci", "--strategy", "userland=emulated", "--out", &out_s],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let m = manifest(&out);
    let comps = &m["components"];
    assert_eq!(comps["init"]["strategy"], "emulated");
    assert_eq!(comps["kernel"]["strategy"], "cross");
    assert_eq!(comps["kernel"]["cached"], true, "the kernel was rebuilt");
    assert_eq!(comps["module-rvhello"]["cached"], true, "the module was rebuilt");
    let o = run(&["qemu", "qemu-riscv64", "--no-build", "--out", &out_s], dir.path());
    assert!(o.status.success(), "boot failed:\n{}", text(&o));
    let log = fs::read_to_string(out.join("logs/boot.log")).expect("boot log");
    assert!(log.contains("rvbuild-init: Linux on riscv64"), "init did not run:\n{log}");
    assert!(log.lines().any(|l| l.trim() == "RVBUILD-BOOT-OK"), "marker missing:\n{log}");
    // Asking for native gives the same derivation; on this x86_64 machine it runs emulated,
    // and the manifest says where it ran.
    let o = run(
        &["board", "qemu-riscv64", "--profile", "ci", "--strategy", "userland=native", "--out", &out_s],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let again = manifest(&out);
    assert_eq!(again["components"]["init"]["outputs"], comps["init"]["outputs"]);
    assert_eq!(again["components"]["init"]["cached"], true);
    assert_eq!(again["components"]["init"]["strategy"], "emulated");
}

#[tokio::test]
async fn emulation_probe_measures_the_local_slowdown_for_riscv64() {
    let local = rvbuild::transport::LocalTransport::new();
    let root = rvbuild::builders::userland::root();
    let p = rvbuild::probe::emulation::probe(&local, "riscv64-linux", &root.to_string_lossy()).await.expect("probe");
    assert!(p.native_s > 0.0 && p.emulated_s > p.native_s, "{p:?}");
    // gcc under qemu-user is several times slower than the build machine's own gcc
    assert!(p.slowdown() > 2.0, "{p:?}");
    eprintln!("emulation probe: {p:?}, slowdown {:.1}, overhead {:.2} s", p.slowdown(), p.process_overhead_s());
    // a builder without the userland says so
    let missing = tempfile::tempdir().expect("tempdir");
    let e = rvbuild::probe::emulation::probe(&local, "riscv64-linux", &missing.path().to_string_lossy())
        .await
        .expect_err("no userland");
    assert!(e.to_string().contains("no userland at"), "{e}");
}

#[test]
fn a_profile_can_ask_for_a_target_system_userland_and_the_flag_overrides_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("profiles")).expect("mkdir");
    fs::write(
        dir.path().join("profiles/emu.yaml"),
        "name: emu\nprovider: host\nstrategy:\n  overrides:\n    userland: emulated\n    kernel: cross\n",
    )
    .expect("write");
    let o = run(&["board", "qemu-riscv64", "--profile", "emu", "--expr-only", "--out", "a"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let e = fs::read_to_string(dir.path().join("a/board.nix")).expect("board.nix");
    assert!(e.contains("strategy = \"emulated\";\n    inherit userland;"), "{e}");
    let o = run(
        &["board", "qemu-riscv64", "--profile", "emu", "--expr-only", "--out", "b", "--strategy", "init=cross"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let e = fs::read_to_string(dir.path().join("b/board.nix")).expect("board.nix");
    assert!(!e.contains("emulated") && !e.contains("userland ="), "{e}");
}
