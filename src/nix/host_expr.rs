//! Renders a board's build spec as a Nix expression for the `host` provider: one derivation per
//! component (kernel, each out-of-tree module, init, initramfs, boot files, firmware, disk image),
//! calling the library in nix/host. Each component's strategy is an input of its call.

use std::fmt::Write as _;
use std::path::Path;

use super::render::{attr, components, generated_by, loaded_modules, string, string_list};
use crate::profile::board::PartContent;
use crate::profile::resolve::{BuildSpec, sfdisk_script};

fn path_literal(p: &Path, name: &str) -> String {
    format!("(builtins.path {{ path = {}; name = {}; }})", string(&p.to_string_lossy()), string(name))
}

/// The expression: an attribute set from component name to derivation.
pub fn render(spec: &BuildSpec, nix_lib: &Path) -> String {
    let mut e = String::new();
    generated_by(&mut e, spec, "host");
    let _ = writeln!(e, "# Build one component with: nix-build THIS_FILE -A kernel");
    let _ = writeln!(e, "let");
    let _ = writeln!(e, "  host = import {} {{ }};", string(&nix_lib.join("host").to_string_lossy()));
    let _ = writeln!(e, "  board = {};", string(&spec.board));
    let _ = writeln!(e, "  toolchainId = {};", string(&spec.toolchain_id));
    let _ = writeln!(e, "  toolsId = {};", string(&spec.tools_id));
    if let Some(u) = &spec.userland {
        // A plain string, not a path: the userland stays where it is and is not copied into
        // the store; its stamp hash stands for its contents.
        let _ = writeln!(
            e,
            "  userland = {{ system = {}; dir = {}; id = {}; }};",
            string(&u.system),
            string(&u.dir.to_string_lossy()),
            string(&u.id)
        );
    }
    kernel(&mut e, spec);
    modules(&mut e, spec);
    init(&mut e, spec);
    let _ = writeln!(
        e,
        "  initramfs = host.initramfs {{ inherit board; kernelDrv = kernel; initDrv = init; moduleDrvs = [ {} ]; }};",
        loaded_modules(spec).join(" ")
    );
    bootfiles(&mut e, spec);
    firmware(&mut e, spec);
    image(&mut e, spec);
    components(&mut e, spec);
    e
}

/// `kernel`: the kernel with its config options and device trees, from the source tarball.
fn kernel(e: &mut String, spec: &BuildSpec) {
    let _ = writeln!(e, "  kernel = host.kernel {{");
    let _ = writeln!(e, "    inherit board toolchainId;");
    let _ = writeln!(
        e,
        "    arch = {}; karch = {}; crossPrefix = {};",
        string(spec.arch.as_str()),
        string(spec.arch.karch()),
        string(spec.arch.cross_prefix())
    );
    if let Some(t) = &spec.kernel_tarball {
        let fname =
            t.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "linux-source.tar.xz".into());
        let _ = writeln!(e, "    src = {};", path_literal(t, &fname));
    }
    let _ = writeln!(e, "    version = {};", string(&spec.kernel_version));
    let _ = writeln!(e, "    baseConfig = {};", string(&spec.kernel_base_config));
    let _ = writeln!(e, "    options = {};", string_list(&spec.kernel_options));
    let _ = writeln!(e, "    buildDtbs = {};", !spec.dtbs.is_empty());
    let _ = writeln!(e, "    strategy = {};", string(spec.strategy("kernel").as_str()));
    let _ = writeln!(e, "  }};");
}

/// `modules`: one derivation per out-of-tree module, built against `kernel`.
fn modules(e: &mut String, spec: &BuildSpec) {
    let _ = writeln!(e, "  modules = {{");
    for m in &spec.modules {
        let comp = format!("module-{}", m.name);
        let _ = writeln!(e, "    {} = host.module {{", attr(&m.name));
        let _ = writeln!(e, "      inherit board toolchainId; kernelDrv = kernel;");
        let _ = writeln!(
            e,
            "      name = {}; src = {};",
            string(&m.name),
            path_literal(&m.source, &format!("{}-src", m.name))
        );
        let _ = writeln!(
            e,
            "      karch = {}; crossPrefix = {};",
            string(spec.arch.karch()),
            string(spec.arch.cross_prefix())
        );
        let _ = writeln!(e, "      strategy = {};", string(spec.strategy(&comp).as_str()));
        let _ = writeln!(e, "    }};");
    }
    let _ = writeln!(e, "  }};");
}

