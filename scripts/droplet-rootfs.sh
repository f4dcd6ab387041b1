#!/bin/sh
# Build (once) the cached Debian root filesystem the end-to-end tests boot as a throw-away
# "droplet" with systemd-nspawn (tests/droplet.py). Idempotent; prints the rootfs path on stdout
# and its progress on stderr. Needs root. Installs debootstrap, systemd-container,
# openssh-client and debian-archive-keyring when missing.
#   scripts/droplet-rootfs.sh [RELEASE]   bookworm (Debian 12, the default), trixie (Debian 13)
#                                         or bullseye (Debian 11, for the preflight's refusal)
# Each release has its own cache directory (rootfs-RELEASE); one lock serialises the builds.
#
# The rootfs is built in a temporary directory next to the cache and renamed into place only
# when complete, so an interrupted build is never used. Its marker holds RECIPE: bump that
# when the build changes, and every cache is rebuilt instead of a stale one booting.
# Environment: DROPLET_MIRROR overrides the Debian mirror.
set -eu

RELEASE="${1:-bookworm}"
case "$RELEASE" in
    bullseye | bookworm | trixie) ;;
    *)
        echo "droplet-rootfs: unknown release '$RELEASE' (bullseye, bookworm or trixie)" >&2
        exit 2
        ;;
esac
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/binance-funding-ws"
ROOTFS="$CACHE/rootfs-$RELEASE"
MARKER="$ROOTFS/.bfws-complete"
DEFAULT_MIRROR="http://deb.debian.org/debian"
RECIPE=2  # 1: the first harness, without /etc/hosts nor the .ssh dirs
PACKAGES="systemd,systemd-sysv,dbus,openssh-server,python3,python3-venv,sudo,ca-certificates,procps"

log() { echo "droplet-rootfs: $*" >&2; }

install_tools() {
    need=""
    command -v debootstrap >/dev/null 2>&1 || need="$need debootstrap"
    command -v systemd-nspawn >/dev/null 2>&1 || need="$need systemd-container"
    command -v ssh-keygen >/dev/null 2>&1 || need="$need openssh-client"
    # debootstrap checks the Release signature with it; Ubuntu hosts lack it by default.
    [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need="$need debian-archive-keyring"
    [ -z "$need" ] && return 0
    log "installing$need"
    apt-get update -qq
    # shellcheck disable=SC2086  # $need is a word list on purpose
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
}

# Mirrors this machine's apt already uses (one-line and deb822 formats).
apt_mirrors() {
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; break } }'
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }'
}

serves_release() {
    wget -q --spider --tries=1 --timeout=15 "${1%/}/dists/$RELEASE/Release"
}

# deb.debian.org unless it is unreachable here (a firewalled CI, say) and a mirror from the
# host's own apt sources serves the release. DROPLET_MIRROR wins over both.
pick_mirror() {
    if [ -n "${DROPLET_MIRROR:-}" ]; then
        echo "$DROPLET_MIRROR"
        return
    fi
    for mirror in "$DEFAULT_MIRROR" $(apt_mirrors | awk '!seen[$0]++'); do
        if serves_release "$mirror"; then
            echo "${mirror%/}"
            return
        fi
    done
    log "no mirror answered; trying $DEFAULT_MIRROR anyway"
    echo "$DEFAULT_MIRROR"
}

# An interrupted debootstrap can leave /proc or /sys mounted inside its target: unmount
# them first, and never let rm cross into a mount, so cleaning up cannot touch the host.
remove_tree() {
    [ -e "$1" ] || return 0
    awk -v prefix="$1/" 'index($2, prefix) == 1 { print $2 }' /proc/mounts | sort -r \
        | while read -r mount; do umount -l "$mount" || true; done
    rm -rf --one-file-system "$1"
}

configure() {
    target="$1"
    echo droplet >"$target/etc/hostname"
    # Without it sudo warns "unable to resolve host droplet" on every call.
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tdroplet\n::1\tlocalhost ip6-localhost\n' \
        >"$target/etc/hosts"
    # Root logs in by key only; each droplet adds its own port and keys (tests/droplet.py).
    cat >"$target/etc/ssh/sshd_config.d/10-droplet.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF
    rm -f "$target"/etc/ssh/ssh_host_*  # every droplet gets its own host keys
    chroot "$target" systemctl enable ssh.service >/dev/null 2>&1
    # Nothing in a test droplet needs these; they only slow the boot or fail in a container.
    chroot "$target" systemctl mask apt-daily.timer apt-daily-upgrade.timer \
        e2scrub_reap.service systemd-timesyncd.service >/dev/null 2>&1 || true
    # A sudo user, for Ansible's become with a non-root login.
    chroot "$target" useradd --create-home --shell /bin/bash deployer
    install -d -m 0700 "$target/root/.ssh"
    chroot "$target" install -d -m 0700 -o deployer -g deployer /home/deployer/.ssh
    echo "deployer ALL=(ALL) NOPASSWD:ALL" >"$target/etc/sudoers.d/deployer"
    chmod 0440 "$target/etc/sudoers.d/deployer"
    chroot "$target" visudo -cq
    # The deploy creates a venv with pip: prove that works before calling the rootfs done.
    chroot "$target" python3 -m venv /tmp/venv-check
    rm -rf "$target/tmp/venv-check"
}

build() {
    building="$CACHE/.rootfs-building.$RELEASE.$$"
    mirror="$(pick_mirror)"
    log "debootstrap $RELEASE from $mirror into $ROOTFS (about a minute, once)"
    debootstrap --variant=minbase --include="$PACKAGES" "$RELEASE" "$building" "$mirror" >&2
    configure "$building"
    echo "$RECIPE" >"$building/.bfws-complete"
    # An older recipe's rootfs: move it aside, then delete it. (A droplet still running on
    # it elsewhere would lose its lower layer; recipes change rarely enough to accept that.)
    if [ -e "$ROOTFS" ]; then
        mv "$ROOTFS" "$CACHE/.rootfs-stale.$RELEASE.$$"
        remove_tree "$CACHE/.rootfs-stale.$RELEASE.$$"
    fi
    mv "$building" "$ROOTFS"
}

if [ "$(id -u)" -ne 0 ]; then
    log "needs root"
    exit 1
fi
install_tools
mkdir -p "$CACHE"
exec 9>"$CACHE/.rootfs.lock"
# Two test runs at once: the second waits, then finds the rootfs built.
flock -n 9 || { log "waiting for another build to finish"; flock 9; }
if [ "$(cat "$MARKER" 2>/dev/null)" != "$RECIPE" ]; then
    for leftover in "$CACHE"/.rootfs-building.* "$CACHE"/.rootfs-stale.*; do
        remove_tree "$leftover"  # from an interrupted build; safe, we hold the lock
    done
    build
fi
echo "$ROOTFS"
