"""A throw-away Debian "droplet" for end-to-end tests: systemd as PID 1 in a systemd-nspawn
container, reachable over SSH on a host loopback port. Debian 12 (bookworm) by default; 13
(trixie) and 11 (bullseye) too, each from its own cached rootfs.

The container shares the host's network, so its sshd listens on host loopback and a daemon
inside reaches a simulator running in the test process. The root filesystem is built once by
``scripts/droplet-rootfs.sh`` (debootstrap, cached) and each droplet gets a private writable
view of it (see ``Droplet._make_root``), so the cache stays pristine.

    with Droplet(tmp_path) as droplet:
        droplet.ssh("systemctl", "is-active", "ssh")
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROOTFS_SCRIPT = ROOT / "scripts" / "droplet-rootfs.sh"
# What the rootfs script needs on the host; it installs them with apt-get when missing.
HOST_TOOLS = ("systemd-nspawn", "debootstrap", "ssh", "ssh-keygen")
CAP_SYS_ADMIN = 21
PROPAGATE = Path("/run/systemd/nspawn/propagate")  # systemd-nspawn's per-machine directory


def skip_reason() -> str | None:
    """Why this machine cannot boot a droplet, or ``None`` when it can."""
    if os.geteuid() != 0:
        return "booting a systemd-nspawn droplet needs root"
    if not _has_capability(CAP_SYS_ADMIN):
        return "root without CAP_SYS_ADMIN (an unprivileged container?): cannot mount or boot"
    missing = [tool for tool in HOST_TOOLS if shutil.which(tool) is None]
    if missing and shutil.which("apt-get") is None:
        return f"{', '.join(missing)} missing and no apt-get to install them"
    cgroup = Path("/sys/fs/cgroup")
    if not cgroup.is_dir() or not any(cgroup.iterdir()):
        return "no cgroup filesystem at /sys/fs/cgroup: systemd cannot run in a container"
    beside = cgroups_beside_this_process("droplet")
    if not beside:
        return "no cgroup hierarchy of systemd's is mounted: systemd cannot run in a container"
    if not all(os.access(path.parent, os.W_OK) for path in beside):
        return "the cgroup filesystem is read-only here: a droplet cannot have a cgroup of its own"
    if not Path("/proc/self/ns/pid").exists() or not Path("/dev/null").is_char_device():
        return "no PID namespaces or no /dev: systemd-nspawn cannot run here"
    return None


def _has_capability(bit: int) -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return False


RELEASES = {"bullseye": "11", "bookworm": "12", "trixie": "13"}  # what the rootfs script builds


def ensure_rootfs(release: str = "bookworm") -> Path:
    """The release's cached rootfs, built on first use (1-2 minutes; needs root and network)."""
    result = subprocess.run(
        ["sh", str(ROOTFS_SCRIPT), release],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"building the droplet rootfs failed:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    """A loopback port free right now (sshd binds it a moment later; a clash is unlikely)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    return []


def cgroups_beside_this_process(name: str) -> list[Path]:
    """A cgroup named ``name`` beside this process, in each hierarchy systemd-nspawn uses:
    the unified (v2) one, and on a hybrid host the v1 ``name=systemd`` one too.

    systemd-nspawn with --keep-unit (as without systemd on the host it must) moves itself to
    ``supervisor`` and the container to ``payload`` under the cgroup it started in. Two
    droplets started from one cgroup would then share ``payload``: every container's
    ``system.slice/binance-funding-ws.service`` would be one cgroup, each systemd seeing and
    killing, or failing to kill, the other's processes. Each droplet starts in a cgroup of
    its own, from the list this returns.
    """
    own = {}  # hierarchy key ("" for v2, "name=systemd") -> this process's path in it
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _number, key, path = line.split(":", 2)
        own[key] = path
    dirs = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, super_fields = line.partition(" - ")
        mount_root, mount_point = fields.split()[3:5]
        fstype, _source, options = super_fields.split()[:3]
        if fstype == "cgroup2":
            key = ""
        elif fstype == "cgroup" and "name=systemd" in options.split(","):
            key = "name=systemd"
        else:
            continue
        path = own.get(key)
        if path is None or not (path + "/").startswith(mount_root.rstrip("/") + "/"):
            continue  # this process is outside what the mount shows (another namespace)
        inside = path[len(mount_root.rstrip("/")) :].lstrip("/")
        dirs.append(Path(mount_point.replace("\\040", " ")) / inside / name)
    return dirs


class SSHError(subprocess.CalledProcessError):
    """A failed remote command whose message shows what the command printed."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"


class Droplet:
    """A booted container. Use as a context manager; ``stop()`` is idempotent.

    The timings of the last start and stop are kept in ``copy_seconds``, ``boot_seconds``
    and ``stop_seconds``.
    """

    def __init__(self, base: Path, rootfs: Path | None = None, release: str = "bookworm") -> None:
        self.base = base
        self.release = release
        self.root = base / "root"
        self.name = f"droplet-{uuid.uuid4().hex[:8]}"
        self.ssh_port = free_port()
        self.key_path = base / "id_ed25519"
        self.known_hosts = base / "known_hosts"
        self.host_public_key = base / "ssh_host_ed25519_key.pub"
        self.log_path = base / "console.log"
        self.failed_units = ""
        self.copy_seconds = self.boot_seconds = self.stop_seconds = 0.0
        self._rootfs = rootfs or ensure_rootfs(release)
        self._upper = base / "upper"
        self._work = base / "work"
        self._proc: subprocess.Popen[bytes] | None = None
        self.cgroups: list[Path] = []  # its own, one per hierarchy (cgroups_beside_this_process)
        # One shared SSH connection per user (see ssh()): tried once, on first use after boot.
        self._up = False
        self._masters: set[str] = set()
        self._tried: set[str] = set()
        self._masters_lock = threading.Lock()

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

    def start(self, timeout: float = 90) -> None:
        # Registered before anything needs undoing: a crash mid-start leaves nothing behind.
        atexit.register(self.stop)
        started = time.monotonic()
        self._make_root()
        self.copy_seconds = time.monotonic() - started
        self._prepare()
        self._make_cgroups()
        self._boot()
        self._wait_until_up(timeout)
        self._up = True
        self.boot_seconds = time.monotonic() - started - self.copy_seconds

    def _make_root(self) -> None:
        """A writable root for this droplet only, leaving the cached rootfs untouched.

        An overlayfs (the cache as the read-only lower layer, writes going to ``upper``)
        takes milliseconds and no disk space. ``cp -a`` of the ~320 MB tree took 1-1.6 s
        here (ext4, no reflinks), 5 s while another test was busy on the disk, and up to a
        second more to delete. systemd-nspawn's --ephemeral/--template snapshot only on
        btrfs and otherwise make the same full copy. The copy stays as the fallback where
        overlayfs is unavailable, e.g. when the base directory is itself on overlayfs
        (inside Docker).
        """
        self.root.mkdir(parents=True)
        self._upper.mkdir()
        self._work.mkdir()
        layers = f"lowerdir={self._rootfs},upperdir={self._upper},workdir={self._work}"
        mount = ["mount", "-t", "overlay", "overlay", "-o", layers, str(self.root)]
        if subprocess.run(mount, capture_output=True, check=False).returncode == 0:
            return
        self.root.rmdir()
        subprocess.run(
            ["cp", "-a", "--reflink=auto", str(self._rootfs), str(self.root)], check=True
        )

    def _prepare(self) -> None:
        # A machine id of its own (the cache's is shared): journald names its files after it.
        (self.root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
        self._make_keys()
        for home, user in ((Path("root"), "root"), (Path("home/deployer"), "deployer")):
            self._authorize(home, user)
        config = self.root / "etc/ssh/sshd_config.d/20-port.conf"
        config.write_text(f"Port {self.ssh_port}\nListenAddress 127.0.0.1\n")

    def _make_keys(self) -> None:
        """A fresh client key, fresh host keys, and a known_hosts file that pins them."""
        keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.name]
        subprocess.run([*keygen, "-f", str(self.key_path)], check=True)
        # -A makes all three types, as a real droplet has; it prints even with -q.
        subprocess.run(["ssh-keygen", "-A", "-f", str(self.root)], capture_output=True, check=True)
        lines = []
        for public in sorted((self.root / "etc/ssh").glob("ssh_host_*_key.pub")):
            key_type, key = public.read_text().split()[:2]
            lines.append(f"[127.0.0.1]:{self.ssh_port} {key_type} {key}\n")
        self.known_hosts.write_text("".join(lines))
        shutil.copyfile(self.root / "etc/ssh/ssh_host_ed25519_key.pub", self.host_public_key)

    def _authorize(self, home: Path, user: str) -> None:
        uid, gid = self._ids_in_rootfs(user)
        ssh_dir = self.root / home / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        keys = ssh_dir / "authorized_keys"
        keys.write_text(self.key_path.with_suffix(".pub").read_text())
        keys.chmod(0o600)
        for path in (ssh_dir, keys):
            os.chown(path, uid, gid)  # sshd's StrictModes refuses keys the user does not own

    def _ids_in_rootfs(self, user: str) -> tuple[int, int]:
        for line in (self.root / "etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == user:
                return int(fields[2]), int(fields[3])
        raise LookupError(f"no user {user} in the droplet")

    def _make_cgroups(self) -> None:
        self.cgroups = cgroups_beside_this_process(self.name)
        if not self.cgroups:
            raise RuntimeError("no cgroup hierarchy of systemd's in /proc/self/mountinfo")
        for path in self.cgroups:
            try:
                path.mkdir()
            except OSError as error:
                raise RuntimeError(f"cannot make the droplet's cgroup {path}: {error}") from None

    def _boot(self) -> None:
        # A shell writes its own PID into the droplet's cgroups, then execs (setpriv, then)
        # systemd-nspawn: it starts there. A preexec_fn could too, but is not safe in a
        # process with threads, as the tests' simulator runs in.
        enter = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
        procs = [str(path / "cgroup.procs") for path in self.cgroups]
        command = [
            *("sh", "-c", enter, "sh", *procs, "--"),
            *self._die_with_parent(),
            "systemd-nspawn",
            f"--directory={self.root}",
            "--boot",
            "--register=no",  # no systemd-machined needed on the host
            "--keep-unit",
            f"--machine={self.name}",
            # A console pseudo-TTY whose output goes to the log: no terminal needed, and a
            # failed boot leaves systemd's messages behind.
            "--console=read-only",
            "--link-journal=no",  # never touch the host's /var/log/journal
        ]
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal is for pytest, not for it
            )

    @staticmethod
    def _die_with_parent() -> list[str]:
        """If the test process dies, even by SIGKILL, the kernel sends systemd-nspawn SIGTERM:
        it then shuts the container down cleanly instead of leaving it running.

        setpriv (util-linux) sets that before exec; a preexec_fn could too, but is not safe
        in a process with threads, as the tests' simulator runs in.
        """
        setpriv = shutil.which("setpriv")
        return [setpriv, "--pdeathsig", "SIGTERM", "--"] if setpriv else []

    def _wait_until_up(self, timeout: float) -> None:
        """Until SSH answers and systemd has finished booting (running or degraded)."""
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited:\n{self.console()[-3000:]}")
            remaining = max(deadline - time.monotonic(), 5)
            try:
                probe = self.ssh(
                    "systemctl", "is-system-running", "--wait", check=False, timeout=remaining
                )
            except subprocess.TimeoutExpired as stuck:
                raise TimeoutError(f"boot did not finish:\n{self.console()[-3000:]}") from stuck
            state = probe.stdout.strip()
            if state in ("running", "degraded"):
                break
            if state in ("maintenance", "stopping", "offline"):
                raise RuntimeError(f"droplet booted into {state}:\n{self.console()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"droplet did not come up: {probe.stderr.strip()}")
            time.sleep(0.2)  # sshd not listening yet, or the manager not reachable yet
        if state == "degraded":
            failed = self.ssh("systemctl", "--failed", "--no-legend", "--plain", check=False)
            self.failed_units = failed.stdout
            print(f"droplet {self.name} is degraded; failed units:\n{failed.stdout}")

    @property
    def pid(self) -> int | None:
        """The systemd-nspawn process, while the droplet runs."""
        return self._proc.pid if self._proc is not None else None

    def console(self) -> str:
        """What the container printed on its console (systemd's boot and shutdown lines)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 20) -> None:
        """Shut the container down, then delete its root. Safe to call more than once."""
        atexit.unregister(self.stop)
        started = time.monotonic()
        self._close_masters()
        self._halt(timeout)
        # nspawn removes these itself, unless it was killed.
        (self.base / f".#{self.root.name}.lck").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (PROPAGATE / self.name).rmdir()
        if self._unmount():
            for path in (self.root, self._upper, self._work):
                shutil.rmtree(path, ignore_errors=True)
        self._remove_cgroups()
        self.stop_seconds = time.monotonic() - started

    def _halt(self, timeout: float) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # SIGTERM makes systemd-nspawn ask the container's systemd for a clean poweroff.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # Killing only systemd-nspawn would orphan the container, still running. Its one
            # child is the container's PID 1: killing that ends every process inside.
            for pid in _children(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def _remove_cgroups(self, timeout: float = 5) -> None:
        """Remove the droplet's cgroups, innermost first. The container's processes die with
        its PID 1, but the kernel may take a moment to reap them (rmdir says EBUSY until then).
        """
        deadline = time.monotonic() + timeout
        while self.cgroups:
            for top in self.cgroups:
                for path, _dirs, _files in os.walk(top, topdown=False):
                    with contextlib.suppress(OSError):
                        os.rmdir(path)
            self.cgroups = [path for path in self.cgroups if path.exists()]
            if not self.cgroups or time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def _unmount(self) -> bool:
        """Unmount the overlay and anything left mounted under the root; True when none is.

        rmtree must never run into a mount: under a leftover bind mount it would delete host
        files. (The container's own /proc, /sys and /dev live in its mount namespace and are
        gone with it.)
        """
        for mount in self._mounts():
            subprocess.run(["umount", mount], capture_output=True, check=False)
        for mount in self._mounts():  # still busy: detach it, deletes then cannot reach it
            subprocess.run(["umount", "--lazy", mount], capture_output=True, check=False)
        return not self._mounts()

    def _mounts(self) -> list[str]:
        root = str(self.root)
        with contextlib.suppress(OSError):
            lines = Path("/proc/mounts").read_text().splitlines()
            points = [line.split()[1].replace("\\040", " ") for line in lines]
            inside = [p for p in points if p == root or p.startswith(root + "/")]
            return sorted(inside, key=len, reverse=True)  # children before parents
        return []

    # -- talking to it --------------------------------------------------------------------

    def ssh_options(self) -> list[str]:
        """Options that reach this droplet with its host key pinned (for ansible too)."""
        return [
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "IdentitiesOnly=yes",  # an ssh-agent full of keys must not exhaust MaxAuthTries
        ]

    def ssh(
        self,
        *argv: str,
        user: str = "root",
        check: bool = True,
        timeout: float = 60,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in the droplet (quoted for the remote shell) and capture its output.

        Each user's commands share one SSH connection (OpenSSH's ControlMaster): a command
        then costs a session on it, about 10 ms, instead of a key exchange and a login,
        about 110 ms of CPU and 200 ms here. The tests poll the droplet over SSH a lot, and
        on two cores that CPU was the other droplets' time. Without the shared connection
        (not started yet, or gone with a restarted sshd) ssh simply connects on its own.
        """
        self._ensure_master(user)
        command = [
            "ssh", *self._client_options(user), "-o", "ControlMaster=no",
            f"{user}@127.0.0.1", shlex.join(argv),
        ]  # fmt: skip
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, input=input
        )
        if check and result.returncode != 0:
            raise SSHError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def _client_options(self, user: str) -> list[str]:
        return [
            *self.ssh_options(),
            *("-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"),
            # Short: a socket's path has at most 107 bytes, and ssh adds 17 while binding it.
            *("-o", f"ControlPath=/tmp/{self.name}.{user}"),
            *("-i", str(self.key_path), "-p", str(self.ssh_port)),
        ]

    def _ensure_master(self, user: str) -> None:
        """Start ``user``'s shared connection, once: in the background (-f, after login),
        with no output to hold (a master started by a captured command would keep its pipes
        open, and the capture would wait for it). If it cannot start, ssh connects alone."""
        with self._masters_lock:
            if not self._up or user in self._tried or self._proc is None:
                return
            self._tried.add(user)
            master = ["ssh", *self._client_options(user), "-o", "ControlMaster=yes"]
            started = subprocess.run(
                [*master, "-o", "ControlPersist=yes", "-f", "-N", f"{user}@127.0.0.1"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
                check=False,
            )
            if started.returncode == 0:
                self._masters.add(user)

    def _close_masters(self) -> None:
        with self._masters_lock:
            for user in self._masters:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    subprocess.run(
                        ["ssh", *self._client_options(user), "-O", "exit", f"{user}@127.0.0.1"],
                        capture_output=True,
                        timeout=10,
                        check=False,
                    )
            self._masters.clear()
            self._tried.clear()
            self._up = False

    def write_inventory(
        self,
        path: Path,
        host: str = "volspike-do",
        group: str = "funding_ws",
        user: str = "root",
        **hostvars: Any,
    ) -> Path:
        """An Ansible inventory reaching this droplet as ``user``, plus extra hostvars.

        Written as JSON, which is YAML too: no quoting surprises and no PyYAML needed here.
        """
        variables = {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.ssh_port,
            "ansible_user": user,
            "ansible_ssh_private_key_file": str(self.key_path),
            "ansible_ssh_common_args": shlex.join(self.ssh_options()),
            "ansible_python_interpreter": "/usr/bin/python3",
            **hostvars,
        }
        inventory = {group: {"hosts": {host: variables}}}
        path.write_text(json.dumps(inventory, indent=2) + "\n")
        return path
