//! Renders a board's build spec as a Nix expression for the `nixpkgs` provider: cross components
//! come from `pkgsCross`, target-system ones from nixpkgs imported for the target system; the
//! kernel from nixpkgs' `buildLinux`, U-Boot and OpenSBI from their nixpkgs packages. It needs
//! nixpkgs on NIX_PATH to evaluate; offline it is checked by parsing.

use std::fmt::Write as _;
use std::path::Path;

use super::render::{attr, components, generated_by, loaded_modules, string, string_list};
use crate::profile::Arch;
use crate::profile::build::Strategy;
use crate::profile::resolve::{BuildSpec, sfdisk_script};

fn kernel_value(v: &str) -> String {
    match v {
        "y" => "yes".to_string(),
        "m" => "module".to_string(),
        "n" => "no".to_string(),
        s if s.starts_with('"') => format!("(freeform {})", string(s.trim_matches('"'))),
        s => format!("(freeform {})", string(s)),
    }
}

fn pkgs_for(spec: &BuildSpec, component: &str) -> &'static str {
    match spec.strategy(component) {
        Strategy::Cross => "crossPkgs",
        Strategy::Native | Strategy::Emulated => "targetPkgs",
    }
}

/// The expression: an attribute set from component name to derivation.
pub fn render(spec: &BuildSpec, nix_lib: &Path) -> String {
    let mut e = String::new();
    let cross_attr = match spec.arch {
        Arch::Riscv64 => "riscv64",
        Arch::Aarch64 => "aarch64-multiplatform",
        Arch::Riscv32 => "riscv32",
        Arch::Arm => "armv7l-hf-multiplatform",
        Arch::X86_64 => "gnu64",
        Arch::I386 => "gnu32",
    };
    generated_by(&mut e, spec, "nixpkgs");
    let _ = writeln!(e, "{{ nixpkgs ? <nixpkgs> }}:");
    let _ = writeln!(e, "let");
    let _ = writeln!(e, "  pkgs = import nixpkgs {{ }};");
    let _ = writeln!(e, "  lib = pkgs.lib;");
    let _ = writeln!(e, "  crossPkgs = pkgs.pkgsCross.{cross_attr};");
    let _ = writeln!(e, "  targetPkgs = import nixpkgs {{ system = {}; }};", string(spec.arch.nix_system()));
    let _ = writeln!(e, "  board = {};", string(&spec.board));
    kernel(&mut e, spec);
    modules(&mut e, spec);
    init(&mut e, spec, nix_lib);
    initramfs(&mut e, spec);
    bootfiles(&mut e, spec);
    firmware(&mut e, spec);
    image(&mut e, spec);
    components(&mut e, spec);
    e
}

/// `kernel`: nixpkgs' `buildLinux` with the board's defconfig and options.
fn kernel(e: &mut String, spec: &BuildSpec) {
    let kp = pkgs_for(spec, "kernel");
    let kpkg = spec.kernel_nixpkgs.as_deref().unwrap_or("linux_6_12");
    let _ = writeln!(e, "  kernel = {kp}.buildLinux {{");
    let _ = writeln!(e, "    inherit ({kp}.{kpkg}) src version modDirVersion;");
    let _ = writeln!(e, "    pname = \"rvbuild-${{board}}-kernel\";");
    let _ = writeln!(e, "    defconfig = {};", string(&spec.kernel_base_config));
    let _ = writeln!(e, "    autoModules = false; ignoreConfigErrors = false;");
    let _ = writeln!(e, "    kernelPatches = [ ];");
    let _ = writeln!(e, "    structuredExtraConfig = with lib.kernel; {{");
    for opt in &spec.kernel_options {
        if let Some((k, v)) = opt.strip_prefix("CONFIG_").and_then(|o| o.split_once('=')) {
            let _ = writeln!(e, "      {} = {};", k, kernel_value(v));
        }
    }
    let _ = writeln!(e, "    }};");
    let _ = writeln!(e, "  }};");
}

