#!/usr/bin/env bash
# A real RISC-V or ARM64 Nix builder in QEMU, a stand-in for a VisionFive 2 or Raspberry Pi on
# the desk: Debian's own kernel and initrd on qemu-system-riscv64 / qemu-system-aarch64 `virt`,
# a root filesystem made with mmdebstrap (riscv64: Debian 13 `stable`, nix-bin 2.26; arm64:
# Debian 12 bookworm, nix-bin 2.8) with openssh-server, nix-bin and the userland of the host
# provider's target-system derivations, set up the way nix/host/README.md tells a board's owner.
#
#   scripts/builder-vm.sh up riscv64|aarch64 [--port P] [--cpus N] [--mem M] [--key FILE]
#   scripts/builder-vm.sh down riscv64|aarch64
#   scripts/builder-vm.sh image riscv64|aarch64      (only make the cached root image)
#
# `up` boots the VM (user-mode networking, only SSH forwarded to 127.0.0.1:P, root login with
# the client key only), waits until SSH answers with the image's own host key, then prints one
# line in Nix's machines format for rvbuild's --builders:
#   ssh://root@127.0.0.1:P riscv64-linux KEYFILE JOBS 1 - - BASE64HOSTKEY
# The root image is made once (first `up`, several minutes under qemu-user) and cached below
# $RVBUILD_VM_ROOT (default /var/lib/rvbuild/vm), keyed by a stamp of what it was made from;
# every `up` boots a fresh copy-on-write overlay of it. The serial console goes to
# <state>/<arch>/console.log. Exit codes: 0 ok, 2 bad arguments, 8 a prerequisite is missing,
# 1 the image could not be made or the VM did not answer (the console log says why).
set -euo pipefail

log() { printf '[builder-vm] %s\n' "$*" >&2; }
die() { local code=$1; shift; printf 'builder-vm: %s\n' "$*" >&2; exit "$code"; }
usage() { sed -n '9,12p' "$0" | sed 's/^# *//' >&2; exit 2; }

[ $# -ge 2 ] || usage
cmd=$1 arch=$2; shift 2
port="" cpus=2 mem=2048 key=""
while [ $# -gt 0 ]; do
  case $1 in
    --port) port=${2:?}; shift 2 ;;
    --cpus) cpus=${2:?}; shift 2 ;;
    --mem) mem=${2:?}; shift 2 ;;
    --key) key=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done
case $arch in
  riscv64) deb_arch=riscv64 suite=stable kpkg=linux-image-riscv64 system=riscv64-linux default_port=2264 ;;
  aarch64) deb_arch=arm64 suite=bookworm kpkg=linux-image-arm64 system=aarch64-linux default_port=2265 ;;
  *) die 2 "unknown architecture '$arch' (riscv64 or aarch64)" ;;
esac
port=${port:-$default_port}
for v in "$port" "$cpus" "$mem"; do
  [[ $v =~ ^[0-9]+$ ]] || die 2 "'$v' is not a number (--port, --cpus and --mem take numbers)"
done

here=$(cd "$(dirname "$0")" && pwd)
vm_root=${RVBUILD_VM_ROOT:-/var/lib/rvbuild/vm}
userland_root=${RVBUILD_USERLAND_ROOT:-/var/lib/rvbuild}
img_dir="$vm_root/image-$deb_arch"
run_dir="$vm_root/$arch"
# What the image holds beyond Debian's `apt` variant: the kernel, init, network, sshd, Nix, and
# the host provider's userland packages (nix/host/README.md).
pkgs="$kpkg,initramfs-tools,systemd-sysv,udev,iproute2,openssh-server,nix-bin,gcc,libc6-dev,make"
host_stamp="$userland_root/userland-$deb_arch/.rvbuild-userland"

