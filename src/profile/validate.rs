//! Semantic checks of board and build profiles after parsing: values that parse but cannot work
//! (ABI not valid for the arch, overlapping regions, references to things the board lacks).
//! Every rule reports all its findings, each at the YAML location of the offending value.

use std::collections::{BTreeMap, BTreeSet};

use super::board::{
    Arch, Board, DeviceTree, FirmwareFile, Flash, FlashMethod, FlashRegion, Image, Kernel, OutOfTreeDriver,
    PartContent, PartFs, Partition, Qemu, Sp, TableKind,
};
use super::build::BuildProfile;
use super::diag::{ProfileError, SourceText};
use super::units::{Addr, Size};

const SECTOR: u64 = 512;

fn is_symbol(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// A safe file or component name: it reaches shell scripts and Nix strings.
pub fn is_safe_name(s: &str) -> bool {
    !s.is_empty() && !s.starts_with(['.', '-']) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

/// A relative path inside the project: safe names separated by '/', no `..`.
pub fn is_safe_rel_path(s: &str) -> bool {
    !s.starts_with('/') && s.split('/').all(is_safe_name)
}

fn is_safe_abs_path(s: &str) -> bool {
    s.starts_with('/') && s[1..].split('/').all(is_safe_name)
}

fn is_kconfig_value(v: &str) -> bool {
    matches!(v, "y" | "m" | "n")
        || v.parse::<i64>().is_ok()
        || (v.starts_with("0x") && u64::from_str_radix(&v[2..], 16).is_ok())
        || (v.len() >= 2 && v.starts_with('"') && v.ends_with('"') && !v[1..v.len() - 1].contains(['"', '\\', '\n']))
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

struct Checker<'a> {
    src: &'a SourceText,
    errors: Vec<ProfileError>,
}

impl Checker<'_> {
    fn err<T>(&mut self, at: &Sp<T>, msg: impl Into<String>, help: impl Into<String>) {
        let e = self.src.error(at, msg, help);
        self.errors.push(e);
    }

    fn kconfig_map(&mut self, map: &BTreeMap<String, Sp<String>>, what: &str) {
        for (sym, val) in map {
            if sym.starts_with("CONFIG_") {
                self.err(val, format!("{what}: write `{}` without the CONFIG_ prefix", sym), "e.g. `SERIAL_8250: y`");
            } else if !is_symbol(sym) {
                self.err(
                    val,
                    format!("{what}: `{sym}` is not a kernel config symbol"),
                    "symbols are upper case letters, digits and _",
                );
            }
            if !is_kconfig_value(&val.value) {
                self.err(
                    val,
                    format!("{what}: `{}` is not a kernel config value for {sym}", val.value),
                    "expected y, m, n, a number, 0x-hex, or a double-quoted string (quote it in YAML: '\"text\"')",
                );
            }
        }
    }

    fn regions_overlap(&mut self, what: &str, regions: &[(&Sp<String>, &Sp<Addr>, u64, u64)]) {
        for (i, a) in regions.iter().enumerate() {
            for b in &regions[i + 1..] {
                let (a, b) = ((a.0, a.2, a.3, a.1), (b.0, b.2, b.3, b.1));
                if a.1 < b.1 + b.2 && b.1 < a.1 + a.2 {
                    self.err(
                        b.3,
                        format!(
                            "{what} `{}` ({:#x}..{:#x}) overlaps `{}` ({:#x}..{:#x})",
                            b.0.value,
                            b.1,
                            b.1 + b.2,
                            a.0.value,
                            a.1,
                            a.1 + a.2
                        ),
                        "move the start or shrink one of them",
                    );
                }
            }
        }
    }
}

/// Checks a parsed board. `stem` is the file name without `.yaml`.
pub fn board(b: &Board, stem: &str, src: &SourceText) -> Vec<ProfileError> {
    let mut c = Checker { src, errors: Vec::new() };
    check_name(&mut c, b, stem);
    if !check_arch_abi_isa(&mut c, b) {
        // The ABI, ISA, firmware and QEMU rules all assume a board arch.
        return c.errors;
    }
    check_kernel(&mut c, &b.kernel);
    check_drivers(&mut c, b);
    check_device_trees(&mut c, &b.device_trees);
    let fw_names = check_firmware(&mut c, b);
    check_boot_files(&mut c, b, &fw_names);
    check_image(&mut c, &b.image, &fw_names);
    check_flash(&mut c, &b.flash, &fw_names);
    check_load_addresses(&mut c, &b.firmware.load_addresses);
    if let Some(q) = &b.qemu {
        check_qemu(&mut c, q, b.arch.value, &fw_names);
    }
    check_marker(&mut c, b);
    c.errors
}

/// The board's name matches its file and is safe to use as a file name.
fn check_name(c: &mut Checker, b: &Board, stem: &str) {
    if b.name.value != stem {
        c.err(
            &b.name,
            format!("board name `{}` differs from its file name `{stem}.yaml`", b.name.value),
            "rename the file or the board",
        );
    }
    if !is_safe_name(&b.name.value) {
        c.err(&b.name, format!("`{}` is not a valid board name", b.name.value), "use letters, digits, '-', '_', '.'");
    }
}

/// The arch is a board arch, ABI and ISA fit it, and an lp64d ABI has the D extension. False
/// when the arch is not a board arch (nothing else can be checked then).
fn check_arch_abi_isa(c: &mut Checker, b: &Board) -> bool {
    let arch = b.arch.value;
    if !arch.is_board() {
        let board: Vec<_> = Arch::BOARD.iter().map(|a| a.as_str()).collect();
        c.err(
            &b.arch,
            format!("{arch} is not a board architecture: {}", board.join(" or ")),
            "boards are riscv64 or aarch64; `rvbuild verify --arch` checks files of other architectures",
        );
        return false;
    }
    if !arch.valid_abis().contains(&b.abi.value.as_str()) {
        c.err(
            &b.abi,
            format!("ABI `{}` is not valid for {}", b.abi.value, arch.as_str()),
            format!("expected one of: {}", arch.valid_abis().join(", ")),
        );
    }
    let isa_ok = match arch {
        Arch::Riscv64 => b.isa.value.starts_with("rv64"),
        Arch::Aarch64 => b.isa.value.starts_with("armv8") || b.isa.value.starts_with("armv9"),
        Arch::Riscv32 | Arch::Arm | Arch::X86_64 | Arch::I386 => true, // returned above
    };
    if !isa_ok {
        c.err(
            &b.isa,
            format!("ISA `{}` does not match arch {}", b.isa.value, arch.as_str()),
            match arch {
                Arch::Riscv64 => "a riscv64 ISA string starts with rv64, e.g. rv64gc or rv64imafdc_zicsr",
                Arch::Aarch64 => "an aarch64 ISA starts with armv8 or armv9, e.g. armv8-a",
                Arch::Riscv32 | Arch::Arm | Arch::X86_64 | Arch::I386 => "",
            },
        );
    }
    if isa_ok
        && arch == Arch::Riscv64
        && b.abi.value == "lp64d"
        && !(b.isa.value.contains('d') || b.isa.value.starts_with("rv64g"))
    {
        c.err(
            &b.isa,
            format!("ABI lp64d needs the D extension, but ISA `{}` has none", b.isa.value),
            "use rv64gc (which includes D) or ABI lp64",
        );
    }
    true
}

/// Kernel base configuration, config symbols, image format, source, fragments and patches.
fn check_kernel(c: &mut Checker, k: &Kernel) {
    let dc = k.defconfig.value.as_str();
    if !(matches!(dc, "tinyconfig" | "allnoconfig" | "defconfig") || (dc.ends_with("_defconfig") && is_safe_name(dc))) {
        c.err(
            &k.defconfig,
            format!("`{dc}` is not a kernel base configuration"),
            "use tinyconfig, allnoconfig, defconfig or a NAME_defconfig",
        );
    }
    c.kconfig_map(&k.config, "kernel.config");
    if !matches!(k.image.value.as_str(), "Image" | "Image.gz") {
        c.err(&k.image, format!("kernel image `{}` is not supported", k.image.value), "use Image or Image.gz");
    }
    if k.source.tarball.is_none() && k.source.nixpkgs.is_none() && k.source.git.is_none() {
        c.err(&k.defconfig, "kernel.source names no source", "set tarball (host provider), nixpkgs or git");
    }
    if let Some(t) = &k.source.tarball
        && !is_safe_abs_path(t)
    {
        c.err(
            &k.defconfig,
            format!("kernel.source.tarball `{t}` must be an absolute path"),
            "e.g. /usr/src/linux-source-6.12.tar.xz",
        );
    }
    for f in k.fragments.iter().chain(&k.patches) {
        if !is_safe_rel_path(&f.value) {
            c.err(
                f,
                format!("`{}` must be a relative path inside the project", f.value),
                "no leading /, no .., only letters, digits, . _ + -",
            );
        }
    }
}

/// In-tree driver symbols, out-of-tree drivers, and module support when modules are built.
fn check_drivers(c: &mut Checker, b: &Board) {
    c.kconfig_map(&b.drivers.in_tree, "drivers.in-tree");
    for (sym, v) in &b.drivers.in_tree {
        if !matches!(v.value.as_str(), "y" | "m") {
            c.err(v, format!("in-tree driver {sym} must be y (built in) or m (module), not `{}`", v.value), "");
        }
    }
    let mut seen = BTreeSet::new();
    for d in &b.drivers.out_of_tree {
        check_out_of_tree_driver(c, d, &b.kernel.name, &mut seen);
    }
    check_modules_enabled(c, b);
}

/// One out-of-tree driver: its name (valid, listed once), source path and kernel.
fn check_out_of_tree_driver(c: &mut Checker, d: &OutOfTreeDriver, kernel: &str, seen: &mut BTreeSet<String>) {
    if !is_safe_name(&d.name.value) {
        c.err(&d.name, format!("`{}` is not a valid driver name", d.name.value), "use letters, digits, '-', '_'");
    }
    if !seen.insert(d.name.value.clone()) {
        c.err(&d.name, format!("driver `{}` is listed twice", d.name.value), "");
    }
    if !is_safe_rel_path(&d.source.value) {
        c.err(
            &d.source,
            format!("driver source `{}` must be a relative path inside the project", d.source.value),
            "e.g. drivers/rvhello",
        );
    }
    if d.kernel.value != kernel {
        c.err(
            &d.kernel,
            format!(
                "driver `{}` is built for kernel `{}`, but this board builds kernel `{kernel}`",
                d.name.value, d.kernel.value
            ),
            format!("set `kernel: {kernel}` or remove the driver"),
        );
    }
}

/// A board that builds modules (out-of-tree or `m` in-tree drivers) enables MODULES.
fn check_modules_enabled(c: &mut Checker, b: &Board) {
    let k = &b.kernel;
    let modules_on = k.config.get("MODULES").map(|v| v.value == "y").unwrap_or(false);
    let wants_modules = !b.drivers.out_of_tree.is_empty() || b.drivers.in_tree.values().any(|v| v.value == "m");
    if wants_modules && !modules_on {
        let at = b.drivers.out_of_tree.first().map(|d| &d.name);
        let msg = "the board builds kernel modules, but the kernel config does not enable MODULES";
        match k.config.get("MODULES").or(at) {
            Some(at) => c.err(at, msg, "add `MODULES: y` to kernel.config"),
            None => c.err(&k.defconfig, msg, "add `MODULES: y` to kernel.config"),
        }
    }
}

/// Device tree paths are relative .dtb paths, and at most one is the default.
fn check_device_trees(c: &mut Checker, device_trees: &[DeviceTree]) {
    let mut defaults = 0;
    for dt in device_trees {
        if !dt.name.value.ends_with(".dtb") || !is_safe_rel_path(&dt.name.value) {
            c.err(
                &dt.name,
                format!("device tree `{}` must be a relative .dtb path below arch/<arch>/boot/dts", dt.name.value),
                "e.g. starfive/jh7110-starfive-visionfive-2-v1.3b.dtb",
            );
        }
        if dt.default {
            defaults += 1;
            if defaults > 1 {
                c.err(&dt.name, "more than one device tree is marked `default: true`", "mark exactly one");
            }
        }
    }
}

/// Every firmware file (OpenSBI, U-Boot, plain files): OpenSBI only on RISC-V, names valid and
/// unique, a usable source. Returns the names, which later sections refer to.
fn check_firmware(c: &mut Checker, b: &Board) -> BTreeSet<String> {
    let mut fw_names: BTreeSet<String> = BTreeSet::new();
    let mut all_fw = Vec::new();
    if let Some(o) = &b.firmware.opensbi {
        all_fw.push(&o.file);
        if b.arch.value != Arch::Riscv64 {
            c.err(&o.file.name, "OpenSBI is RISC-V firmware, but this board is aarch64", "remove firmware.opensbi");
        }
    }
    if let Some(u) = &b.firmware.u_boot {
        all_fw.extend(u.files.iter());
    }
    all_fw.extend(b.firmware.files.iter());
    for f in all_fw {
        check_firmware_file(c, f, &mut fw_names);
    }
    fw_names
}

fn check_firmware_file(c: &mut Checker, f: &FirmwareFile, fw_names: &mut BTreeSet<String>) {
    if !is_safe_name(&f.name.value) {
        c.err(
            &f.name,
            format!("firmware file name `{}` is not valid", f.name.value),
            "a plain file name, e.g. u-boot.bin",
        );
    }
    if !fw_names.insert(f.name.value.clone()) {
        c.err(&f.name, format!("firmware file `{}` is listed twice", f.name.value), "");
    }
    if let Some(p) = &f.path
        && !is_safe_abs_path(&p.value)
    {
        c.err(p, format!("firmware path `{}` must be an absolute path", p.value), "");
    }
    if f.path.is_none() && f.nixpkgs.is_none() && f.how_to_get.is_none() {
        c.err(
            &f.name,
            format!("firmware file `{}` has no source", f.name.value),
            "set path (with package), nixpkgs, or how-to-get",
        );
    }
}

/// Boot partition extras: firmware files the firmware section lists, plain file names.
fn check_boot_files(c: &mut Checker, b: &Board, fw_names: &BTreeSet<String>) {
    for f in &b.boot_files.firmware {
        if !fw_names.contains(&f.value) {
            c.err(
                f,
                format!("boot-files names firmware file `{}`, which the firmware section does not list", f.value),
                "add it to firmware or fix the name",
            );
        }
    }
    for (name, v) in &b.boot_files.files {
        if !is_safe_name(name) {
            c.err(
                v,
                format!("`{name}` is not a valid file name for the boot partition"),
                "a plain file name such as config.txt",
            );
        }
    }
}

/// Image size, partition table capacity, each partition, overlaps, and a boot files partition.
fn check_image(c: &mut Checker, img: &Image, fw_names: &BTreeSet<String>) {
    let img_size = img.size.value.0;
    if img_size == 0 || !img_size.is_multiple_of(SECTOR) {
        c.err(&img.size, format!("image size {} is not a positive multiple of 512 bytes", img.size.value), "");
    }
    if img.table == TableKind::Dos && img.partitions.len() > 4 {
        c.err(&img.size, "an MBR (dos) table holds at most 4 primary partitions", "use `table: gpt`");
    }
    let mut parts = Vec::new();
    for p in &img.partitions {
        check_partition_bounds(c, img, p);
        check_partition_type(c, img.table, p);
        check_partition_content(c, p, fw_names);
        parts.push((&p.name, &p.start, p.start.value.0, p.size.value.0));
    }
    c.regions_overlap("partition", &parts);
    if !img.partitions.iter().any(|p| p.content.value == PartContent::Bootfiles) {
        c.err(&img.size, "no partition holds the boot files", "add a partition with `content: bootfiles`");
    }
}

/// A partition is sector-aligned, after the partition table and inside the image (before a
/// GPT's backup table).
fn check_partition_bounds(c: &mut Checker, img: &Image, p: &Partition) {
    let (first_usable, tail) = match img.table {
        TableKind::Dos => (SECTOR, 0),
        TableKind::Gpt => (34 * SECTOR, 33 * SECTOR),
    };
    let (start, size) = (p.start.value.0, p.size.value.0);
    if start % SECTOR != 0 || size % SECTOR != 0 || size == 0 {
        c.err(
            &p.start,
            format!("partition `{}`: start and size must be non-zero multiples of 512 bytes", p.name.value),
            "",
        );
    }
    if start < first_usable {
        c.err(
            &p.start,
            format!("partition `{}` starts at {} inside the partition table", p.name.value, p.start.value),
            format!("start at {:#x} or later (1MiB is customary)", first_usable),
        );
    }
    match start.checked_add(size) {
        Some(end) if end <= img.size.value.0.saturating_sub(tail) => {}
        _ => c.err(
            &p.size,
            format!("partition `{}` ends past the end of the {} image", p.name.value, img.size.value),
            "grow image.size or shrink the partition",
        ),
    }
}

/// The partition type suits the table: a hex byte for MBR, a GUID for GPT.
fn check_partition_type(c: &mut Checker, table: TableKind, p: &Partition) {
    match table {
        TableKind::Dos => {
            if !(p.part_type.value.len() <= 2 && u8::from_str_radix(&p.part_type.value, 16).is_ok()) {
                c.err(
                    &p.part_type,
                    format!("`{}` is not an MBR partition type", p.part_type.value),
                    "a hex byte such as 83 (Linux) or c (FAT32 LBA)",
                );
            }
        }
        TableKind::Gpt => {
            if !is_guid(&p.part_type.value) {
                c.err(
                    &p.part_type,
                    format!("`{}` is not a GPT partition type GUID", p.part_type.value),
                    "e.g. 0FC63DAF-8483-4772-8E79-3D69D8477DE4",
                );
            }
        }
    }
}

/// The filesystem is supported and fits the content (boot files, a raw firmware file, empty).
fn check_partition_content(c: &mut Checker, p: &Partition, fw_names: &BTreeSet<String>) {
    let fs = p.fs.value;
    if p.content.value == PartContent::Bootfiles {
        if fs == PartFs::Raw {
            c.err(&p.fs, "the bootfiles partition needs a filesystem", "use ext4 or vfat");
        }
    } else if let PartContent::Firmware(name) = &p.content.value {
        if !fw_names.contains(name.as_str()) {
            c.err(
                &p.content,
                format!(
                    "partition `{}` holds firmware file `{name}`, which the firmware section does not list",
                    p.name.value
                ),
                "add it to firmware or fix the name",
            );
        }
        if fs != PartFs::Raw {
            c.err(&p.fs, "a firmware partition is written raw", "use `fs: raw`");
        }
    }
}

/// Flash method settings, recovery method, each region, and overlaps.
fn check_flash(c: &mut Checker, fl: &Flash, fw_names: &BTreeSet<String>) {
    let dev_size = fl.device_size.as_ref().map(|s| s.value.0);
    if fl.method == FlashMethod::UbootSpiNor
        && dev_size.is_none()
        && let Some(r) = fl.regions.first()
    {
        c.err(&r.name, "flash method uboot-spi-nor needs flash.device-size", "e.g. device-size: 16MiB");
    }
    if let Some(r) = &fl.recovery
        && r != "jh7110-uart"
        && let Some(first) = fl.regions.first()
    {
        c.err(&first.name, format!("unknown recovery method `{r}`"), "supported: jh7110-uart");
    }
    let mut regions = Vec::new();
    for r in &fl.regions {
        check_flash_region(c, fl.method, dev_size, r, fw_names);
        regions.push((&r.name, &r.offset, r.offset.value.0, r.size.value.0));
    }
    c.regions_overlap("flash region", &regions);
}

/// One flash region: non-empty, block-aligned where the method needs it, on the device, and
/// writing a file the board produces.
fn check_flash_region(
    c: &mut Checker,
    method: FlashMethod,
    dev_size: Option<u64>,
    r: &FlashRegion,
    fw_names: &BTreeSet<String>,
) {
    let (off, size) = (r.offset.value.0, r.size.value.0);
    if size == 0 {
        c.err(&r.size, format!("flash region `{}` has size 0", r.name.value), "");
    }
    if matches!(method, FlashMethod::UbootVirtio | FlashMethod::UbootMmc) && off % SECTOR != 0 {
        c.err(
            &r.offset,
            format!(
                "flash region `{}` offset {} is not a multiple of the 512-byte block",
                r.name.value, r.offset.value
            ),
            "",
        );
    }
    if let Some(ds) = dev_size
        && off.checked_add(size).is_none_or(|end| end > ds)
    {
        c.err(
            &r.size,
            format!(
                "flash region `{}` ({}+{}) runs past the end of the {} device",
                r.name.value,
                r.offset.value,
                r.size.value,
                Size(ds)
            ),
            "",
        );
    }
    if r.file.value != "disk.img" && !fw_names.contains(&r.file.value) {
        c.err(
            &r.file,
            format!("flash region `{}` writes `{}`, which the board does not produce", r.name.value, r.file.value),
            "use disk.img or a firmware file name",
        );
    }
}

/// U-Boot load address variables: valid names, distinct addresses.
fn check_load_addresses(c: &mut Checker, load_addresses: &BTreeMap<String, Sp<Addr>>) {
    let mut addrs: BTreeMap<u64, &str> = BTreeMap::new();
    for (name, a) in load_addresses {
        if !name.bytes().all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == b'_') {
            c.err(a, format!("`{name}` is not a U-Boot environment variable name"), "e.g. kernel_addr_r");
        }
        if let Some(other) = addrs.insert(a.value.0, name) {
            c.err(
                a,
                format!("load address {name} = {} equals {other}", Addr(a.value.0)),
                "give each image its own address",
            );
        }
    }
}

