//! The resolved build of one board: the board profile merged with the build profile, every path
//! made absolute and checked, every component with its strategy. Both toolchain providers
//! render their Nix expression from this. Nothing here runs Nix; for the host provider it
//! checks files on the build host, and takes the toolchain's identity and the kernel tarball's
//! device trees from [`host_facts`](crate::profile::host_facts), which runs gcc, dpkg-query
//! and tar.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::profile::board::{Board, FirmwareFile, PartContent, PartFs, TableKind};
use crate::profile::build::{BuildProfile, Provider, Strategy};
use crate::profile::error::ProfileStageError;
use crate::profile::{Arch, Loaded, hex_digest, strategy};
use crate::{Error, ErrorKind, Result};

use crate::builders::userland::{self, Userland};

use crate::profile::host_facts::{dts_index, firmware_roots, host_toolchain_id, host_tools_id};

/// A firmware file with the place it is taken from.
#[derive(Debug, Clone)]
pub struct FirmwareSpec {
    pub name: String,
    /// On the build host (host provider).
    pub path: Option<PathBuf>,
    /// nixpkgs attribute/file (nixpkgs provider).
    pub nixpkgs: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ModuleSpec {
    pub name: String,
    pub source: PathBuf,
    pub load: bool,
}

#[derive(Debug, Clone)]
pub struct PartitionSpec {
    pub index: usize,
    pub name: String,
    pub start_sector: u64,
    pub size_sectors: u64,
    pub part_type: String,
    pub fs: PartFs,
    pub content: PartContent,
    pub bootable: bool,
}

/// Everything a provider needs to write the board's expression.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    pub board: String,
    pub profile: String,
    pub provider: Provider,
    pub arch: Arch,
    pub isa: String,
    pub abi: String,
    pub kernel_version: String,
    pub kernel_tarball: Option<PathBuf>,
    pub kernel_nixpkgs: Option<String>,
    pub kernel_base_config: String,
    /// `CONFIG_X=v` lines: board config, in-tree drivers, profile overlays (in that order of precedence).
    pub kernel_options: Vec<String>,
    pub kernel_file: String,
    pub cmdline: String,
    pub dtbs: Vec<String>,
    pub default_dtb: Option<String>,
    pub modules: Vec<ModuleSpec>,
    pub firmware: Vec<FirmwareSpec>,
    pub table: TableKind,
    pub image_size: u64,
    pub partitions: Vec<PartitionSpec>,
    pub marker: String,
    /// Firmware files copied to the boot partition root.
    pub boot_firmware: Vec<String>,
    pub dtbs_at_root: bool,
    /// Generated boot-partition files: name -> contents.
    pub boot_extra_files: BTreeMap<String, String>,
    /// Strategy per component name.
    pub strategies: BTreeMap<String, Strategy>,
    /// The native userland target-system components use (host provider, when any is).
    pub userland: Option<Userland>,
    /// Identity of the host compiler and kernel source (part of the hash of compiled components).
    pub toolchain_id: String,
    /// Identity of the host packages firmware and image steps use.
    pub tools_id: String,
    /// Deterministic identifiers derived from the board name.
    pub disk_id: String,
    pub fs_uuid: String,
}

impl BuildSpec {
    /// Component names in build order.
    pub fn components(&self) -> Vec<String> {
        let mut v = vec!["kernel".to_string()];
        v.extend(self.modules.iter().map(|m| format!("module-{}", m.name)));
        v.extend(["init", "initramfs", "bootfiles", "firmware", "image"].map(String::from));
        v
    }

    pub fn strategy(&self, component: &str) -> Strategy {
        self.strategies.get(component).copied().unwrap_or(Strategy::Cross)
    }

    /// True when the component is a target-system derivation (native or emulated).
    pub fn is_target_system(&self, component: &str) -> bool {
        self.strategy(component) != Strategy::Cross
    }

