//! The board profile model (boards/*.yaml): SoC, arch and ABI, kernel, drivers, device trees,
//! firmware, image layout, flash plan and QEMU settings. Field names are kebab-case in YAML;
//! unknown keys are rejected. `Sp<T>` fields keep their source location for validation messages.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::UnknownPartContent;
use super::units::{Addr, Size};

/// A value with the YAML location it came from.
pub type Sp<T> = serde_saphyr::Spanned<T>;

pub use crate::vocab::Arch;
pub use crate::vocab::manifest::FlashMethod;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Board {
    pub name: Sp<String>,
    #[serde(default)]
    pub description: String,
    pub soc: String,
    #[serde(default)]
    pub vendor: Option<String>,
    pub arch: Sp<Arch>,
    pub isa: Sp<String>,
    pub abi: Sp<String>,
    /// The dynamic loader userland programs use (checked by `verify`).
    #[serde(default)]
    pub interpreter: Option<String>,
    pub kernel: Kernel,
    #[serde(default)]
    pub drivers: Drivers,
    #[serde(default)]
    pub device_trees: Vec<DeviceTree>,
    pub firmware: Firmware,
    /// Extra contents of the boot partition (firmware files, generated files).
    #[serde(default)]
    pub boot_files: BootFiles,
    pub image: Image,
    pub flash: Flash,
    #[serde(default)]
    pub qemu: Option<Qemu>,
    /// The line init prints when the board is up (the boot test waits for it).
    #[serde(default = "default_marker")]
    pub marker: String,
}

