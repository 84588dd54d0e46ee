//! Generated Nix expressions: every board renders for both providers, the expressions parse with
//! the real nix-instantiate, the nixpkgs one uses nixpkgs' builders, and instantiating the host
//! one gives one derivation per component with the dependencies a board build needs.

mod support;

use std::fs;

use support::{run, text};

fn expr(board: &str, provider: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(&["board", board, "--provider", provider, "--expr-only", "--out", "out"], dir.path());
    assert!(o.status.success(), "{board}/{provider}: {}", text(&o));
    fs::read_to_string(dir.path().join("out/board.nix")).expect("board.nix")
}

#[test]
fn nixpkgs_expressions_parse_and_use_nixpkgs_builders() {
    for board in ["qemu-riscv64", "qemu-aarch64", "visionfive2", "star64", "milkv-mars", "rpi4"] {
        // --expr-only already ran nix-instantiate --parse on it.
        let e = expr(board, "nixpkgs");
        for want in
            ["buildLinux", "structuredExtraConfig", "kernel.moduleBuildDependencies", "makeInitrdNG", "glibc.static"]
        {
            assert!(e.contains(want), "{board}: nixpkgs expression lacks {want}");
        }
        let cross = if board.contains("aarch64") || board == "rpi4" {
            "pkgsCross.aarch64-multiplatform"
        } else {
            "pkgsCross.riscv64"
        };
        assert!(e.contains(cross), "{board}: lacks {cross}");
    }
    let vf2 = expr("visionfive2", "nixpkgs");
    assert!(vf2.contains("ARCH_STARFIVE = yes;"));
    assert!(vf2.contains("crossPkgs.ubootVisionFive2}/u-boot-spl.bin.normal.out"));
    assert!(vf2.contains("install -D ${kernel}/dtbs/starfive/jh7110-starfive-visionfive-2-v1.3b.dtb"));
    assert!(vf2.contains("type=2E54B353-1271-4842-806F-E436D6AF6985"));
    let rpi = expr("rpi4", "nixpkgs");
    assert!(rpi.contains("raspberrypifw}/share/raspberrypi/boot/start4.elf"));
}

