"""The droplet harness itself (tests/droplet.py): one systemd-nspawn container booted for the
module, checked for what the deploy and monitor end-to-end tests rely on.

The tests share the droplet and run in file order; the last one stops it and checks that
nothing is left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from droplet import RELEASES, ROOT, ROOTFS_SCRIPT, Droplet, ensure_rootfs, skip_reason

# The first test may build the cached rootfs (debootstrap, about a minute on a clean machine).
# One droplet for the module, its tests in order: on one xdist worker.
pytestmark = [
    pytest.mark.root,
    pytest.mark.timeout(900),
    pytest.mark.xdist_group("droplet-harness"),
]

ANSIBLE = Path(sys.executable).with_name("ansible")
BECOME_ID = ("-m", "command", "-a", "id -un")  # who a become task runs as


@pytest.fixture(scope="module")
def droplet(tmp_path_factory):
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    rootfs = ensure_rootfs()
    with Droplet(tmp_path_factory.mktemp("droplet"), rootfs) as running:
        yield running


def ssh_with(droplet: Droplet, known_hosts: Path) -> subprocess.CompletedProcess[str]:
    """`ssh true` with strict host-key checking against the given known_hosts file."""
    return subprocess.run(
        [
            "ssh",
            *("-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes"),
            *("-o", f"UserKnownHostsFile={known_hosts}"),
            *("-i", str(droplet.key_path), "-p", str(droplet.ssh_port)),
            "root@127.0.0.1",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_boots_in_seconds(droplet):
    print(f"root {droplet.copy_seconds:.2f} s, boot {droplet.boot_seconds:.2f} s")
    assert droplet.boot_seconds < 30
    assert droplet.ssh("systemctl", "is-system-running").stdout.strip() == "running", (
        droplet.failed_units
    )


def test_systemd_is_pid_1(droplet):
    assert droplet.ssh("ps", "-p", "1", "-o", "comm=").stdout.strip() == "systemd"


def test_journald_records_what_logger_sends(droplet):
    tag, message = f"droplet-test-{uuid.uuid4().hex[:6]}", "hello from the harness test"
    droplet.ssh("logger", "-t", tag, message)
    # logger returns once the datagram is sent; journald may not have written it yet.
    for _ in range(50):
        logged = droplet.ssh("journalctl", "-t", tag, "-o", "cat", "--no-pager").stdout.strip()
        if logged:
            break
        time.sleep(0.1)
    assert logged == message


def test_systemd_analyze_security_runs(droplet):
    out = droplet.ssh("systemd-analyze", "security", "--no-pager").stdout
    assert "ssh.service" in out


def test_python_venv_with_pip_works(droplet):
    droplet.ssh("python3", "-m", "venv", "/tmp/venv", timeout=120)
    assert droplet.ssh("/tmp/venv/bin/pip", "--version").stdout.startswith("pip ")


def test_known_hosts_pins_the_droplets_host_keys(droplet):
    assert ssh_with(droplet, droplet.known_hosts).returncode == 0
    pinned = droplet.host_public_key.read_text().split()[1]
    assert pinned in droplet.known_hosts.read_text()


def test_an_unknown_host_key_is_refused(droplet, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.touch()
    refused = ssh_with(droplet, empty)
    assert refused.returncode == 255
    assert "Host key verification failed" in refused.stderr
    assert empty.read_text() == ""  # strict checking never learns a key on its own


def test_a_changed_host_key_is_refused(droplet, tmp_path):
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    key_type, key = other.with_suffix(".pub").read_text().split()[:2]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{droplet.ssh_port} {key_type} {key}\n")
    refused = ssh_with(droplet, wrong)
    assert refused.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr


def test_deployer_has_passwordless_sudo(droplet):
    result = droplet.ssh("sudo", "-n", "id", "-u", user="deployer")
    assert result.stdout.strip() == "0"
    assert result.stderr == ""  # e.g. no "unable to resolve host" warning to confuse Ansible


def test_root_cannot_log_in_with_a_password(droplet):
    config = droplet.ssh("sshd", "-T").stdout
    assert "permitrootlogin without-password" in config  # sshd -T's name for prohibit-password
    assert "passwordauthentication no" in config
    assert f"port {droplet.ssh_port}" in config
    assert "listenaddress 127.0.0.1" in config


def test_ansible_reaches_the_inventory_as_root_and_as_deployer(droplet, tmp_path):
    if not ANSIBLE.exists():
        pytest.skip("ansible is not installed (./scripts/bootstrap.sh test)")
    for user in ("root", "deployer"):
        inventory = droplet.write_inventory(tmp_path / f"{user}.yml", user=user, extra_var=1)
        result = subprocess.run(
            [str(ANSIBLE), "-i", str(inventory), "volspike-do", "--become", *BECOME_ID],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOST_KEY_CHECKING": "True"},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "CHANGED" in result.stdout and "root" in result.stdout


def test_each_release_has_a_cached_rootfs_of_its_own():
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    for release, version in RELEASES.items():  # built here if missing (1-2 minutes each)
        rootfs = ensure_rootfs(release)
        assert rootfs.name == f"rootfs-{release}"
        assert f'VERSION_ID="{version}"' in (rootfs / "etc/os-release").read_text()


def test_the_rootfs_script_refuses_an_unknown_release_in_one_line():
    result = subprocess.run(
        ["sh", str(ROOTFS_SCRIPT), "sid"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "droplet-rootfs: unknown release 'sid' (bullseye, bookworm or trixie)\n"


def test_two_droplets_never_share_a_units_control_group(droplet, tmp_path):
    # systemd-nspawn puts a container under the cgroup it was started in. Two droplets
    # started from one cgroup shared every unit's cgroup: each systemd saw the other's
    # processes in its service (and failed to kill them), as the deploy tests' two releases,
    # side by side with the same service, did.
    with Droplet(tmp_path / "other", ensure_rootfs("trixie"), release="trixie") as other:
        for each in (droplet, other):
            each.ssh("systemd-run", "--unit=probe", "sleep", "infinity")
        try:
            for each in (droplet, other):
                main = each.ssh("systemctl", "show", "probe", "-p", "MainPID", "--value").stdout
                assert unit_processes(each, "probe") == main.split()
        finally:
            droplet.ssh("systemctl", "stop", "probe")


def unit_processes(droplet: Droplet, unit: str) -> list[str]:
    """The PIDs in the unit's cgroup, as the droplet sees them (0: one it cannot see)."""
    cgroup = droplet.ssh("systemctl", "show", unit, "-p", "ControlGroup", "--value").stdout
    mount = droplet.ssh("findmnt", "-t", "cgroup2", "-n", "-o", "TARGET").stdout.split()[0]
    return droplet.ssh("cat", f"{mount}{cgroup.strip()}/cgroup.procs").stdout.split()