    /// Compiler flags for userland programs of this board.
    pub fn cflags(&self) -> String {
        match self.arch {
            Arch::Riscv64 => {
                // GCC 12 wants the base ISA letters; drop extension suffixes it may not know.
                let march = self.isa.split('_').next().unwrap_or("rv64gc");
                format!("-march={march} -mabi={}", self.abi)
            }
            Arch::Aarch64 => "-march=armv8-a".to_string(),
            // Not board arches: validation refuses them.
            Arch::Riscv32 | Arch::Arm | Arch::X86_64 | Arch::I386 => String::new(),
        }
    }
}

/// A GUID-formatted identifier derived from text (stable across builds).
pub fn stable_guid(parts: &[&str]) -> String {
    let d = hex_digest(parts);
    format!("{}-{}-4{}-8{}-{}", &d[0..8], &d[8..12], &d[13..16], &d[17..20], &d[20..32]).to_uppercase()
}

/// Fails when a board's device tree has no source in the kernel tarball, naming similar ones.
fn check_device_trees(board: &Loaded<Board>, tarball: &Path) -> Result<()> {
    let b = &board.value;
    let listing = dts_index(tarball)?;
    let karch = b.arch.value.karch();
    for dt in &b.device_trees {
        let dts = format!("arch/{karch}/boot/dts/{}.dts", dt.name.value.trim_end_matches(".dtb"));
        if listing.iter().any(|l| l.ends_with(&dts)) {
            continue;
        }
        let dir = dt.name.value.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let similar: Vec<&str> = listing
            .iter()
            .filter_map(|l| l.split_once(&format!("arch/{karch}/boot/dts/")).map(|(_, rest)| rest))
            .filter(|rest| rest.starts_with(dir))
            .take(12)
            .collect();
        let help = if similar.is_empty() {
            "check the name below arch/<arch>/boot/dts".to_string()
        } else {
            format!("device trees there include: {}", similar.join(", "))
        };
        let msg = format!("device tree `{}` does not exist in {} (no {dts})", dt.name.value, tarball.display());
        return Err(Error::new(ErrorKind::Config, board.source.error(&dt.name, msg, help)));
    }
    Ok(())
}

fn resolve_firmware(f: &FirmwareFile, base: &Path, provider: Provider) -> Result<FirmwareSpec> {
    let name = f.name.value.clone();
    let mut path = None;
    if provider == Provider::Host {
        let rooted = f
            .path
            .as_ref()
            .map(|p| firmware_roots().into_iter().map(|r| r.join(p.value.trim_start_matches('/'))).collect::<Vec<_>>());
        let candidates: Vec<PathBuf> =
            [f.path.as_ref().map(|p| PathBuf::from(&p.value)), Some(base.join("firmware").join(&name))]
                .into_iter()
                .flatten()
                .chain(rooted.unwrap_or_default())
                .collect();
        path = candidates.iter().find(|p| p.is_file()).cloned();
        if path.is_none() {
            let provides = match (&f.path, &f.package) {
                (Some(p), Some(pkg)) => Some((pkg.clone(), p.value.clone())),
                _ => None,
            };
            return Err(ProfileStageError::FirmwareMissing {
                put_at: base.join("firmware").join(&name),
                name,
                looked_at: candidates,
                provides,
                how_to_get: f.how_to_get.clone(),
            }
            .into());
        }
    }
    Ok(FirmwareSpec { name, path, nixpkgs: f.nixpkgs.clone() })
}

/// Resolves board + profile into a build spec. Checks files on the build host (host provider)
/// before anything is built, so a missing tarball or firmware file fails in a second, not after
/// the kernel.
pub fn resolve(board: &Loaded<Board>, profile: &Loaded<BuildProfile>, provider: Provider) -> Result<BuildSpec> {
    resolve_with_strategies(board, profile, provider, &[])
}

