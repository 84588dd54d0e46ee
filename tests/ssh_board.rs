//! A board built over SSH with its userland as a target-system derivation: qemu-riscv64 with
//! `--strategy userland=emulated`, on the emulating loopback builder only (x86_64 with
//! riscv64 through binfmt qemu-user), then booted in QEMU to its marker.

mod support;

use std::fs;

use serde_json::Value;
use support::hosts::{self, HostSpec};
use support::{built, rvbuild, text};

#[test]
fn qemu_ssh_board_with_emulated_userland_builds_on_the_emulating_host_and_boots() {
    // The shared build puts the kernel in the local store; only the userland side rebuilds.
    built("qemu-riscv64");
    let fleet = hosts::start(&[HostSpec {
        extra_platforms: &["riscv64-linux", "aarch64-linux"],
        ..HostSpec::new("emu", "x86_64-linux")
    }]);
    let emu = fleet.host("emu");
    let dir = tempfile::tempdir().expect("tempdir");
    // A board of its own with a marker of its own, so init is a new derivation nobody built yet.
    let marker = format!("RVBUILD-SSH-{}", hosts::nonce().replace('-', ""));
    let board = support::board_text("qemu-riscv64").replace("name: qemu-riscv64", "name: qemu-riscv64-ssh");
    fs::create_dir_all(dir.path().join("boards")).expect("mkdir");
    fs::write(dir.path().join("boards/qemu-riscv64-ssh.yaml"), format!("{board}\nmarker: {marker}\n")).expect("board");
    let out = dir.path().join("out");
    let out_s = out.to_string_lossy().into_owned();
    let conf = dir.path().join("nixconf");
    fs::create_dir_all(&conf).expect("mkdir");
    fs::write(conf.join("nix.conf"), "").expect("nix.conf");
    let line = emu.machines_line(&fleet);
    let home = dir.path().join("home");
    fs::create_dir_all(&home).expect("mkdir");
    let board_cmd = || {
        let mut c = rvbuild();
        c.args(["--json", "board", "qemu-riscv64-ssh", "--profile", "ci", "--strategy", "userland=emulated"])
            .args(["--out", &out_s, "--local-jobs", "0", "--builders", &line])
            .env("RVBUILD_NIX_CONF_DIR", &conf)
            .env("HOME", &home)
            .env("CI", "true")
            .current_dir(dir.path());
        c
    };
    // Nothing says emu has the riscv64 userland yet: refused before anything builds.
    let o = board_cmd().output().expect("run rvbuild");
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("rvbuild builders probe"), "{}", text(&o));
    // The probe finds it (same path, same stamp), and the build goes through.
    let o = rvbuild()
        .args(["builders", "probe", "--no-benchmark", "--local-jobs", "0", "--builders", &line])
        .env("RVBUILD_NIX_CONF_DIR", &conf)
        .env("HOME", &home)
        .current_dir(dir.path())
        .output()
        .expect("run rvbuild builders probe");
    assert!(o.status.success(), "{}", text(&o));
    let o = board_cmd().output().expect("run rvbuild");
    assert!(o.status.success(), "{}", text(&o));
    let manifest: Value =
        serde_json::from_str(&fs::read_to_string(out.join("manifest.json")).expect("manifest")).expect("json");
    let init = &manifest["components"]["init"];
    let emu_name = format!("{}:{}", emu.addr, emu.port);
    assert_eq!(init["host"], emu_name.as_str(), "{init}");
    assert_eq!(init["strategy"], "emulated", "{init}");
    assert_eq!(init["cached"], false, "{init}");
    let init_out = init["outputs"][0].as_str().expect("init output");
    assert!(emu.store_has(init_out), "init was built in emu's store");
    // The derivation really is a riscv64-linux one.
    let drv = init["drv"].as_str().expect("drv");
    let drv_text = fs::read_to_string(drv).expect("read drv");
    assert!(drv_text.contains("\"riscv64-linux\""), "{drv_text}");
    assert_eq!(manifest["components"]["kernel"]["cached"], true, "the kernel is not rebuilt");

    let o = rvbuild()
        .args(["qemu", "qemu-riscv64-ssh", "--no-build", "--out", &out_s])
        .current_dir(dir.path())
        .output()
        .expect("run rvbuild qemu");
    assert!(o.status.success(), "boot failed:\n{}", text(&o));
    let log = fs::read_to_string(out.join("logs/boot.log")).expect("boot log");
    assert!(log.lines().any(|l| l.trim() == marker), "marker {marker} missing:\n{log}");
}