#[test]
fn host_expression_has_one_derivation_per_component_and_their_dependencies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(&["board", "qemu-riscv64", "--expr-only", "--out", "out"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let file = dir.path().join("out/board.nix");
    let e = fs::read_to_string(&file).expect("board.nix");
    assert!(e.contains("strategy = \"cross\""));
    assert!(e.contains("\"CONFIG_VIRTIO_BLK=m\""), "in-tree drivers merge into the kernel options");

    let comps = ["kernel", "module-rvhello", "init", "initramfs", "bootfiles", "firmware", "image"];
    let inst = rvbuild::nix::instantiate::instantiate(&file, &comps.map(String::from)).expect("instantiate");
    assert_eq!(inst.drvs.len(), 7);
    for c in comps {
        assert!(inst.drvs[c].ends_with(".drv"), "{c}");
    }
    let deps = |c: &str| inst.deps[c].clone();
    assert_eq!(deps("kernel"), Vec::<String>::new());
    assert_eq!(deps("module-rvhello"), vec!["kernel"]);
    let mut ir = deps("initramfs");
    ir.sort();
    assert_eq!(ir, vec!["init", "kernel", "module-rvhello"]);
    // qemu-riscv64's disk holds only the boot partition; firmware goes to QEMU directly
    assert_eq!(deps("image"), vec!["bootfiles"]);
    let mut bf = deps("bootfiles");
    bf.sort();
    assert_eq!(bf, vec!["initramfs", "kernel"]);
    // the drv records the toolchain identity and the target-independent kernel name
    let drv = fs::read_to_string(&inst.drvs["kernel"]).expect("drv");
    assert!(drv.contains("riscv64-linux-gnu-gcc"), "toolchain identity missing from the kernel drv");
    assert!(inst.drvs["kernel"].ends_with("-rvbuild-linux-6.12-riscv64.drv"));
}

#[test]
fn jh7110_boards_share_one_kernel() {
    let mut kernels = Vec::new();
    for board in ["visionfive2", "star64", "milkv-mars"] {
        let e = expr(board, "nixpkgs");
        let start = e.find("structuredExtraConfig").expect("config");
        let end = start + e[start..].find("};").expect("end");
        kernels.push(e[start..end].to_string());
    }
    assert_eq!(kernels[0], kernels[1]);
    assert_eq!(kernels[1], kernels[2]);
}

#[test]
fn host_provider_refuses_target_system_strategy_with_the_component_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("profiles")).expect("mkdir");
    fs::write(
        dir.path().join("profiles/emu.yaml"),
        "name: emu\nprovider: nixpkgs\nstrategy:\n  overrides:\n    init: emulated\n",
    )
    .expect("write");
    let o = run(&["board", "qemu-riscv64", "--profile", "emu", "--expr-only", "--out", "out"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let e = fs::read_to_string(dir.path().join("out/board.nix")).expect("board.nix");
    // nixpkgs provider: the init component comes from the target-system package set
    assert!(e.contains("init = targetPkgs.stdenv.mkDerivation"), "{e}");
    assert!(e.contains("targetPkgs = import nixpkgs { system = \"riscv64-linux\"; }"));
}

#[test]
fn rpi4_host_expression_puts_the_gpu_firmware_on_the_boot_partition() {
    let e = expr("rpi4", "host");
    assert!(e.contains(r#"firmwareFiles = [ "start4.elf" "fixup4.dat" "u-boot.bin" ];"#), "{e}");
    assert!(e.contains("dtbsAtRoot = true;"), "{e}");
    assert!(e.contains(r##""config.txt" = "# generated by rvbuild for rpi4\narm_64bit=1"##), "{e}");
    assert!(e.contains("buildDtbs = true;"));
    let q = expr("qemu-riscv64", "host");
    assert!(q.contains("buildDtbs = false;") && !q.contains("firmwareFiles"), "{q}");
}

#[test]
fn every_nix_file_in_the_repository_parses() {
    let mut files = vec![support::repo_root().join("flake.nix")];
    let mut stack = vec![support::repo_root().join("nix")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "nix") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 2);
    for f in files {
        let o = std::process::Command::new("nix-instantiate").arg("--parse").arg(&f).output().expect("nix-instantiate");
        assert!(o.status.success(), "{}: {}", f.display(), String::from_utf8_lossy(&o.stderr));
    }
    let flake = fs::read_to_string(support::repo_root().join("flake.nix")).expect("flake");
    for part in [
        "packages = forAll",
        "devShells = forAll",
        "nixosModules.builder",
        "boot.binfmt.emulatedSystems",
        "extra-platforms",
        "trusted-users",
        "authorizedKeys",
        "boardComponents",
    ] {
        assert!(flake.contains(part), "flake.nix lacks {part}");
    }
}

#[test]
fn boards_of_the_current_directory_get_absolute_paths_in_the_expression() {
    // Run from the repository root, where boards/ and drivers/ are the project's own: the
    // generated expression must still use absolute paths (Nix refuses relative ones).
    let out = tempfile::tempdir().expect("tempdir");
    let o = run(
        &["board", "qemu-riscv64", "--expr-only", "--out", out.path().to_str().unwrap_or_default()],
        &support::repo_root(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let file = out.path().join("board.nix");
    let e = fs::read_to_string(&file).expect("board.nix");
    assert!(!e.contains("path = \"./"), "relative path in the expression:\n{e}");
    let inst = rvbuild::nix::instantiate::instantiate(&file, &["module-rvhello".to_string()]).expect("instantiate");
    assert!(inst.drvs["module-rvhello"].ends_with(".drv"));
}
