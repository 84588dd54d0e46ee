# rvbuild's `host` toolchain provider: derivations that use the build host's Debian cross
# toolchains, kernel source and firmware packages (impure: needs `sandbox = false`). Each
# derivation records the identity of the host tools it uses (`toolchainId`) so that a toolchain
# upgrade changes its hash. Called by the expression rvbuild generates per board.
#
# Userland programs can also be built as target-system derivations (strategy native/emulated,
# `system = riscv64-linux`/`aarch64-linux`): see README.md next to this file for how they run.
{ }:
let
  common = ./builders/common.sh;
  defaultHostPath = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  mk = { name, script, system ? "x86_64-linux", builder ? "/bin/bash", hostPath ? defaultHostPath,
         prelude ? [ ], ... }@args:
    derivation ((builtins.removeAttrs args [ "script" "prelude" ]) // {
      inherit name system common hostPath builder;
      args = [ "-e" ] ++ prelude ++ [ script ];
    });
  lines = xs: builtins.concatStringsSep "\n" xs;
  isTargetSystem = strategy: strategy == "native" || strategy == "emulated";
  checkStrategy = component: strategy:
    if strategy == "cross" || isTargetSystem strategy then true
    else throw "rvbuild host provider: component '${component}' asks for unknown strategy '${strategy}' (cross, native or emulated)";
  # The kernel group (kernel and its modules: one compiler, one vermagic) is built cross only:
  # a kernel compiled under qemu-user takes about 20x as long, for the same bytes.
  crossOnly = component: strategy:
    if strategy == "cross" then true
    else throw "rvbuild host provider: component '${component}' asks for strategy '${strategy}', but the host provider builds the kernel and its modules cross only";
  # qemu-user redirects only some file system calls into QEMU_LD_PREFIX (open does, statx and
  # gcc's library probes do not), so the compiler gets the userland as its sysroot: every header,
  # start file and library is then named by its real path. (On a native builder the userland
  # directory may simply be a link to /.)
  sysrootFlag = userland: if userland == null then "" else "--sysroot=${userland.dir}";
  # The attributes that make a derivation target-system: the userland's bash as builder (run by
  # binfmt qemu-user on an emulating host, directly on a native one), QEMU_LD_PREFIX so that
  # qemu-user finds the loader and libraries in the userland, PATH inside the userland, no
  # cross prefix, and the userland's identity (hash of its stamp file) in place of the cross
  # toolchain's. The userland directory is a plain string: it is not copied into the store.
  # userland: { system, dir, id } (rvbuild fills it from <dir>/.rvbuild-userland).
  onTarget = component: strategy: userland: crossAttrs:
    assert checkStrategy component strategy;
    if !(isTargetSystem strategy) then crossAttrs
    else if userland == null then
      throw "rvbuild host provider: component '${component}' is target-system but no userland was given"
    else {
      inherit (userland) system;
      builder = "${userland.dir}/usr/bin/bash";
      prelude = [ ./builders/target.sh ];
      QEMU_LD_PREFIX = userland.dir;
      userlandDir = userland.dir;
      userlandId = userland.id;
      hostPath = "${userland.dir}/usr/local/bin:${userland.dir}/usr/bin:${userland.dir}/usr/sbin";
      crossPrefix = "";
      toolchainId = userland.id;
    };
