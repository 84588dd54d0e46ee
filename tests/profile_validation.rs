//! Board and profile validation: the shipped files are valid, and each kind of broken file is
//! rejected with file:line:col, what was expected, and a help line.

use rvbuild::profile::{check_board_text, check_profile_text};

mod support;

/// Replaces the first `from` in the board text with `to`; returns the text and the 1-based line
/// on which `to` starts.
fn mutate(base: &str, from: &str, to: &str) -> (String, usize) {
    let at = base.find(from).unwrap_or_else(|| panic!("`{from}` not in base"));
    let line = base[..at].matches('\n').count() + 1;
    (format!("{}{}{}", &base[..at], to, &base[at + from.len()..]), line)
}

fn expect_one(base_name: &str, from: &str, to: &str, needles: &[&str]) {
    expect_one_at(base_name, from, to, "", needles)
}

fn board_errors(stem: &str, text: &str) -> Vec<String> {
    match check_board_text("boards/t.yaml", stem, text) {
        Ok(_) => vec![],
        Err(errs) => errs.iter().map(|e| format!("{e}\nhelp: {}", e.help.clone().unwrap_or_default())).collect(),
    }
}

/// Asserts that exactly one problem is reported, on the line where the mutation put `at`
/// (the first line of `to` when `at` is empty), containing every `needles` part.
fn expect_one_at(base_name: &str, from: &str, to: &str, at: &str, needles: &[&str]) {
    let base = support::board_text(base_name);
    let (text, mut line) = mutate(&base, from, to);
    if !at.is_empty() {
        let start = text.find(to).unwrap_or(0);
        let pos = start + text[start..].find(at).unwrap_or_else(|| panic!("`{at}` not in mutated text"));
        line = text[..pos].matches('\n').count() + 1;
    }
    let errs = board_errors(base_name, &text);
    assert_eq!(errs.len(), 1, "{from} -> {to}: expected one problem, got {errs:#?}");
    let e = &errs[0];
    assert!(
        e.starts_with(&format!("boards/t.yaml:{line}:")),
        "{from} -> {to}: wrong location in `{e}` (want line {line})"
    );
    for n in needles {
        assert!(e.contains(n), "{from} -> {to}: `{e}` lacks `{n}`");
    }
}

#[test]
fn shipped_boards_and_profiles_are_valid() {
    for b in ["qemu-riscv64", "qemu-aarch64", "visionfive2", "star64", "milkv-mars", "rpi4"] {
        let errs = board_errors(b, &support::board_text(b));
        assert!(errs.is_empty(), "{b}: {errs:#?}");
    }
    for p in ["dev", "ci", "release"] {
        let path = support::repo_root().join("profiles").join(format!("{p}.yaml"));
        let text = std::fs::read_to_string(&path).expect("profile");
        assert!(check_profile_text("p", p, &text).is_ok(), "{p}");
    }
}

#[test]
fn unknown_key() {
    expect_one(
        "qemu-riscv64",
        "soc: qemu-virt",
        "colour: red\nsoc: qemu-virt",
        &["unknown field `colour`", "expected one of", "help: remove the key"],
    );
}

#[test]
fn nested_unknown_key() {
    expect_one("qemu-riscv64", "  defconfig: tinyconfig", "  defconfg: tinyconfig", &["unknown field `defconfg`"]);
}

#[test]
fn wrong_type() {
    expect_one("qemu-riscv64", "abi: lp64d", "abi: [lp64d]", &["expected"]);
}

#[test]
fn missing_field() {
    let base = support::board_text("qemu-riscv64");
    let text = base.replace("soc: qemu-virt\n", "");
    let errs = board_errors("qemu-riscv64", &text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].contains("missing field `soc`"), "{}", errs[0]);
    assert!(errs[0].starts_with("boards/t.yaml:"), "{}", errs[0]);
}

#[test]
fn bad_address() {
    expect_one(
        "qemu-riscv64",
        "kernel_addr_r: 0x84000000",
        "kernel_addr_r: 0x84zz",
        &["0x84zz", "expected an address"],
    );
}

#[test]
fn negative_size() {
    expect_one("qemu-riscv64", "  size: 64MiB", "  size: -5", &["expected a size"]);
}

#[test]
fn abi_not_valid_for_arch() {
    expect_one(
        "qemu-aarch64",
        "abi: lp64",
        "abi: lp64d",
        &["ABI `lp64d` is not valid for aarch64", "expected one of: lp64"],
    );
}

#[test]
fn arch_not_a_board_arch() {
    expect_one(
        "qemu-riscv64",
        "arch: riscv64",
        "arch: x86_64",
        &["x86_64 is not a board architecture: riscv64 or aarch64"],
    );
    expect_one("qemu-riscv64", "arch: riscv64", "arch: mips", &["unknown variant `mips`"]);
}

#[test]
fn unknown_partition_fs_content_and_qemu_boot() {
    expect_one(
        "qemu-riscv64",
        "      fs: ext4",
        "      fs: btrfs",
        &["unknown variant `btrfs`", "ext4", "vfat", "raw"],
    );
    expect_one(
        "qemu-riscv64",
        "      content: bootfiles",
        "      content: kernel",
        &["unknown partition content `kernel`", "bootfiles, firmware:<file> or empty"],
    );
    expect_one(
        "star64",
        "      content: firmware:u-boot.itb",
        "      content: 'firmware:'",
        &["unknown partition content `firmware:`"],
    );
    expect_one_at(
        "qemu-riscv64",
        "  system: riscv64",
        "  system: riscv64\n  boot: pxe",
        "boot: pxe",
        &["unknown variant `pxe`", "firmware", "direct"],
    );
}

