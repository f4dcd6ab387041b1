#!/bin/sh
# Build (once) the cached Debian 12 root filesystem the end-to-end tests boot as a throw-away
# "droplet" with systemd-nspawn. Idempotent; prints the rootfs path on stdout.
# Needs root. Installs debootstrap, systemd-container and openssh-client when missing.
set -eu

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/binance-funding-ws"
ROOTFS="$CACHE/rootfs-bookworm"
MARKER="$ROOTFS/.bfws-complete"
MIRROR="${DROPLET_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="systemd,systemd-sysv,dbus,openssh-server,python3,python3-venv,sudo,ca-certificates,procps"

if [ "$(id -u)" -ne 0 ]; then
    echo "droplet-rootfs: needs root" >&2
    exit 1
fi

need=""
command -v debootstrap >/dev/null 2>&1 || need="$need debootstrap"
command -v systemd-nspawn >/dev/null 2>&1 || need="$need systemd-container"
command -v ssh >/dev/null 2>&1 || need="$need openssh-client"
if [ -n "$need" ]; then
    echo "droplet-rootfs: installing$need" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.rootfs.lock"
flock 9  # two test runs at once build it once

if [ ! -f "$MARKER" ]; then
    building="$CACHE/.rootfs-building.$$"
    rm -rf "$building" "$ROOTFS"
    echo "droplet-rootfs: debootstrap bookworm into $ROOTFS (about a minute, once)" >&2
    debootstrap --variant=minbase --include="$PACKAGES" bookworm "$building" "$MIRROR" >&2
    echo droplet >"$building/etc/hostname"
    # Root may log in by key only; the per-test copy adds the port and the keys.
    cat >"$building/etc/ssh/sshd_config.d/10-droplet.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF
    rm -f "$building"/etc/ssh/ssh_host_*  # every copy gets its own host keys
    chroot "$building" systemctl enable ssh.service >/dev/null 2>&1
    # Nothing in a test droplet needs these; they only slow the boot or fail in a container.
    chroot "$building" systemctl mask apt-daily.timer apt-daily-upgrade.timer \
        e2scrub_reap.service systemd-timesyncd.service >/dev/null 2>&1 || true
    # A sudo user, for Ansible's become with a non-root login.
    chroot "$building" useradd --create-home --shell /bin/bash deployer
    echo "deployer ALL=(ALL) NOPASSWD:ALL" >"$building/etc/sudoers.d/deployer"
    chmod 0440 "$building/etc/sudoers.d/deployer"
    chroot "$building" python3 -c "import ensurepip, venv"
    touch "$building/.bfws-complete"
    mv "$building" "$ROOTFS"
fi
echo "$ROOTFS"
