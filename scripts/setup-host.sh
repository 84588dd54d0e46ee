#!/usr/bin/env bash
# Installs and configures everything rvbuild and its test suite need on a Debian 12 machine:
# apt packages (bookworm + bookworm-backports for QEMU/OpenSBI), firmware packages of other
# architectures (private apt configuration), Nix (single-user, sandbox off for the host
# provider) and binfmt registrations for riscv64/aarch64 qemu-user. Rust itself (cargo, edition
# 2024) must already be installed, e.g. with rustup.
# Idempotent: safe to run on every CI run and on a developer machine.
set -euo pipefail

log() { printf '[setup] %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

# --- apt sources: bookworm-backports, from the same mirror the machine already uses -----------
# shellcheck source=lib/debian.sh
source "$(dirname "$0")/lib/debian.sh"
if ! mirror=$(debian_mirror); then
  echo "setup: cannot find the Debian mirror in /etc/apt/sources.list(.d); add bookworm-backports by hand" >&2
  exit 1
fi
bp=/etc/apt/sources.list.d/rvbuild-backports.sources
if [ ! -f "$bp" ]; then
  log "adding bookworm-backports ($mirror)"
  $SUDO tee "$bp" >/dev/null <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

stamp=/var/lib/rvbuild-setup.stamp
want_version=7
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want_version" ]; then
  log "apt-get update"
  for i in 1 2 3; do $SUDO apt-get update -qq && break; sleep 5; done
  log "installing packages"
  $SUDO apt-get install -y -qq --no-install-recommends \
    nix-bin \
    gcc-riscv64-linux-gnu gcc-aarch64-linux-gnu libc6-dev-riscv64-cross libc6-dev-arm64-cross \
    linux-source-6.12 flex bison bc libssl-dev libelf-dev cpio xz-utils kmod \
    u-boot-qemu fdisk e2fsprogs mtools dosfstools \
    qemu-user-static binfmt-support mmdebstrap arch-test \
    openssh-server openssh-client lrzsz socat iproute2 util-linux distcc distcc-pump python3-lzo \
    binutils file ca-certificates build-essential pkg-config make >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports \
    qemu-system-misc qemu-system-arm qemu-system-data opensbi >/dev/null
  echo "$want_version" | $SUDO tee "$stamp" >/dev/null
fi

# tmux: the live view's test runs rvbuild in a real terminal (tests/ssh_live_view.rs).
command -v tmux >/dev/null || $SUDO apt-get install -y -qq --no-install-recommends tmux >/dev/null
# qemu-img (qcow2 overlays of the builder VMs' root images, scripts/builder-vm.sh).
command -v qemu-img >/dev/null || $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-utils >/dev/null

# --- firmware from packages of other architectures/suites -------------------------------------
# Debian 13's u-boot-starfive (riscv64), Debian 12's u-boot-rpi (arm64) and raspi-firmware
# (non-free-firmware) are fetched with a private apt configuration (own sources list and state
# directory) and unpacked below $fwroot, which rvbuild searches as a prefix of the firmware paths
# in board profiles. The machine's own dpkg architectures and apt state are never touched.
fwroot=${RVBUILD_FIRMWARE_ROOT:-/var/lib/rvbuild/firmware-root}
fetch_foreign() { # arch suite components package...
  local arch=$1 suite=$2 comps=$3; shift 3
  local d; d=$(mktemp -d)
  if private_apt_download "$d/apt" "$arch" "$suite" "$comps" "$d/debs" "$@"; then
    for deb in "$d"/debs/*.deb; do
      $SUDO dpkg-deb -x "$deb" "$fwroot"
      dpkg-deb -f "$deb" Package Version Architecture | tr '\n' ' ' | $SUDO tee -a "$fwroot/.rvbuild-packages" >/dev/null
      echo | $SUDO tee -a "$fwroot/.rvbuild-packages" >/dev/null
    done
    log "firmware: unpacked $* ($arch, $suite) into $fwroot"
  else
    echo "setup: could not fetch $* ($arch, $suite); boards that need them will say which file is missing" >&2
  fi
  rm -rf "$d"
}
$SUDO mkdir -p "$fwroot"
fwstamp="$fwroot/.rvbuild-stamp"
fw_version=3
if [ "$(cat "$fwstamp" 2>/dev/null || true)" != "$fw_version" ]; then
  $SUDO rm -f "$fwroot/.rvbuild-packages"
  fetch_foreign riscv64 stable main u-boot-starfive
  fetch_foreign arm64 bookworm "main non-free-firmware" u-boot-rpi raspi-firmware
  echo "$fw_version" | $SUDO tee "$fwstamp" >/dev/null
fi

# --- test firmware: Debian 13's u-boot-sifive (riscv64) ---------------------------------------
# For the SPI NOR flash test on QEMU's sifive_u machine (tests/qemu_flash_spi_nor.rs). Unpacked
# apart from the firmware root: no board uses it, so board builds do not depend on it.
testfw=${RVBUILD_TEST_FIRMWARE:-/var/lib/rvbuild/test-firmware}
if [ "$(cat "$testfw/.rvbuild-stamp" 2>/dev/null || true)" != "1" ]; then
  d=$(mktemp -d)
  if private_apt_download "$d/apt" riscv64 stable main "$d/debs" u-boot-sifive; then
    $SUDO mkdir -p "$testfw"
    for deb in "$d"/debs/*.deb; do $SUDO dpkg-deb -x "$deb" "$testfw"; done
    echo 1 | $SUDO tee "$testfw/.rvbuild-stamp" >/dev/null
    log "test firmware: unpacked u-boot-sifive into $testfw"
  else
    echo "setup: could not fetch u-boot-sifive; the SPI NOR flash test will say so" >&2
  fi
  rm -rf "$d"
fi

# --- binfmt: qemu-user for riscv64 and aarch64 ------------------------------------------------
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  $SUDO mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
fi
for a in riscv64 aarch64; do
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-$a ]; then
    $SUDO update-binfmts --enable qemu-$a 2>/dev/null || \
      $SUDO update-binfmts --import qemu-$a 2>/dev/null || true
  fi
done

# --- target-system userlands ------------------------------------------------------------------
# A native Debian userland per target arch (gcc, libc6-dev, make) for the host provider's
# target-system derivations: their builder is the userland's bash run by binfmt qemu-user with
# QEMU_LD_PREFIX pointing at it (see nix/host/README.md). riscv64 comes from `stable` (Debian 13;
# the trixie riscv64 index was seen out of sync), arm64 from bookworm. The stamp file
# .rvbuild-userland holds the request and every installed package's version: rvbuild hashes it
# into the derivations, so a changed userland rebuilds what was built with it.
userland_root=${RVBUILD_USERLAND_ROOT:-/var/lib/rvbuild}
userland_pkgs="gcc,libc6-dev,make"
make_userland() { # debian-arch suite
  local arch=$1 suite=$2
  local dir="$userland_root/userland-$arch" want="rvbuild-userland 1 $arch $suite $userland_pkgs"
  if [ "$(head -n1 "$dir/.rvbuild-userland" 2>/dev/null || true)" = "$want" ] && [ -x "$dir/usr/bin/gcc" ]; then
    return 0
  fi
  local tmp="$dir.partial" start=$SECONDS attempt
  for attempt in 1 2; do
    $SUDO rm -rf "$tmp"
    log "userland: mmdebstrap $arch $suite (+$userland_pkgs) into $dir (attempt $attempt)"
    if $SUDO mmdebstrap --quiet --arch="$arch" --variant=apt --include="$userland_pkgs" \
         --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
         --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
         "$suite" "$tmp" "$mirror" && [ -x "$tmp/usr/bin/gcc" ]; then
      { echo "$want"
        dpkg-query --admindir="$tmp/var/lib/dpkg" -W -f '${Package} ${Version} ${Architecture}\n' | sort
      } | $SUDO tee "$tmp/.rvbuild-userland" >/dev/null
      # Nix builds run as the nixbld users: they must traverse and read the userland.
      $SUDO chmod 0755 "$tmp"
      $SUDO rm -rf "$dir"
      $SUDO mv "$tmp" "$dir"
      log "userland: $arch ready in $((SECONDS - start)) s ($($SUDO du -sh "$dir" | cut -f1))"
      return 0
    fi
    sleep 5
  done
  $SUDO rm -rf "$tmp"
  echo "setup: could not create the $arch userland in $dir; target-system builds for $arch will say it is missing" >&2
}
$SUDO mkdir -p "$userland_root"
# One after the other: run side by side on a busy 2-core machine they took longer in all
# (389 s) than in turn (about 300 s).
make_userland riscv64 stable
make_userland arm64 bookworm

# --- lab tools: labgrid (PyPI, in a venv), LAVA's schemas and device-type templates ------------
# tests/lab_export.rs validates LAVA jobs with Debian's lava-common and renders device
# dictionaries with lava-server's device-type templates (only those files are unpacked from the
# package; no LAVA server is installed); tests/qemu_labgrid.rs drives QEMU's U-Boot with
# labgrid's pytest plugin from the venv.
lab_root=${RVBUILD_LAB_ROOT:-/var/lib/rvbuild/lab}
labgrid_version=26.0.1
lab_want="rvbuild-lab 1 labgrid $labgrid_version lava-server bookworm"
if [ "$(cat "$lab_root/.rvbuild-lab" 2>/dev/null || true)" != "$lab_want" ]; then
  log "lab tools: lava-common, lava-server's device types, labgrid $labgrid_version in $lab_root"
  $SUDO apt-get install -y -qq --no-install-recommends lava-common python3-jinja2 python3-yaml python3-venv >/dev/null
  $SUDO mkdir -p "$lab_root"
  d=$(mktemp -d)
  chmod 0755 "$d"
  if (cd "$d" && apt-get download lava-server >/dev/null 2>&1) && dpkg-deb -x "$d"/lava-server_*.deb "$d/x"; then
    $SUDO rm -rf "$lab_root/lava-device-types"
    $SUDO cp -r "$d/x/usr/share/lava-server/device-types" "$lab_root/lava-device-types"
  else
    echo "setup: could not download lava-server (for its device-type templates)" >&2
  fi
  rm -rf "$d"
  $SUDO rm -rf "$lab_root/labgrid-venv"
  $SUDO /usr/bin/python3 -m venv "$lab_root/labgrid-venv"
  for i in 1 2 3; do
    $SUDO "$lab_root/labgrid-venv/bin/pip" install -q --disable-pip-version-check "labgrid==$labgrid_version" && break
    sleep 5
  done
  if [ -d "$lab_root/lava-device-types" ] && "$lab_root/labgrid-venv/bin/python" -c 'import labgrid' 2>/dev/null; then
    echo "$lab_want" | $SUDO tee "$lab_root/.rvbuild-lab" >/dev/null
  fi
fi

# --- Nix: single-user as root, no sandbox (the host provider uses host toolchains) -------------
$SUDO mkdir -p /etc/nix
conf=/etc/nix/nix.conf
touch_conf() {
  local key=$1 value=$2
  if grep -qE "^[[:space:]]*$key[[:space:]]*=" "$conf" 2>/dev/null; then
    $SUDO sed -i -E "s|^[[:space:]]*$key[[:space:]]*=.*|$key = $value|" "$conf"
  else
    echo "$key = $value" | $SUDO tee -a "$conf" >/dev/null
  fi
}
touch_conf sandbox false
touch_conf substituters ""
touch_conf build-users-group nixbld
touch_conf experimental-features nix-command
touch_conf max-jobs auto
touch_conf cores 0
# Target-system derivations run locally through binfmt qemu-user.
touch_conf extra-platforms "riscv64-linux aarch64-linux"
# Debian's nix-bin creates the nixbld users through its postinst; make sure the store exists.
$SUDO mkdir -p /nix/store /nix/var/nix/gcroots /nix/var/nix/profiles
if ! getent group nixbld >/dev/null; then
  $SUDO groupadd --system nixbld
fi
for i in $(seq 1 8); do
  if ! id "nixbld$i" >/dev/null 2>&1; then
    $SUDO useradd --system --no-create-home --home-dir /var/empty --shell /usr/sbin/nologin \
      -g nixbld -G nixbld "nixbld$i"
  fi
done
# nixbld users must read the kernel source tarball and host toolchains (they do by default).


log "done: nix $(nix-store --version | awk '{print $NF}'), $(qemu-system-riscv64 --version | head -1)"