# --- the root image ---------------------------------------------------------------------------
# The userland stamp of the build machine is part of the image's key: the VM adopts it (after
# checking that every package it lists is installed in the VM at that version), so a changed
# userland on the build machine remakes the image.
image_want() {
  local s="none"
  [ -r "$host_stamp" ] && s=$(sha256sum < "$host_stamp" | cut -d' ' -f1)
  echo "rvbuild-vm 2 $deb_arch $suite $pkgs userland=$s"
}

make_image() {
  [ -r "$host_stamp" ] || die 8 "no $deb_arch userland on this machine ($host_stamp): run scripts/setup-host.sh first"
  for t in mmdebstrap mke2fs qemu-img; do
    command -v "$t" >/dev/null || die 8 "$t is missing: run scripts/setup-host.sh"
  done
  # shellcheck source=lib/debian.sh
  source "$here/lib/debian.sh"
  local mirror; mirror=$(debian_mirror) || die 8 "no Debian mirror configured in apt's sources"
  local tmp="$img_dir.partial" start=$SECONDS
  rm -rf "$tmp"; mkdir -p "$tmp"
  cp "$host_stamp" "$tmp/userland-stamp"
  cp "$here/userland-adopt.sh" "$tmp/userland-adopt.sh"
  log "image: mmdebstrap $deb_arch $suite (+$pkgs) (several minutes under qemu-user)"
  # VM only: the initrd holds just what QEMU's virt machine needs to mount the root (virtio
  # disk, ext4): with Debian's default MODULES=most, mkinitramfs under qemu-user took most of
  # the image's time (over 20 minutes for arm64). The customize hooks do, inside the new system, what a board's owner does on the board: the
  # Nix settings of nix/host/README.md, a DHCP network, the root key from the kernel command
  # line, and the userland (a link to / plus the build machine's stamp, checked).
  mmdebstrap --quiet --arch="$deb_arch" --variant=apt --include="$pkgs" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"' \
    --essential-hook='echo MODULES=list > "$1/etc/initramfs-tools/conf.d/rvbuild-vm.conf"' \
    --essential-hook='printf "%s\n" virtio_pci virtio_blk ext4 crc32c_generic libcrc32c > "$1/usr/share/initramfs-tools/modules.d/rvbuild-vm"' \
    --customize-hook="cp '$tmp/userland-stamp' \"\$1/root/build-machine-userland-stamp\"" \
    --customize-hook="cp '$tmp/userland-adopt.sh' \"\$1/root/userland-adopt.sh\"" \
    --customize-hook="cp '$here/lib/builder-vm-guest.sh' \"\$1/root/guest-setup.sh\"" \
    --customize-hook='chroot "$1" sh /root/guest-setup.sh' \
    --customize-hook="chroot \"\$1\" sh /root/userland-adopt.sh /root/build-machine-userland-stamp $deb_arch" \
    "$suite" "$tmp/root" "$mirror" || die 1 "mmdebstrap failed for $deb_arch $suite"
  local k i
  k=$(ls "$tmp"/root/boot/vmlinu[xz]-* 2>/dev/null | head -n1)
  i=$(ls "$tmp"/root/boot/initrd.img-* 2>/dev/null | head -n1)
  [ -n "$k" ] && [ -n "$i" ] || die 1 "the image has no kernel or initrd in /boot"
  cp "$k" "$tmp/kernel"; cp "$i" "$tmp/initrd"
  cp "$tmp/root/etc/ssh/ssh_host_ed25519_key.pub" "$tmp/host_key.pub"
  # 8 GiB sparse: the builder's Nix store grows inside it.
  mke2fs -q -t ext4 -L rvbuild-root -d "$tmp/root" "$tmp/root.img" 8G || die 1 "mke2fs failed"
  rm -rf "$tmp/root"
  image_want > "$tmp/.rvbuild-vm"
  rm -rf "$img_dir"; mv "$tmp" "$img_dir"
  log "image: $deb_arch ready in $((SECONDS - start)) s ($(du -sh "$img_dir" | cut -f1))"
}