/// `modules`: one `mkDerivation` per out-of-tree module, built against `kernel`.
fn modules(e: &mut String, spec: &BuildSpec) {
    let _ = writeln!(e, "  modules = {{");
    for m in &spec.modules {
        let mp = pkgs_for(spec, &format!("module-{}", m.name));
        let _ = writeln!(e, "    {} = {mp}.stdenv.mkDerivation {{", attr(&m.name));
        let _ = writeln!(e, "      pname = \"rvbuild-${{board}}-module-{}\";", m.name);
        let _ = writeln!(e, "      version = kernel.modDirVersion;");
        let _ = writeln!(
            e,
            "      src = builtins.path {{ path = {}; name = {}; }};",
            string(&m.source.to_string_lossy()),
            string(&format!("{}-src", m.name))
        );
        let _ = writeln!(e, "      nativeBuildInputs = kernel.moduleBuildDependencies;");
        let _ = writeln!(
            e,
            "      makeFlags = kernel.makeFlags ++ [ \"-C\" \"${{kernel.dev}}/lib/modules/${{kernel.modDirVersion}}/build\" \"M=$(PWD)\" ];"
        );
        let _ = writeln!(e, "      buildFlags = [ \"modules\" ];");
        let _ = writeln!(e, "      installPhase = ''");
        let _ = writeln!(e, "        mkdir -p $out/lib/modules/${{kernel.modDirVersion}}/extra");
        let _ = writeln!(e, "        cp *.ko $out/lib/modules/${{kernel.modDirVersion}}/extra/");
        let _ = writeln!(e, "      '';");
        let _ = writeln!(e, "    }};");
    }
    let _ = writeln!(e, "  }};");
}

/// `init`: the static init program from rvbuild's own source in `nix_lib`.
fn init(e: &mut String, spec: &BuildSpec, nix_lib: &Path) {
    let ip = pkgs_for(spec, "init");
    let _ = writeln!(e, "  init = {ip}.stdenv.mkDerivation {{");
    let _ = writeln!(e, "    pname = \"rvbuild-${{board}}-init\"; version = \"1\";");
    let _ = writeln!(
        e,
        "    src = builtins.path {{ path = {}; name = \"rvbuild-init-src\"; }};",
        string(&nix_lib.join("host").join("src").to_string_lossy())
    );
    let _ = writeln!(e, "    buildInputs = [ {ip}.glibc.static ];");
    let _ = writeln!(
        e,
        "    buildPhase = ''$CC -static -Os -Wall -DRVBUILD_MARKER='\"{}\"' -DRVBUILD_BOARD='\"${{board}}\"' -o init init.c'';",
        spec.marker
    );
    let _ = writeln!(e, "    installPhase = ''install -D init $out/bin/init'';");
    let _ = writeln!(e, "  }};");
}

/// `initramfs`: init and the modules it loads, with nixpkgs' `makeInitrdNG`.
fn initramfs(e: &mut String, spec: &BuildSpec) {
    let _ = writeln!(e, "  initramfs = pkgs.makeInitrdNG {{");
    let _ = writeln!(e, "    compressor = \"gzip\";");
    let _ = writeln!(e, "    contents = [ {{ source = \"${{init}}/bin/init\"; target = \"/init\"; }} ]");
    let _ = writeln!(
        e,
        "      ++ map (m: {{ source = \"${{m}}/lib/modules\"; target = \"/lib/modules\"; }}) [ {} ];",
        loaded_modules(spec).join(" ")
    );
    let _ = writeln!(e, "  }};");
}

/// `bootfiles`: kernel, initramfs, device trees, firmware and extlinux.conf of the boot partition.
fn bootfiles(e: &mut String, spec: &BuildSpec) {
    let _ = writeln!(e, "  bootfiles = pkgs.runCommand \"rvbuild-${{board}}-bootfiles\" {{ }} ''");
    let _ = writeln!(e, "    mkdir -p $out/extlinux");
    let _ = writeln!(e, "    cp ${{kernel}}/{} $out/", spec.kernel_file.replace('\'', ""));
    let _ = writeln!(e, "    cp ${{initramfs}}/initrd $out/initramfs.cpio.gz");
    for d in &spec.dtbs {
        let _ = writeln!(e, "    install -D ${{kernel}}/dtbs/{d} $out/dtbs/{d}");
        if spec.dtbs_at_root {
            let _ = writeln!(e, "    cp ${{kernel}}/dtbs/{d} $out/");
        }
    }
    for f in &spec.boot_firmware {
        let _ = writeln!(e, "    cp ${{firmware}}/{f} $out/");
    }
    for (name, text) in &spec.boot_extra_files {
        let _ = writeln!(e, "    cp ${{builtins.toFile {} {}}} $out/{name}", string(name), string(text));
    }
    let fdt = spec.default_dtb.as_ref().map(|d| format!("  fdt /dtbs/{d}\n")).unwrap_or_default();
    let _ = writeln!(
        e,
        "    printf 'default rvbuild\\nlabel rvbuild\\n  kernel /{}\\n  initrd /initramfs.cpio.gz\\n{}  append {}\\n' > $out/extlinux/extlinux.conf",
        spec.kernel_file,
        fdt.replace('\n', "\\n"),
        spec.cmdline.replace(['\'', '\\'], "")
    );
    let _ = writeln!(e, "  '';");
}