in rec {
  # The kernel and modules are named by what they contain, not by board, so boards with the
  # same kernel configuration (the three JH7110 boards) share one build.
  kernel = { board, arch, karch, crossPrefix, src, baseConfig, options, buildDtbs, toolchainId, version ? "6.12", strategy ? "cross" }:
    assert crossOnly "kernel" strategy;
    mk {
      name = "rvbuild-linux-${version}-${arch}";
      script = ./builders/kernel.sh;
      splitHook = ./builders/split.sh;
      splitPump = ./builders/pump-server.py;
      outputs = [ "out" "dev" ];
      inherit src baseConfig karch crossPrefix toolchainId;
      options = lines options;
      buildDtbs = if buildDtbs then "1" else "0";
    };

  module = { board, name, src, kernelDrv, karch, crossPrefix, toolchainId, strategy ? "cross" }:
    assert crossOnly "module-${name}" strategy;
    mk {
      name = "rvbuild-module-${name}-${karch}";
      script = ./builders/module.sh;
      kernelDev = kernelDrv.dev;
      inherit src karch crossPrefix toolchainId;
    };

  init = { board, crossPrefix, cflags, marker, toolchainId, strategy ? "cross", userland ? null }:
    mk ({
      name = "rvbuild-${board}-init";
      script = ./builders/init.sh;
      src = ./src/init.c;
      inherit board marker;
      cflags = if isTargetSystem strategy then "${cflags} ${sysrootFlag userland}" else cflags;
    } // onTarget "init" strategy userland { inherit crossPrefix toolchainId; });

  # The steps below only move bytes (cpio + gzip, copies, sfdisk + mkfs): their output does not
  # depend on the system they run on, so they always run on the build machine's own system
  # (x86_64-linux); a target-system variant would only be slower. initramfs also runs
  # gen_init_cpio, which the kernel build compiled for the build machine.

  # `rvbuild builders probe`'s benchmark, statically linked for `target` (a Nix system); built on
  # this machine (`system`) and copied to the builders it measures.
  probeBench = { target, crossPrefix, toolchainId, system ? "x86_64-linux" }:
    mk {
      name = "rvbuild-probe-bench-${target}";
      script = ./builders/probe-bench.sh;
      src = ./src/probe-bench.c;
      inherit system target crossPrefix toolchainId;
    };

  initramfs = { board, kernelDrv, initDrv, moduleDrvs }:
    mk {
      name = "rvbuild-${board}-initramfs";
      script = ./builders/initramfs.sh;
      kernel = kernelDrv;
      kernelDev = kernelDrv.dev;
      init = initDrv;
      modules = moduleDrvs;
    };

  # firmwareFiles: names from firmwareDrv copied to the partition root; extraFiles: name -> text.
  bootfiles = { board, kernelDrv, initramfsDrv, kernelFile, fdtFile, extraDtbs, cmdline,
                firmwareDrv ? null, firmwareFiles ? [ ], dtbsAtRoot ? false, extraFiles ? { } }:
    mk ({
      name = "rvbuild-${board}-bootfiles";
      script = ./builders/bootfiles.sh;
      kernel = kernelDrv;
      initramfs = initramfsDrv;
      inherit board kernelFile fdtFile cmdline;
      extraDtbs = builtins.concatStringsSep " " extraDtbs;
      firmwareFiles = builtins.concatStringsSep " " firmwareFiles;
      dtbsAtRoot = if dtbsAtRoot then "1" else "0";
      extraFileNames = builtins.concatStringsSep " " (builtins.attrNames extraFiles);
    } // (if firmwareDrv == null then { } else { firmware = firmwareDrv; })
      // builtins.listToAttrs (map (n: { name = "extraFile_${builtins.replaceStrings [ "." "-" ] [ "_" "_" ] n}"; value = extraFiles.${n}; }) (builtins.attrNames extraFiles)));

  firmware = { board, files, toolchainId }:
    mk {
      name = "rvbuild-${board}-firmware";
      script = ./builders/firmware.sh;
      files = lines (map (f: "${f.name}=${f.source}") files);
      inherit toolchainId;
    };

  # partitions: [{ index, start, size, fs, label, content (a path in the store or a derivation) }]
  diskImage = { board, sizeBytes, table, partitions, fsUuid, toolchainId }:
    mk {
      name = "rvbuild-${board}-disk-image";
      script = ./builders/diskimage.sh;
      layout = builtins.toFile "rvbuild-${board}-sfdisk" table;
      parts = lines (map (p: "${toString p.index}:${toString p.start}:${toString p.size}:${p.fs}:${p.content}:${p.label}") partitions);
      inherit sizeBytes fsUuid toolchainId;
    };
}
