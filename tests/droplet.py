"""A throw-away Debian 12 "droplet" for end-to-end tests: systemd as PID 1 in a
systemd-nspawn container, reachable over SSH on a loopback port.

The container shares the host's network, so its sshd listens on host loopback and the
daemon inside reaches a simulator running in the test process. The root filesystem is
built once by ``scripts/droplet-rootfs.sh`` (debootstrap, cached) and copied per droplet:
a copy takes about two seconds, far less than debootstrap, and leaves the cache pristine.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROOTFS_SCRIPT = ROOT / "scripts" / "droplet-rootfs.sh"


def skip_reason() -> str | None:
    """Why this machine cannot boot a droplet, or ``None`` when it can."""
    if os.geteuid() != 0:
        return "booting a systemd-nspawn droplet needs root"
    if shutil.which("systemd-nspawn") is None and shutil.which("apt-get") is None:
        return "systemd-nspawn is missing and cannot be installed (no apt-get)"
    if not Path("/sys/fs/cgroup").is_dir():
        return "no cgroup filesystem: systemd cannot run in a container here"
    return None


def ensure_rootfs() -> Path:
    """The cached rootfs, built on first use (about a minute)."""
    result = subprocess.run(
        ["sh", str(ROOTFS_SCRIPT)], capture_output=True, text=True, timeout=1200, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"building the droplet rootfs failed:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Droplet:
    """A booted container. Use as a context manager; ``stop()`` is idempotent."""

    def __init__(self, base: Path, rootfs: Path | None = None) -> None:
        self.base = base
        self.root = base / "root"
        self.name = f"droplet-{uuid.uuid4().hex[:8]}"
        self.ssh_port = free_port()
        self.key_path = base / "id_ed25519"
        self.known_hosts = base / "known_hosts"
        self.host_public_key = self.root / "etc/ssh/ssh_host_ed25519_key.pub"
        self._rootfs = rootfs or ensure_rootfs()
        self._proc: subprocess.Popen[bytes] | None = None

    # -- life cycle -----------------------------------------------------------------------

    def __enter__(self) -> Droplet:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 60) -> None:
        self._copy_rootfs()
        self._prepare_ssh()
        log = (self.base / "console.log").open("wb")
        self._proc = subprocess.Popen(
            [
                "systemd-nspawn",
                "--directory",
                str(self.root),
                "--boot",
                "--register=no",
                "--keep-unit",
                f"--machine={self.name}",
                "--console=passive",  # no TTY needed; the journal has what the console had
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        atexit.register(self.stop)  # a crashed test run never leaves a container behind
        self._wait_until_up(timeout)

    def _copy_rootfs(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["cp", "-a", "--reflink=auto", str(self._rootfs), str(self.root)], check=True
        )

    def _prepare_ssh(self) -> None:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key_path)], check=True
        )
        subprocess.run(["ssh-keygen", "-q", "-A", "-f", str(self.root)], check=True)
        public = self.key_path.with_suffix(".pub").read_text()
        for home, owner in ((self.root / "root", None), (self.root / "home/deployer", "deployer")):
            ssh_dir = home / ".ssh"
            ssh_dir.mkdir(mode=0o700, exist_ok=True)
            (ssh_dir / "authorized_keys").write_text(public)
            (ssh_dir / "authorized_keys").chmod(0o600)
            if owner is not None:
                uid = gid = self._uid_in_rootfs(owner)
                for path in (ssh_dir, ssh_dir / "authorized_keys"):
                    os.chown(path, uid, gid)
        config = self.root / "etc/ssh/sshd_config.d/20-port.conf"
        config.write_text(f"Port {self.ssh_port}\nListenAddress 127.0.0.1\n")
        key_type, key = self.host_public_key.read_text().split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.ssh_port} {key_type} {key}\n")

    def _uid_in_rootfs(self, user: str) -> int:
        for line in (self.root / "etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == user:
                return int(fields[2])
        raise LookupError(f"no user {user} in the droplet")

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited: {self.console()[-2000:]}")
            probe = self.ssh("systemctl", "is-system-running", "--wait", check=False, timeout=30)
            state = probe.stdout.strip()
            if state in ("running", "degraded"):
                if state == "degraded":
                    failed = self.ssh("systemctl", "--failed", "--no-legend", check=False)
                    print(f"droplet {self.name} is degraded:\n{failed.stdout}")
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"droplet did not come up: {probe.stderr.strip()}")
            time.sleep(0.3)

    def console(self) -> str:
        path = self.base / "console.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, timeout: float = 20) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            # SIGTERM asks systemd-nspawn to shut the container down cleanly.
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self._unmount_leftovers()
        if self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def _unmount_leftovers(self) -> None:
        prefix = str(self.root) + "/"
        with contextlib.suppress(OSError):
            mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
            for mount in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
                subprocess.run(["umount", "-l", mount], check=False)

    # -- talking to it --------------------------------------------------------------------

    def ssh_options(self) -> list[str]:
        return [
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
        ]

    def ssh(
        self,
        *argv: str,
        user: str = "root",
        check: bool = True,
        timeout: float = 60,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        command = [
            "ssh",
            *self.ssh_options(),
            "-i",
            str(self.key_path),
            "-p",
            str(self.ssh_port),
            f"{user}@127.0.0.1",
            shlex.join(argv),
        ]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=check, input=input
        )

    def write_inventory(
        self,
        path: Path,
        host: str = "volspike-do",
        group: str = "funding_ws",
        user: str = "root",
        **hostvars: Any,
    ) -> Path:
        """An Ansible inventory (YAML is a superset of JSON) reaching this droplet."""
        import json

        options = " ".join(self.ssh_options()[2:])  # BatchMode is ansible's own business
        variables = {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.ssh_port,
            "ansible_user": user,
            "ansible_ssh_private_key_file": str(self.key_path),
            "ansible_ssh_common_args": options,
            "ansible_python_interpreter": "/usr/bin/python3",
            **hostvars,
        }
        inventory = {group: {"hosts": {host: variables}}}
        path.write_text(json.dumps(inventory, indent=2) + "\n")
        return path