/// Like [`resolve`], with per-component strategy overrides from the command line
/// (`--strategy COMPONENT=STRATEGY`: a component or group name), which win over the profile's.
pub fn resolve_with_strategies(
    board: &Loaded<Board>,
    profile: &Loaded<BuildProfile>,
    provider: Provider,
    cli_strategies: &[(String, Strategy)],
) -> Result<BuildSpec> {
    let b = &board.value;
    let p = &profile.value;
    let base = board.base_dir()?;
    let name = b.name.value.clone();

    let kernel_options = kernel_options(board, profile, &base)?;
    let kernel_tarball = kernel_source(board, provider)?;
    let modules = resolve_modules(board, &base)?;
    let fw_files = firmware_files(b);
    let firmware = fw_files.iter().map(|f| resolve_firmware(f, &base, provider)).collect::<Result<Vec<_>>>()?;
    let packages: Vec<String> = fw_files.iter().filter_map(|f| f.package.clone()).collect();
    let (dtbs, default_dtb) = device_trees(board, provider, kernel_tarball.as_deref())?;
    let partitions = partitions(b);

    let module_names: Vec<String> = modules.iter().map(|m: &ModuleSpec| m.name.clone()).collect();
    let (strategies, userland) = resolve_strategies(board, profile, provider, &module_names, cli_strategies)?;

    let (toolchain_id, tools_id) = match provider {
        Provider::Host => (host_toolchain_id(b.arch.value)?, host_tools_id(&packages)),
        Provider::Nixpkgs => ("nixpkgs".to_string(), "nixpkgs".to_string()),
    };
    let mut cmdline = b.kernel.cmdline.clone();
    if let Some(extra) = &p.overlays.cmdline {
        cmdline = format!("{cmdline} {extra}");
    }

    Ok(BuildSpec {
        disk_id: hex_digest(&["disk", &name])[..8].to_string(),
        fs_uuid: stable_guid(&["fs", &name]).to_lowercase(),
        board: name,
        profile: p.name.value.clone(),
        provider,
        arch: b.arch.value,
        isa: b.isa.value.clone(),
        abi: b.abi.value.clone(),
        kernel_version: b.kernel.source.version.clone(),
        kernel_tarball,
        kernel_nixpkgs: b.kernel.source.nixpkgs.clone(),
        kernel_base_config: b.kernel.defconfig.value.clone(),
        kernel_options,
        kernel_file: b.kernel.image.value.clone(),
        cmdline,
        dtbs,
        default_dtb,
        modules,
        firmware,
        table: b.image.table,
        image_size: b.image.size.value.0,
        partitions,
        marker: b.marker.clone(),
        boot_firmware: b.boot_files.firmware.iter().map(|f| f.value.clone()).collect(),
        dtbs_at_root: b.boot_files.dtbs_at_root,
        boot_extra_files: b.boot_files.files.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect(),
        strategies,
        userland,
        toolchain_id,
        tools_id,
    })
}

/// The kernel's `CONFIG_X=v` lines, sorted: the board's config, its in-tree drivers, the
/// profile's overlays, then the board's fragment files (a later one wins).
fn kernel_options(board: &Loaded<Board>, profile: &Loaded<BuildProfile>, base: &Path) -> Result<Vec<String>> {
    let b = &board.value;
    let mut opts: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &b.kernel.config {
        opts.insert(k.clone(), v.value.clone());
    }
    for (k, v) in &b.drivers.in_tree {
        opts.insert(k.clone(), v.value.clone());
    }
    for (k, v) in &profile.value.overlays.kernel_config {
        opts.insert(k.clone(), v.value.clone());
    }
    for frag in &b.kernel.fragments {
        opts.extend(read_fragment(board, &base.join(&frag.value))?);
    }
    Ok(opts.iter().map(|(k, v)| format!("CONFIG_{k}={v}")).collect())
}

