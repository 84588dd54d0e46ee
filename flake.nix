{
  description = "rvbuild: cross build orchestrator for RISC-V and ARM64 boards, built on Nix";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "riscv64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      cargoToml = builtins.fromTOML (builtins.readFile ./Cargo.toml);
    in
    {
      packages = forAll (pkgs: rec {
        rvbuild = pkgs.rustPlatform.buildRustPackage {
          pname = "rvbuild";
          version = cargoToml.package.version;
          src = self;
          cargoLock.lockFile = ./Cargo.lock;
          # The test suite needs Nix, QEMU, sshd and cross compilers at run time: `nix develop`
          # then `cargo nextest run`.
          doCheck = false;
          postInstall = ''
            mkdir -p $out/share/bash-completion/completions $out/share/zsh/site-functions \
                     $out/share/fish/vendor_completions.d $out/share/man/man1
            $out/bin/rvbuild completions bash > $out/share/bash-completion/completions/rvbuild
            $out/bin/rvbuild completions zsh > $out/share/zsh/site-functions/_rvbuild
            $out/bin/rvbuild completions fish > $out/share/fish/vendor_completions.d/rvbuild.fish
            $out/bin/rvbuild completions man > $out/share/man/man1/rvbuild.1
          '';
          meta.mainProgram = "rvbuild";
        };
        default = rvbuild;
      });

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            cargo rustc clippy rustfmt cargo-nextest
            qemu lrzsz socat openssh e2fsprogs util-linux dosfstools mtools cpio
            pkgsCross.riscv64.buildPackages.gcc
            pkgsCross.aarch64-multiplatform.buildPackages.gcc
          ];
        };
      });

      # Makes a NixOS machine an rvbuild builder: binfmt emulation of the target systems,
      # extra-platforms so Nix accepts their derivations, an SSH user the client logs in as,
      # trusted by the Nix daemon (needed to build input-addressed derivations remotely).
      nixosModules.builder = { config, lib, pkgs, ... }:
        let cfg = config.services.rvbuild-builder; in
        {
          options.services.rvbuild-builder = {
            enable = lib.mkEnableOption "serving Nix builds to rvbuild over SSH";
            user = lib.mkOption {
              type = lib.types.str;
              default = "rvbuild";
              description = "The account rvbuild logs in as.";
            };
            authorizedKeys = lib.mkOption {
              type = lib.types.listOf lib.types.str;
              default = [ ];
              description = "Public keys allowed to log in as the builder user.";
            };
            emulatedSystems = lib.mkOption {
              type = lib.types.listOf lib.types.str;
              default = [ "riscv64-linux" "aarch64-linux" ];
              description = "Target systems this machine builds through binfmt qemu-user.";
            };
            supportedFeatures = lib.mkOption {
              type = lib.types.listOf lib.types.str;
              default = [ "big-parallel" "benchmark" ];
              description = "Nix system features advertised to rvbuild.";
            };
          };
          config = lib.mkIf cfg.enable {
            boot.binfmt.emulatedSystems =
              lib.filter (s: s != pkgs.stdenv.hostPlatform.system) cfg.emulatedSystems;
            nix.settings = {
              extra-platforms = cfg.emulatedSystems;
              trusted-users = [ cfg.user ];
              system-features = cfg.supportedFeatures;
            };
            services.openssh.enable = true;
            users.users.${cfg.user} = {
              isNormalUser = true;
              openssh.authorizedKeys.keys = cfg.authorizedKeys;
            };
          };
        };

      # Build a board from Nix: rvbuild writes the board's nixpkgs-provider expression (import
      # from derivation), which is then evaluated against the caller's nixpkgs.
      #   (rvbuild.lib.boardComponents { pkgs = import nixpkgs { }; board = "visionfive2"; }).image
      lib = {
        boardExpression = { pkgs, board, profile ? "dev", project ? null }:
          pkgs.runCommand "rvbuild-${board}-expression" { nativeBuildInputs = [ self.packages.${pkgs.system}.rvbuild ]; } ''
            export XDG_CACHE_HOME=$out/cache
            rvbuild ${if project == null then "" else "--project ${project}"} \
              board ${board} --profile ${profile} --provider nixpkgs --expr-only --out $out
          '';
        boardComponents = { pkgs, board, profile ? "dev", project ? null }:
          import "${self.lib.boardExpression { inherit pkgs board profile project; }}/board.nix" {
            nixpkgs = pkgs.path;
          };
      };
    };
}