def test_a_read_only_cgroup_filesystem_is_a_reason_to_skip_said_in_one_line():
    # In a mount namespace of its own: the host's cgroup mounts stay writable.
    script = (
        "for mount in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do"
        ' mount -o bind,remount,ro "$mount" || exit 3; done; exec "$0" -c "$1"'
    )
    probe = f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); import droplet; "
    probe += "print(droplet.skip_reason())"
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, sys.executable, probe],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    reason = "the cgroup filesystem is read-only here: a droplet cannot have a cgroup of its own"
    assert done.stdout == reason + "\n"


def test_stop_shuts_down_and_leaves_nothing(droplet):
    """Last: stops the module's droplet (its fixture's stop then does nothing)."""
    nspawn = droplet.pid
    assert nspawn is not None
    init = int(Path(f"/proc/{nspawn}/task/{nspawn}/children").read_text().split()[0])
    namespace = os.readlink(f"/proc/{init}/ns/pid")
    cgroups = list(droplet.cgroups)
    assert cgroups and all((path / "cgroup.procs").exists() for path in cgroups)
    droplet.stop()
    print(f"stop {droplet.stop_seconds:.2f} s")
    assert droplet.stop_seconds < 15
    assert not Path(f"/proc/{nspawn}").exists()
    assert not any(pid_namespace(pid) == namespace for pid in os.listdir("/proc") if pid.isdigit())
    assert str(droplet.root) not in Path("/proc/mounts").read_text()
    assert not droplet.root.exists()
    assert not any(path.exists() for path in cgroups)  # its own, gone with it
    droplet.stop()  # idempotent


def pid_namespace(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:  # gone meanwhile, or a kernel thread
        return None