/// The `CONFIG_X=value` lines of a kernel config fragment, as `(X, value)` in file order.
fn read_fragment(board: &Loaded<Board>, path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).map_err(|source| ProfileStageError::KernelFragment {
        board: board.source.name.clone(),
        path: path.to_path_buf(),
        source,
    })?;
    let mut lines = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let Some((k, v)) = line.strip_prefix("CONFIG_").and_then(|l| l.split_once('=')) else {
            return Err(ProfileStageError::FragmentLine { path: path.to_path_buf(), line: line.to_string() }.into());
        };
        lines.push((k.to_string(), v.to_string()));
    }
    Ok(lines)
}

/// The kernel source tarball, checked for the host provider: it must be given and exist, and
/// the board may not ask for patches (the host provider does not apply them yet).
fn kernel_source(board: &Loaded<Board>, provider: Provider) -> Result<Option<PathBuf>> {
    let b = &board.value;
    if !b.kernel.patches.is_empty() && provider == Provider::Host {
        return Err(ProfileStageError::KernelPatches { board: board.source.name.clone() }.into());
    }
    let kernel_tarball = b.kernel.source.tarball.as_ref().map(PathBuf::from);
    if provider == Provider::Host {
        match &kernel_tarball {
            Some(t) if t.is_file() => {}
            Some(t) => {
                return Err(ProfileStageError::KernelSourceMissing { tarball: t.clone() }.into());
            }
            None => {
                return Err(ProfileStageError::NoKernelTarball { board: board.source.name.clone() }.into());
            }
        }
    }
    Ok(kernel_tarball)
}

/// The out-of-tree drivers, each with its source directory checked to exist.
fn resolve_modules(board: &Loaded<Board>, base: &Path) -> Result<Vec<ModuleSpec>> {
    let mut modules = Vec::new();
    for d in &board.value.drivers.out_of_tree {
        // Like boards, driver sources are looked up in the project first, then among rvbuild's own.
        let mut src = base.join(&d.source.value);
        if !src.is_dir() && board.origin != crate::profile::Origin::Shipped {
            let shipped = crate::profile::shipped::materialize(&crate::vocab::cache_dir())?.join(&d.source.value);
            if shipped.is_dir() {
                src = shipped;
            }
        }
        if !src.is_dir() {
            let msg = format!("driver `{}`: source directory {} does not exist", d.name.value, src.display());
            let help = "driver sources are looked up relative to the project directory, then among rvbuild's own";
            return Err(Error::new(ErrorKind::Config, board.source.error(&d.source, msg, help)));
        }
        modules.push(ModuleSpec { name: d.name.value.clone(), source: src, load: d.load });
    }
    Ok(modules)
}

/// The board's firmware files: OpenSBI's, U-Boot's, then the others.
fn firmware_files(b: &Board) -> Vec<&FirmwareFile> {
    let mut fw_files: Vec<&FirmwareFile> = Vec::new();
    if let Some(o) = &b.firmware.opensbi {
        fw_files.push(&o.file);
    }
    if let Some(u) = &b.firmware.u_boot {
        fw_files.extend(u.files.iter());
    }
    fw_files.extend(b.firmware.files.iter());
    fw_files
}

/// The device trees to build and the default one; for the host provider each is checked to
/// have a source in the kernel tarball.
fn device_trees(
    board: &Loaded<Board>,
    provider: Provider,
    kernel_tarball: Option<&Path>,
) -> Result<(Vec<String>, Option<String>)> {
    let b = &board.value;
    let dtbs: Vec<String> = b.device_trees.iter().map(|d| d.name.value.clone()).collect();
    if provider == Provider::Host
        && let Some(t) = kernel_tarball
        && !b.device_trees.is_empty()
    {
        check_device_trees(board, t)?;
    }
    let default_dtb =
        b.device_trees.iter().find(|d| d.default).or(b.device_trees.first()).map(|d| d.name.value.clone());
    Ok((dtbs, default_dtb))
}