pub fn default_marker() -> String {
    "RVBUILD-BOOT-OK".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Kernel {
    /// Name other parts of the profile use to refer to this kernel (drivers' `kernel:`).
    #[serde(default = "default_kernel_name")]
    pub name: String,
    pub source: KernelSource,
    /// Base configuration target: `tinyconfig`, `defconfig`, `allnoconfig`, or a `*_defconfig`.
    pub defconfig: Sp<String>,
    /// Kernel options beyond the base config: SYMBOL (without CONFIG_) -> y | m | n | value.
    #[serde(default)]
    pub config: BTreeMap<String, Sp<String>>,
    /// Files of `CONFIG_X=y` lines, relative to the board file's project directory.
    #[serde(default)]
    pub fragments: Vec<Sp<String>>,
    #[serde(default)]
    pub patches: Vec<Sp<String>>,
    pub cmdline: String,
    /// The boot image file: `Image` or `Image.gz`.
    #[serde(default = "default_kernel_image")]
    pub image: Sp<String>,
}

pub fn default_kernel_name() -> String {
    "main".to_string()
}
fn default_kernel_image() -> Sp<String> {
    Sp::new("Image".to_string(), serde_saphyr::Location::UNKNOWN, serde_saphyr::Location::UNKNOWN)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KernelSource {
    /// Upstream version, e.g. "6.12".
    pub version: String,
    /// Host provider: a source tarball on the build host.
    #[serde(default)]
    pub tarball: Option<String>,
    /// nixpkgs provider: the kernel package attribute, e.g. `linux_6_12`.
    #[serde(default)]
    pub nixpkgs: Option<String>,
    /// Alternatively a git repository and revision (nixpkgs provider, fetched with fetchgit).
    #[serde(default)]
    pub git: Option<GitSource>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GitSource {
    pub url: String,
    pub rev: String,
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Drivers {
    /// In-tree drivers: kernel symbol -> y (built in) or m (module).
    #[serde(default)]
    pub in_tree: BTreeMap<String, Sp<String>>,
    #[serde(default)]
    pub out_of_tree: Vec<OutOfTreeDriver>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OutOfTreeDriver {
    pub name: Sp<String>,
    /// Directory with the module's sources and Kbuild file, relative to the project directory.
    pub source: Sp<String>,
    /// The kernel it is built against (the board's `kernel.name`).
    #[serde(default = "default_driver_kernel")]
    pub kernel: Sp<String>,
    /// Load it from the initramfs at boot.
    #[serde(default = "yes")]
    pub load: bool,
}

fn default_driver_kernel() -> Sp<String> {
    Sp::new(default_kernel_name(), serde_saphyr::Location::UNKNOWN, serde_saphyr::Location::UNKNOWN)
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeviceTree {
    /// Path below arch/<arch>/boot/dts, e.g. starfive/jh7110-starfive-visionfive-2-v1.3b.dtb.
    pub name: Sp<String>,
    /// The compatible string the board's DT must carry (checked by `verify`).
    #[serde(default)]
    pub compatible: Option<String>,
    /// The DT that extlinux.conf names.
    #[serde(default)]
    pub default: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Firmware {
    #[serde(default)]
    pub opensbi: Option<OpenSbi>,
    #[serde(default)]
    pub u_boot: Option<UBoot>,
    /// Other files the board boots from (GPU firmware, recovery loaders, ...).
    #[serde(default)]
    pub files: Vec<FirmwareFile>,
    /// Load addresses of the firmware environment (kernel_addr_r, fdt_addr_r, ...).
    #[serde(default)]
    pub load_addresses: BTreeMap<String, Sp<Addr>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OpenSbi {
    pub platform: String,
    /// fw_jump | fw_dynamic | fw_payload
    pub variant: String,
    pub file: FirmwareFile,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UBoot {
    pub defconfig: String,
    #[serde(default)]
    pub version: Option<String>,
    /// Files of the U-Boot build the board uses (u-boot.bin, SPL, FIT, ...).
    pub files: Vec<FirmwareFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FirmwareFile {
    /// The name in the firmware output directory.
    pub name: Sp<String>,
    /// The file on the build host (host provider), e.g. from a Debian package.
    #[serde(default)]
    pub path: Option<Sp<String>>,
    /// The Debian package that provides `path` (named in the error when it is missing).
    #[serde(default)]
    pub package: Option<String>,
    /// nixpkgs attribute and file inside it (nixpkgs provider), e.g. `ubootQemuRiscv64Smode/u-boot.bin`.
    #[serde(default)]
    pub nixpkgs: Option<String>,
    /// How a user supplies the file when no package provides it.
    #[serde(default)]
    pub how_to_get: Option<String>,
}

/// What the boot partition holds besides the kernel, initramfs, DTBs and extlinux.conf.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BootFiles {
    /// Firmware files copied to the partition root (e.g. the Pi's start4.elf, U-Boot).
    #[serde(default)]
    pub firmware: Vec<Sp<String>>,
    /// Put the DTBs at the root too (the Pi's GPU firmware loads them from there).
    #[serde(default)]
    pub dtbs_at_root: bool,
    /// Generated files: name -> contents (e.g. config.txt).
    #[serde(default)]
    pub files: BTreeMap<String, Sp<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Dos,
    Gpt,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Image {
    pub table: TableKind,
    pub size: Sp<Size>,
    pub partitions: Vec<Partition>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Partition {
    pub name: Sp<String>,
    /// Byte offset in the image (a multiple of 512).
    pub start: Sp<Addr>,
    pub size: Sp<Size>,
    /// MBR type byte (e.g. "83", "c") or GPT type GUID.
    #[serde(rename = "type")]
    pub part_type: Sp<String>,
    pub fs: Sp<PartFs>,
    /// What goes in: `bootfiles` (kernel, initramfs, DTBs, extlinux), `firmware:<file>` or `empty`.
    pub content: Sp<PartContent>,
    #[serde(default)]
    pub bootable: bool,
}

/// The filesystem of an image partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartFs {
    Ext4,
    Vfat,
    /// No filesystem: the content is written as is.
    Raw,
}

impl PartFs {
    pub fn as_str(self) -> &'static str {
        match self {
            PartFs::Ext4 => "ext4",
            PartFs::Vfat => "vfat",
            PartFs::Raw => "raw",
        }
    }
}

impl fmt::Display for PartFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an image partition holds; written `bootfiles`, `firmware:<file>` or `empty` in YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartContent {
    /// Kernel, initramfs, DTBs and extlinux.conf (and the boot files of `boot-files`).
    Bootfiles,
    /// One firmware file, named in the firmware section, written raw.
    Firmware(String),
    /// Nothing: the partition is left as it is.
    Empty,
}

impl fmt::Display for PartContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartContent::Bootfiles => f.write_str("bootfiles"),
            PartContent::Firmware(name) => write!(f, "firmware:{name}"),
            PartContent::Empty => f.write_str("empty"),
        }
    }
}

impl std::str::FromStr for PartContent {
    type Err = UnknownPartContent;

    fn from_str(s: &str) -> Result<PartContent, UnknownPartContent> {
        match s {
            "bootfiles" => Ok(PartContent::Bootfiles),
            "empty" => Ok(PartContent::Empty),
            _ => match s.strip_prefix("firmware:") {
                Some(name) if !name.is_empty() => Ok(PartContent::Firmware(name.to_string())),
                _ => Err(UnknownPartContent { value: s.to_string() }),
            },
        }
    }
}

impl<'de> Deserialize<'de> for PartContent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for PartContent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Flash {
    pub method: FlashMethod,
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Boot-ROM recovery path, e.g. `jh7110-uart`.
    #[serde(default)]
    pub recovery: Option<String>,
    /// Size of the flash device, when the method writes one.
    #[serde(default)]
    pub device_size: Option<Sp<Size>>,
    #[serde(default)]
    pub regions: Vec<FlashRegion>,
    /// U-Boot commands typed once at the prompt before flashing (console tuning, say).
    #[serde(default)]
    pub console_setup: Vec<String>,
}

fn default_baud() -> u32 {
    115_200
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FlashRegion {
    pub name: Sp<String>,
    pub offset: Sp<Addr>,
    pub size: Sp<Size>,
    /// `disk.img` or a firmware file name.
    pub file: Sp<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Qemu {
    /// qemu-system-<binary>, e.g. riscv64 or aarch64.
    pub system: String,
    pub machine: String,
    #[serde(default)]
    pub cpu: Option<String>,
    #[serde(default = "default_memory")]
    pub memory: String,
    #[serde(default = "default_smp")]
    pub smp: u32,
    /// Firmware file passed with -bios (a name from the firmware section).
    #[serde(default)]
    pub bios: Option<Sp<String>>,
    /// Firmware file passed with -kernel (U-Boot on riscv64).
    #[serde(default)]
    pub kernel: Option<Sp<String>>,
    /// `firmware` boots through OpenSBI/U-Boot and the disk image; `direct` passes the board's
    /// kernel and initramfs with -kernel/-initrd (for boards QEMU has no model of).
    #[serde(default)]
    pub boot: QemuBoot,
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// Seconds before the boot test gives up.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

fn default_memory() -> String {
    "256M".to_string()
}
fn default_smp() -> u32 {
    1
}
/// How the QEMU boot test starts the board (`qemu.boot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QemuBoot {
    /// Through OpenSBI/U-Boot and the disk image.
    #[default]
    Firmware,
    /// The board's kernel and initramfs with -kernel/-initrd.
    Direct,
}

impl fmt::Display for QemuBoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QemuBoot::Firmware => "firmware",
            QemuBoot::Direct => "direct",
        })
    }
}

fn default_timeout() -> u64 {
    180
}
