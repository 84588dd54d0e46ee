//! The command line: board listing and lookup order, documented exit codes, subcommands whose
//! capability has not landed, and clear errors for missing files and bad input.

mod support;

use std::fs;

use support::{run, text};

#[test]
fn boards_lists_every_board_with_soc_arch_and_flash_method() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(&["boards"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for (board, soc, arch, flash) in [
        ("visionfive2", "StarFive JH7110", "riscv64", "uboot-spi-nor"),
        ("star64", "StarFive JH7110", "riscv64", "uboot-spi-nor"),
        ("milkv-mars", "StarFive JH7110", "riscv64", "uboot-spi-nor"),
        ("rpi4", "Broadcom BCM2711", "aarch64", "sd-card"),
        ("qemu-riscv64", "qemu-virt", "riscv64", "uboot-virtio"),
        ("qemu-aarch64", "qemu-virt", "aarch64", "uboot-virtio"),
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{board} ")))
            .unwrap_or_else(|| panic!("{board} not listed:\n{out}"));
        for want in [soc, arch, flash] {
            assert!(line.contains(want), "{board}: `{line}` lacks {want}");
        }
    }
}

#[test]
fn project_boards_come_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("boards")).expect("mkdir");
    let text_in = support::board_text("qemu-riscv64").replace("soc: qemu-virt", "soc: my-own-soc");
    fs::write(dir.path().join("boards/qemu-riscv64.yaml"), text_in).expect("write");
    let o = run(&["boards", "--json"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let b = v.as_array().expect("array").iter().find(|b| b["name"] == "qemu-riscv64").expect("board");
    assert_eq!(b["soc"], "my-own-soc");
    assert!(b["source"].as_str().unwrap_or_default().contains("boards/qemu-riscv64.yaml"));
    // the shipped ones are still there
    assert!(v.as_array().expect("array").iter().any(|b| b["name"] == "visionfive2"));
}

#[test]
fn boards_check_passes_on_shipped_files_and_fails_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(&["boards", "--check"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("9 board and profile files OK"));

    fs::create_dir_all(dir.path().join("boards")).expect("mkdir");
    let bad = support::board_text("qemu-aarch64")
        .replace("name: qemu-aarch64", "name: broken")
        .replace("abi: lp64", "abi: ilp32");
    fs::write(dir.path().join("boards/broken.yaml"), bad).expect("write");
    let o = run(&["boards", "--check"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("boards/broken.yaml:9:6: ABI `ilp32` is not valid for aarch64"), "{t}");
}

#[test]
fn unknown_board_names_the_known_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(&["board", "visionfive3"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("no board named `visionfive3`") && t.contains("visionfive2"), "{t}");
}

#[test]
fn unsafe_board_name_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(&["board", "-x;rm"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn missing_firmware_fails_before_building_with_exit_8() {
    // As on a machine where the setup script could not fetch u-boot-starfive: the host provider
    // says which file is missing and how to get it, before any kernel build starts.
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = tempfile::tempdir().expect("tempdir");
    let start = std::time::Instant::now();
    let o = support::rvbuild()
        .args(["board", "visionfive2", "--provider", "host", "--out", "out"])
        .env("RVBUILD_FIRMWARE_ROOTS", empty.path())
        .current_dir(dir.path())
        .output()
        .expect("run");
    let t = text(&o);
    if std::path::Path::new("/usr/lib/u-boot/starfive_visionfive2/u-boot-spl.bin.normal.out").exists() {
        return; // installed system-wide: nothing is missing on this machine
    }
    assert_eq!(o.status.code(), Some(8), "{t}");
    assert!(t.contains("firmware file `u-boot-spl.bin.normal.out` is missing"), "{t}");
    assert!(t.contains("u-boot-starfive"), "{t}");
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
    assert!(!dir.path().join("out/manifest.json").exists());
}

#[test]
fn missing_driver_source_is_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("boards")).expect("mkdir");
    let b = support::board_text("qemu-riscv64")
        .replace("name: qemu-riscv64", "name: mine")
        .replace("source: drivers/rvhello", "source: drivers/nothere");
    fs::write(dir.path().join("boards/mine.yaml"), b).expect("write");
    let o = run(&["board", "mine", "--expr-only"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("drivers/nothere does not exist"), "{}", text(&o));
}

#[test]
fn help_documents_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(&["--help"], dir.path());
    assert!(o.status.success());
    let t = String::from_utf8_lossy(&o.stdout);
    for line in
        ["2    usage or configuration error", "3    a build failed", "7    the boot test failed", "130  interrupted"]
    {
        assert!(t.contains(line), "{line} not in --help");
    }
    for cmd in ["board", "boards", "plan", "build", "builders", "verify", "flash", "serial", "qemu", "doctor"] {
        assert!(t.contains(&format!("  {cmd} ")), "{cmd} not in --help");
    }
}

#[test]
fn bad_arguments_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(&["board"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["frobnicate"], dir.path());
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn every_capability_has_landed_none_exits_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in
        [vec!["plan", "qemu-riscv64"], vec!["build", "x.nix"], vec!["builders"], vec!["builders", "probe", "--cached"]]
    {
        let o = run(&args, dir.path());
        assert_ne!(o.status.code(), Some(9), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("not implemented yet"), "{args:?}: {}", text(&o));
    }
}

#[test]
fn doctor_reports_the_setup_and_fails_with_exit_8_when_tools_are_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(&["doctor", "--json"], dir.path());
    assert!(o.status.success(), "on a set-up machine doctor passes: {}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let checks = v.as_array().expect("array");
    let nix = checks.iter().find(|c| c["name"] == "nix-store").expect("nix check");
    assert_eq!(nix["status"], "ok");
    assert!(checks.iter().any(|c| c["name"] == "qemu-riscv64" && c["area"] == "binfmt"));

    let o = support::rvbuild().args(["doctor"]).env("PATH", dir.path()).current_dir(dir.path()).output().expect("run");
    assert_eq!(o.status.code(), Some(8), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("FAIL nix") && t.contains("fix: install Nix"), "{t}");
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (shell, needle) in [("bash", "complete -F"), ("zsh", "#compdef rvbuild"), ("fish", "complete -c rvbuild")] {
        let o = run(&["completions", shell], dir.path());
        assert!(o.status.success(), "{shell}: {}", text(&o));
        let t = String::from_utf8_lossy(&o.stdout);
        assert!(t.contains(needle), "{shell}: {needle} missing");
        for sub in ["board", "flash", "verify", "qemu"] {
            assert!(t.contains(sub), "{shell}: subcommand {sub} missing");
        }
    }
    let o = run(&["completions", "man"], dir.path());
    assert!(o.status.success());
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(t.starts_with(".ie") || t.contains(".TH rvbuild"), "not roff: {}", &t[..t.len().min(200)]);
    assert!(t.contains("board") && t.contains("Exit codes"), "man page lacks subcommands or exit codes");
}

#[test]
fn doctor_checks_configured_builders_and_exits_4_when_one_is_unreachable() {
    // A Nix configuration naming a builder on a loopback port nothing listens on, with its host
    // key unknown: doctor warns about the key, fails reachability, and exits 4.
    let dir = tempfile::tempdir().expect("tempdir");
    let nix = dir.path().join("nix");
    fs::create_dir_all(&nix).expect("mkdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    // the listener is dropped here: the port is closed again
    fs::write(nix.join("machines"), format!("ssh://builder@127.0.0.1:{port} riscv64-linux - 2 1 big-parallel\n"))
        .expect("write");
    fs::write(nix.join("nix.conf"), "sandbox = false\nsubstituters =\n").expect("write");
    let home = dir.path().join("home");
    fs::create_dir_all(home.join(".ssh")).expect("mkdir");
    let o = support::rvbuild()
        .args(["doctor", "--json"])
        .env("RVBUILD_NIX_CONF_DIR", &nix)
        .env("HOME", &home)
        .current_dir(dir.path())
        .output()
        .expect("run");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let checks = v.as_array().expect("array");
    let find = |suffix: &str| {
        checks.iter().find(|c| c["area"] == "builders" && c["name"].as_str().unwrap_or("").ends_with(suffix)).cloned()
    };
    let key = find("host key").expect("host key check");
    assert_eq!(key["status"], "warn", "{key}");
    assert!(key["fix"].as_str().unwrap_or("").contains("ssh-keyscan"), "{key}");
    let reach = find("reachable").expect("reachability check");
    assert_eq!(reach["status"], "fail", "{reach}");
    assert!(reach["detail"].as_str().unwrap_or("").contains("unreachable"), "{reach}");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_with_exit_0() {
    // `rvbuild boards | head -1` once head has gone: stdout is a pipe nobody reads.
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [&["boards"][..], &["boards", "--json"], &["doctor", "--help"]] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_rvbuild"))
            .args(args)
            .current_dir(dir.path())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("rvbuild");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {stderr}");
    }
}