/// The image's partitions, numbered from 1, with offsets and sizes in 512-byte sectors.
fn partitions(b: &Board) -> Vec<PartitionSpec> {
    b.image
        .partitions
        .iter()
        .enumerate()
        .map(|(i, part)| PartitionSpec {
            index: i + 1,
            name: part.name.value.clone(),
            start_sector: part.start.value.0 / 512,
            size_sectors: part.size.value.0 / 512,
            part_type: part.part_type.value.clone(),
            fs: part.fs.value,
            content: part.content.value.clone(),
            bootable: part.bootable,
        })
        .collect()
}

/// `spec` with every component's strategy set as `chosen` says (checked against the provider
/// like the command line's), without resolving the board again.
pub fn with_strategies(
    mut spec: BuildSpec,
    board: &Loaded<Board>,
    profile: &Loaded<BuildProfile>,
    chosen: &[(String, Strategy)],
) -> Result<BuildSpec> {
    let module_names: Vec<String> = spec.modules.iter().map(|m| m.name.clone()).collect();
    let (strategies, userland) = resolve_strategies(board, profile, spec.provider, &module_names, chosen)?;
    spec.strategies = strategies;
    spec.userland = userland;
    Ok(spec)
}

/// Each component's strategy (profile overrides, then the command line's) checked against what
/// the provider builds, and the userland the target-system ones need (host provider).
fn resolve_strategies(
    board: &Loaded<Board>,
    profile: &Loaded<BuildProfile>,
    provider: Provider,
    module_names: &[String],
    cli: &[(String, Strategy)],
) -> Result<(BTreeMap<String, Strategy>, Option<Userland>)> {
    let from_profile: Vec<(String, Strategy)> =
        profile.value.strategy.overrides.iter().map(|(k, v)| (k.clone(), v.value)).collect();
    for (key, s) in from_profile.iter().chain(cli) {
        if let Some((msg, help)) = strategy::unsupported(provider, key, *s) {
            let origin = if cli.iter().any(|(k, _)| k == key) {
                "--strategy".to_string()
            } else {
                format!("profile {}", profile.source.name)
            };
            return Err(ProfileStageError::UnsupportedStrategy { origin, message: msg, help }.into());
        }
    }
    let mut components = vec!["kernel".to_string()];
    components.extend(module_names.iter().map(|m| format!("module-{m}")));
    components.extend(["init", "initramfs", "bootfiles", "firmware", "image"].map(String::from));
    let strategies = strategy::resolve(&components, &[&from_profile, cli])
        .map_err(|message| ProfileStageError::Strategies { board: board.value.name.value.clone(), message })?;
    let userland = if provider == Provider::Host && strategies.values().any(|s| *s != Strategy::Cross) {
        Some(userland::find(board.value.arch.value)?)
    } else {
        None
    };
    Ok((strategies, userland))
}

/// The sfdisk script of the image's partition table.
pub fn sfdisk_script(spec: &BuildSpec) -> String {
    let mut s = String::new();
    match spec.table {
        TableKind::Dos => {
            s.push_str(&format!("label: dos\nlabel-id: 0x{}\nunit: sectors\n\n", spec.disk_id));
            for p in &spec.partitions {
                s.push_str(&format!(
                    "start={}, size={}, type={}{}\n",
                    p.start_sector,
                    p.size_sectors,
                    p.part_type,
                    if p.bootable { ", bootable" } else { "" }
                ));
            }
        }
        TableKind::Gpt => {
            s.push_str(&format!(
                "label: gpt\nlabel-id: {}\nunit: sectors\nfirst-lba: 34\n\n",
                stable_guid(&["gpt", &spec.board])
            ));
            for p in &spec.partitions {
                s.push_str(&format!(
                    "start={}, size={}, type={}, uuid={}, name=\"{}\"{}\n",
                    p.start_sector,
                    p.size_sectors,
                    p.part_type,
                    stable_guid(&["part", &spec.board, &p.name]),
                    p.name,
                    if p.bootable { ", attrs=\"LegacyBIOSBootable\"" } else { "" }
                ));
            }
        }
    }
    s
}