/// The QEMU section: system matching the arch, firmware files of this board.
fn check_qemu(c: &mut Checker, q: &Qemu, arch: Arch, fw_names: &BTreeSet<String>) {
    let want = arch.as_str();
    if q.system != want
        && let Some(x) = q.bios.as_ref().or(q.kernel.as_ref())
    {
        c.err(
            x,
            format!("qemu.system `{}` does not match arch {}", q.system, arch.as_str()),
            format!("use `system: {want}`"),
        );
    }
    for f in [&q.bios, &q.kernel].into_iter().flatten() {
        if !fw_names.contains(&f.value) {
            c.err(
                f,
                format!("qemu firmware `{}` is not a firmware file of this board", f.value),
                "name a file from the firmware section",
            );
        }
    }
}

/// The boot marker ends up in a double-quoted shell and Nix string.
fn check_marker(c: &mut Checker, b: &Board) {
    if b.marker.is_empty() || !b.marker.bytes().all(|x| x.is_ascii_graphic() && x != b'"' && x != b'\\') {
        c.err(&b.name, "marker must be printable ASCII without spaces, quotes or backslashes", "");
    }
}

/// Checks a parsed build profile.
pub fn profile(p: &BuildProfile, stem: &str, src: &SourceText) -> Vec<ProfileError> {
    let mut c = Checker { src, errors: Vec::new() };
    if p.name.value != stem {
        c.err(
            &p.name,
            format!("profile name `{}` differs from its file name `{stem}.yaml`", p.name.value),
            "rename the file or the profile",
        );
    }
    for m in &p.builders.machines {
        if m.value.trim().is_empty() || m.value.contains(['\'', '`', '$']) {
            c.err(
                m,
                "a machines line must be non-empty and hold no quotes, backticks or $",
                "same syntax as /etc/nix/machines",
            );
        } else if let Err(e) = crate::builders::machines::check_spec(&m.value, "builders.machines") {
            c.err(m, e.to_string(), "same syntax as /etc/nix/machines: `ssh://user@host systems key maxJobs speed features mandatory hostkey`");
        }
    }
    for (comp, s) in &p.strategy.overrides {
        if !super::strategy::is_known_key(comp) {
            c.err(s, format!("unknown component `{comp}` in strategy.overrides"), super::strategy::KEYS_HELP);
        } else if let Some((msg, help)) = super::strategy::unsupported(p.provider, comp, s.value) {
            c.err(s, msg, help);
        }
    }
    c.kconfig_map(&p.overlays.kernel_config, "overlays.kernel-config");
    c.errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert!(is_safe_name("u-boot.bin"));
        assert!(!is_safe_name("../x"));
        assert!(!is_safe_name("a b"));
        assert!(!is_safe_name("-rf"));
        assert!(is_safe_rel_path("drivers/rvhello"));
        assert!(!is_safe_rel_path("drivers/../etc"));
        assert!(!is_safe_rel_path("/abs"));
        assert!(is_guid("2E54B353-1271-4842-806F-E436D6AF6985"));
        assert!(!is_guid("2E54B353-1271-4842-806F"));
        assert!(is_kconfig_value("\"console=ttyS0\""));
        assert!(!is_kconfig_value("yes"));
    }
}