#[test]
fn isa_does_not_match_arch() {
    expect_one("qemu-riscv64", "isa: rv64gc", "isa: armv8-a", &["does not match arch riscv64", "starts with rv64"]);
}

#[test]
fn lp64d_needs_d_extension() {
    expect_one("qemu-riscv64", "isa: rv64gc", "isa: rv64imac", &["needs the D extension"]);
}

#[test]
fn overlapping_flash_regions() {
    expect_one(
        "visionfive2",
        "      offset: 0x100000",
        "      offset: 0x80000",
        &["flash region `fit`", "overlaps `spl`"],
    );
}

#[test]
fn flash_region_past_device_end() {
    expect_one(
        "visionfive2",
        "      size: 0xf00000",
        "      size: 0xf00001",
        &["runs past the end of the 16MiB device"],
    );
}

#[test]
fn overlapping_partitions() {
    expect_one(
        "visionfive2",
        "      start: 0x400000 ",
        "      start: 0x300000 ",
        &["partition `uboot`", "overlaps `spl`"],
    );
}

#[test]
fn partition_past_image_end() {
    expect_one("qemu-riscv64", "      size: 63MiB", "      size: 64MiB", &["ends past the end of the 64MiB image"]);
}

#[test]
fn driver_for_a_kernel_the_board_does_not_build() {
    expect_one_at(
        "qemu-riscv64",
        "      source: drivers/rvhello",
        "      source: drivers/rvhello\n      kernel: vendor-5.15",
        "kernel: vendor",
        &["built for kernel `vendor-5.15`", "builds kernel `main`"],
    );
}

#[test]
fn modules_without_module_support() {
    expect_one(
        "qemu-riscv64",
        "    MODULES: y\n",
        "    MODULES: n\n",
        &["does not enable MODULES", "add `MODULES: y`"],
    );
}

#[test]
fn bad_kconfig_value() {
    expect_one("qemu-riscv64", "    FPU: y ", "    FPU: yes ", &["`yes` is not a kernel config value for FPU"]);
}

#[test]
fn config_prefix() {
    expect_one("qemu-riscv64", "    PRINTK: y", "    CONFIG_PRINTK: y", &["without the CONFIG_ prefix"]);
}

#[test]
fn firmware_for_qemu_not_in_board() {
    expect_one(
        "qemu-riscv64",
        "  bios: fw_jump.bin",
        "  bios: fw_dynamic.bin",
        &["qemu firmware `fw_dynamic.bin` is not a firmware file"],
    );
}

#[test]
fn flash_file_not_produced() {
    expect_one(
        "visionfive2",
        "      file: u-boot.itb",
        "      file: u-boot.img",
        &["writes `u-boot.img`, which the board does not produce"],
    );
}

#[test]
fn gpt_type_not_guid() {
    expect_one(
        "visionfive2",
        "      type: 2E54B353-1271-4842-806F-E436D6AF6985",
        "      type: 83",
        &["is not a GPT partition type GUID"],
    );
}

#[test]
fn two_default_device_trees() {
    expect_one_at(
        "visionfive2",
        "  - name: starfive/jh7110-starfive-visionfive-2-v1.2a.dtb\n    compatible: starfive,visionfive-2-v1.2a",
        "  - name: starfive/jh7110-starfive-visionfive-2-v1.2a.dtb\n    compatible: starfive,visionfive-2-v1.2a\n    default: true",
        "name: starfive",
        &["more than one device tree"],
    );
}

#[test]
fn name_differs_from_file() {
    expect_one("qemu-riscv64", "name: qemu-riscv64", "name: qemu-rv", &["differs from its file name"]);
}

#[test]
fn opensbi_on_aarch64() {
    expect_one_at(
        "qemu-aarch64",
        "firmware:\n",
        "firmware:\n  opensbi:\n    platform: generic\n    variant: fw_jump\n    file:\n      name: fw_jump.bin\n      path: /usr/lib/fw_jump.bin\n",
        "name: fw_jump",
        &["OpenSBI is RISC-V firmware"],
    );
}

#[test]
fn malformed_yaml() {
    let base = support::board_text("qemu-riscv64");
    let (text, _) = mutate(&base, "soc: qemu-virt", "soc: [qemu-virt");
    let errs = board_errors("qemu-riscv64", &text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with("boards/t.yaml:"), "{}", errs[0]);
}

#[test]
fn several_problems_are_all_reported() {
    let base = support::board_text("qemu-riscv64");
    let text = base
        .replace("abi: lp64d", "abi: ilp32")
        .replace("      size: 63MiB", "      size: 65MiB")
        .replace("    FPU: y ", "    FPU: maybe ");
    let errs = board_errors("qemu-riscv64", &text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn profile_problems() {
    let cases = [
        ("name: ci\nstrategy:\n  overrides:\n    kernel: native\n", 4, "only as cross, not native"),
        ("name: ci\nstrategy:\n  overrides:\n    image: emulated\n", 4, "`image` is arch-neutral"),
        ("name: ci\nstrategy:\n  overrides:\n    kernal: cross\n", 4, "unknown component `kernal`"),
        ("name: ci\nbuilders:\n  local-jobs: many\n", 3, "`auto` or a number"),
        ("name: ci\nprovider: gentoo\n", 2, "gentoo"),
        ("name: other\n", 1, "differs from its file name"),
        ("name: ci\noverlays:\n  kernel-config:\n    DEBUG_KERNEL: perhaps\n", 4, "not a kernel config value"),
    ];
    for (text, line, needle) in cases {
        let errs = match check_profile_text("profiles/ci.yaml", "ci", text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e,
        };
        let e = errs[0].to_string();
        assert!(e.starts_with(&format!("profiles/ci.yaml:{line}:")), "{text}: {e}");
        assert!(e.contains(needle), "{text}: {e}");
    }
}