/// `firmware`: the board's firmware files from their nixpkgs packages.
fn firmware(e: &mut String, spec: &BuildSpec) {
    let _ = writeln!(e, "  firmware = pkgs.runCommand \"rvbuild-${{board}}-firmware\" {{ }} ''");
    let _ = writeln!(e, "    mkdir -p $out");
    for f in &spec.firmware {
        match f.nixpkgs.as_deref().and_then(|n| n.split_once('/')) {
            Some((pkg, file)) => {
                let _ = writeln!(e, "    cp ${{crossPkgs.{pkg}}}/{file} $out/{}", f.name);
            }
            None => {
                let _ = writeln!(
                    e,
                    "    echo 'firmware {} has no nixpkgs source in the board profile' >&2; exit 1",
                    f.name
                );
            }
        }
    }
    let _ = writeln!(e, "  '';");
}

/// `image`: the disk image, partitioned with sfdisk, each partition made and copied in.
fn image(e: &mut String, spec: &BuildSpec) {
    let _ = writeln!(e, "  image = pkgs.runCommand \"rvbuild-${{board}}-disk-image\" {{");
    let _ = writeln!(e, "    nativeBuildInputs = with pkgs; [ util-linux e2fsprogs dosfstools mtools ];");
    let _ = writeln!(e, "    table = {};", string(&sfdisk_script(spec)));
    let _ = writeln!(
        e,
        "    parts = {};",
        string_list(
            &spec
                .partitions
                .iter()
                .map(|p| format!("{}:{}:{}:{}:{}", p.index, p.start_sector, p.size_sectors, p.fs, p.content))
                .collect::<Vec<_>>()
        )
    );
    let _ = writeln!(e, "  }} ''");
    let _ = writeln!(e, "    truncate -s {} disk.img", spec.image_size);
    let _ = writeln!(e, "    echo \"$table\" | sfdisk disk.img");
    let _ = writeln!(e, "    for p in $parts; do");
    let _ = writeln!(e, "      IFS=: read -r idx start size fs content <<< \"$p\"");
    let _ = writeln!(e, "      truncate -s $((size * 512)) part.img");
    let _ = writeln!(e, "      case \"$content\" in");
    let _ = writeln!(e, "        bootfiles) src=${{bootfiles}} ;;");
    let _ = writeln!(e, "        firmware:*) src=${{firmware}}/''${{content#firmware:}} ;;");
    let _ = writeln!(e, "        *) mkdir -p empty; src=empty ;;");
    let _ = writeln!(e, "      esac");
    let _ = writeln!(e, "      case \"$fs\" in");
    let _ = writeln!(e, "        ext4) mkfs.ext4 -q -d \"$src\" part.img ;;");
    let _ = writeln!(e, "        vfat) mkfs.vfat part.img; (cd \"$src\" && mcopy -s -i ../part.img ./* ::) ;;");
    let _ = writeln!(e, "        raw) cp \"$src\" part.img ;;");
    let _ = writeln!(e, "      esac");
    let _ = writeln!(e, "      dd if=part.img of=disk.img bs=512 seek=$start conv=notrunc status=none; rm part.img");
    let _ = writeln!(e, "    done");
    let _ = writeln!(e, "    mkdir -p $out; cp disk.img $out/");
    let _ = writeln!(e, "  '';");
}
