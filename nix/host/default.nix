# rvbuild's `host` toolchain provider: derivations that use the build host's Debian cross
# toolchains, kernel source and firmware packages (impure: needs `sandbox = false`). Each
# derivation records the identity of the host tools it uses (`toolchainId`) so that a toolchain
# upgrade changes its hash. Called by the expression rvbuild generates per board.
{ }:
let
  common = ./builders/common.sh;
  hostPath = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  mk = { name, script, system ? "x86_64-linux", ... }@args:
    derivation ((builtins.removeAttrs args [ "script" ]) // {
      inherit name system common hostPath;
      builder = "/bin/bash";
      args = [ "-e" script ];
    });
  lines = xs: builtins.concatStringsSep "\n" xs;
  # Only cross builds run on the host provider; a target-system request is refused at
  # evaluation time with the component's name (the planner decides this before instantiation).
  checkStrategy = component: strategy:
    if strategy == "cross" then true
    else throw "rvbuild host provider: component '${component}' asks for strategy '${strategy}', but only 'cross' is available with the host provider";
in rec {
  # The kernel and modules are named by what they contain, not by board, so boards with the
  # same kernel configuration (the three JH7110 boards) share one build.
  kernel = { board, arch, karch, crossPrefix, src, baseConfig, options, buildDtbs, toolchainId, version ? "6.12", strategy ? "cross" }:
    assert checkStrategy "kernel" strategy;
    mk {
      name = "rvbuild-linux-${version}-${arch}";
      script = ./builders/kernel.sh;
      outputs = [ "out" "dev" ];
      inherit src baseConfig karch crossPrefix toolchainId;
      options = lines options;
      buildDtbs = if buildDtbs then "1" else "0";
    };

  module = { board, name, src, kernelDrv, karch, crossPrefix, toolchainId, strategy ? "cross" }:
    assert checkStrategy "module-${name}" strategy;
    mk {
      name = "rvbuild-module-${name}-${karch}";
      script = ./builders/module.sh;
      kernelDev = kernelDrv.dev;
      inherit src karch crossPrefix toolchainId;
    };

  init = { board, crossPrefix, cflags, marker, toolchainId, strategy ? "cross" }:
    assert checkStrategy "init" strategy;
    mk {
      name = "rvbuild-${board}-init";
      script = ./builders/init.sh;
      src = ./src/init.c;
      inherit board crossPrefix cflags marker toolchainId;
    };

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