ensure_image() {
  if [ "$(cat "$img_dir/.rvbuild-vm" 2>/dev/null || true)" != "$(image_want)" ] || [ ! -f "$img_dir/root.img" ]; then
    make_image
  fi
}

# --- up / down --------------------------------------------------------------------------------
vm_pid() { local p; p=$(cat "$run_dir/pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null && echo "$p"; }

down() {
  local p
  if p=$(vm_pid); then
    kill "$p"
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    log "$arch: stopped (pid $p)"
  fi
  rm -f "$run_dir/pid" "$run_dir/overlay.qcow2"
}

up() {
  if vm_pid >/dev/null; then die 2 "the $arch VM already runs (pid $(vm_pid)); '$0 down $arch' first"; fi
  local qemu; qemu=qemu-system-$arch
  command -v "$qemu" >/dev/null || die 8 "$qemu is missing: run scripts/setup-host.sh"
  ensure_image
  mkdir -p "$run_dir"; chmod 0700 "$run_dir"
  if [ -z "$key" ]; then
    key="$run_dir/id_ed25519"
    [ -f "$key" ] || ssh-keygen -q -t ed25519 -N '' -C "rvbuild-builder-vm" -f "$key"
  fi
  [ -r "$key.pub" ] || die 2 "no public key $key.pub next to the client key $key"
  local pub; pub=$(base64 -w0 < "$key.pub")
  qemu-img create -q -f qcow2 -F raw -b "$img_dir/root.img" "$run_dir/overlay.qcow2"
  : > "$run_dir/console.log"
  local machine=(-M virt) console=ttyS0 bios=(-bios default)
  if [ "$arch" = aarch64 ]; then machine=(-M virt -cpu cortex-a72); console=ttyAMA0; bios=(); fi
  local start=$SECONDS
  "$qemu" "${machine[@]}" "${bios[@]}" -smp "$cpus" -m "$mem" \
    -kernel "$img_dir/kernel" -initrd "$img_dir/initrd" \
    -append "root=LABEL=rvbuild-root rw console=$console rvbuild.authorized_key=$pub" \
    -drive "if=none,id=hd,format=qcow2,file=$run_dir/overlay.qcow2" -device virtio-blk-pci,drive=hd \
    -netdev "user,id=net,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=net,romfile= \
    -display none -monitor none -serial "file:$run_dir/console.log" \
    -pidfile "$run_dir/pid" -daemonize || die 1 "$qemu did not start (port $port in use?)"
  printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$img_dir/host_key.pub")" > "$run_dir/known_hosts"
  local ssh=(ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$run_dir/known_hosts"
             -o ConnectTimeout=10 -i "$key" -p "$port" root@127.0.0.1)
  log "$arch: booting (console: $run_dir/console.log)"
  local deadline=$((SECONDS + ${RVBUILD_VM_BOOT_TIMEOUT:-900}))
  until "${ssh[@]}" nix-store --version >/dev/null 2>&1; do
    vm_pid >/dev/null || die 1 "$arch: QEMU exited during boot; see $run_dir/console.log"
    [ $SECONDS -lt $deadline ] || { down; die 1 "$arch: no SSH answer on 127.0.0.1:$port; see $run_dir/console.log"; }
    sleep 5
  done
  local nproc; nproc=$("${ssh[@]}" nproc)
  log "$arch: SSH answers after $((SECONDS - start)) s ($("${ssh[@]}" nix-store --version))"
  echo "$port" > "$run_dir/port"
  printf 'ssh://root@127.0.0.1:%s %s %s %s 1 - - %s\n' "$port" "$system" "$key" "$nproc" \
    "$(base64 -w0 < "$img_dir/host_key.pub")"
}

case $cmd in
  up) up ;;
  down) down ;;
  image) ensure_image; log "image: $img_dir" ;;
  *) usage ;;
esac