/// `init`: the initramfs's static init program, with the userland when it builds on the target system.
fn init(e: &mut String, spec: &BuildSpec) {
    let _ = writeln!(e, "  init = host.init {{");
    let _ = writeln!(e, "    inherit board toolchainId; crossPrefix = {};", string(spec.arch.cross_prefix()));
    let _ = writeln!(e, "    cflags = {}; marker = {};", string(&spec.cflags()), string(&spec.marker));
    let _ = writeln!(e, "    strategy = {};", string(spec.strategy("init").as_str()));
    if spec.is_target_system("init") {
        let _ = writeln!(e, "    inherit userland;");
    }
    let _ = writeln!(e, "  }};");
}

/// `bootfiles`: kernel, initramfs, device trees and boot configuration of the boot partition.
fn bootfiles(e: &mut String, spec: &BuildSpec) {
    let _ = writeln!(e, "  bootfiles = host.bootfiles {{");
    let _ = writeln!(e, "    inherit board; kernelDrv = kernel; initramfsDrv = initramfs;");
    let _ = writeln!(
        e,
        "    kernelFile = {}; fdtFile = {};",
        string(&spec.kernel_file),
        string(spec.default_dtb.as_deref().unwrap_or(""))
    );
    let extra: Vec<String> = spec.dtbs.iter().filter(|d| Some(*d) != spec.default_dtb.as_ref()).cloned().collect();
    let _ = writeln!(e, "    extraDtbs = {}; cmdline = {};", string_list(&extra), string(&spec.cmdline));
    if !spec.boot_firmware.is_empty() || spec.dtbs_at_root || !spec.boot_extra_files.is_empty() {
        let _ = writeln!(e, "    firmwareDrv = firmware; firmwareFiles = {};", string_list(&spec.boot_firmware));
        let _ = writeln!(e, "    dtbsAtRoot = {};", spec.dtbs_at_root);
        let _ = writeln!(e, "    extraFiles = {{");
        for (k, v) in &spec.boot_extra_files {
            let _ = writeln!(e, "      {} = {};", attr(k), string(v));
        }
        let _ = writeln!(e, "    }};");
    }
    let _ = writeln!(e, "  }};");
}

/// `firmware`: the board's firmware files, copied from the build host.
fn firmware(e: &mut String, spec: &BuildSpec) {
    let _ = writeln!(e, "  firmware = host.firmware {{");
    let _ = writeln!(e, "    inherit board; toolchainId = toolsId;");
    let _ = writeln!(e, "    files = [");
    for f in &spec.firmware {
        let src = f.path.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = writeln!(e, "      {{ name = {}; source = {}; }}", string(&f.name), string(&src));
    }
    let _ = writeln!(e, "    ];");
    let _ = writeln!(e, "  }};");
}

/// `image`: the disk image, its partition table and what goes into each partition.
fn image(e: &mut String, spec: &BuildSpec) {
    let _ = writeln!(e, "  image = host.diskImage {{");
    let _ = writeln!(e, "    inherit board; toolchainId = toolsId;");
    let _ = writeln!(e, "    sizeBytes = {}; fsUuid = {};", spec.image_size, string(&spec.fs_uuid));
    let _ = writeln!(e, "    table = {};", string(&sfdisk_script(spec)));
    let _ = writeln!(e, "    partitions = [");
    for p in &spec.partitions {
        let content = match &p.content {
            PartContent::Bootfiles => "\"${bootfiles}\"".to_string(),
            PartContent::Firmware(f) => format!("\"${{firmware}}/{}\"", f.replace(['"', '\\', '$'], "")),
            PartContent::Empty => string("-"),
        };
        let _ = writeln!(
            e,
            "      {{ index = {}; start = {}; size = {}; fs = {}; label = {}; content = {}; }}",
            p.index,
            p.start_sector,
            p.size_sectors,
            string(p.fs.as_str()),
            string(&p.name),
            content
        );
    }
    let _ = writeln!(e, "    ];");
    let _ = writeln!(e, "  }};");
}
