# Run inside a builder VM's new root filesystem (chroot, by scripts/builder-vm.sh): the settings a
# board's owner makes on a VisionFive 2 or Raspberry Pi running Debian to serve as an rvbuild
# builder (nix/host/README.md), plus what only a VM needs (DHCP on QEMU's user network, the root
# key taken from the kernel command line, a root filesystem found by its label).
set -eu

# Nix, single-user as root, as on the build machine: no sandbox (the host provider's builders
# use the userland by its path), no substituters (offline), builds as the nixbld users.
mkdir -p /etc/nix /nix/store /nix/var/nix/gcroots /nix/var/nix/profiles
cat > /etc/nix/nix.conf <<CONF
sandbox = false
substituters =
build-users-group = nixbld
experimental-features = nix-command
max-jobs = auto
cores = 0
CONF
getent group nixbld >/dev/null || groupadd --system nixbld
for i in 1 2 3 4 5 6 7 8; do
  id "nixbld$i" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /var/empty \
    --shell /usr/sbin/nologin -g nixbld -G nixbld "nixbld$i"
done

# sshd: keys only.
mkdir -p /etc/ssh/sshd_config.d /root/.ssh
chmod 0700 /root/.ssh
printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n' \
  > /etc/ssh/sshd_config.d/rvbuild.conf

# VM only: the root key comes as base64 on the kernel command line (rvbuild.authorized_key=).
cat > /usr/local/sbin/rvbuild-authorized-key <<'SH'
#!/bin/sh
for w in $(cat /proc/cmdline); do
  case $w in rvbuild.authorized_key=*) echo "${w#*=}" | base64 -d > /root/.ssh/authorized_keys ;; esac
done
chmod 0600 /root/.ssh/authorized_keys 2>/dev/null || true
SH
chmod 0755 /usr/local/sbin/rvbuild-authorized-key
cat > /etc/systemd/system/rvbuild-authorized-key.service <<'UNIT'
[Unit]
Description=Root's SSH key from the kernel command line
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/rvbuild-authorized-key

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable rvbuild-authorized-key.service

# VM only: DHCP on QEMU's user network; the root filesystem by label.
mkdir -p /etc/systemd/network
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n' > /etc/systemd/network/50-dhcp.network
systemctl enable systemd-networkd.service
echo 'LABEL=rvbuild-root / ext4 defaults 0 1' > /etc/fstab
echo rvbuild-builder > /etc/hostname
# Nothing else to do at boot on a slow emulated machine.
systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
  fstrim.timer man-db.timer dpkg-db-backup.timer 2>/dev/null || true
