"""Where the state file comes from: a local path, or a host reached over SSH like ``ssh HOST``.

I/O shells only; every call blocks, so the UI runs them in a worker thread, and one source is
only ever used by one thread at a time (paramiko clients are not thread-safe).

SSH follows ``~/.ssh/config`` (HostName, User, Port, IdentityFile, UserKnownHostsFile,
ProxyCommand, ProxyJump with one hop), then the agent and the default keys. Host keys are
checked against ``~/.ssh/known_hosts`` and ``/etc/ssh/ssh_known_hosts``: an unknown or changed
key refuses the connection and says how to trust it; nothing is ever added silently. No shell
command is built from user input: the state file is read over SFTP, and the only commands run
are fixed ``systemctl show`` / ``journalctl`` lines for a unit name checked against a strict
pattern.

Both sources also read the audit history (:mod:`funding_monitor.history_tail` decides what):
:meth:`file_version` says whether a file changed, :meth:`read_range` reads part of it, and
only a regular file is ever read.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import getpass
import hashlib
import os
import re
import shlex
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

import paramiko

from binance_funding_ws.state import StateDocument, StateFileError, decode_state, open_regular
from funding_monitor.model import ErrorKind, ServiceState, parse_systemctl_show

UNIT_PATTERN = re.compile(r"^[A-Za-z0-9@_.:-]{1,200}$")
SHOW_PROPERTIES = "LoadState,ActiveState,SubState,ActiveEnterTimestamp,NRestarts"
MAX_STATE_BYTES = 64 * 1024 * 1024  # far above any real state file; a bound, not a limit


class SourceError(Exception):
    """A read failed; ``kind`` says how (unreachable, host-key, auth, missing, ...)."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind


@dataclass(frozen=True)
class FileVersion:
    """What tells one state of a file from the next, without reading it."""

    size: int
    key: tuple[int, ...]  # locally (inode, size, mtime ns); over SFTP (size, mtime s)


class FileAccess(Protocol):
    """Parts of a file on the host, as the audit history is read."""

    def file_version(self, path: str) -> FileVersion | None:
        """The file's version; ``None`` when there is no such file. Raises
        :class:`SourceError` for anything but a regular file, or a file that cannot be read."""

    def read_range(self, path: str, offset: int, length: int) -> tuple[FileVersion, bytes]:
        """At most ``length`` bytes from ``offset``, and the version of the file they are from
        (it may have changed since :meth:`file_version`). Raises :class:`SourceError`."""


class Source(FileAccess, Protocol):
    name: str

    def read_state(self) -> StateDocument | None:
        """The document, or ``None`` when the file has not changed since the last read."""

    def service_state(self) -> ServiceState | None: ...

    def journal(self, lines: int) -> list[str]: ...

    def where(self, path: str) -> str:
        """How messages and reports name ``path`` on this source (``host:path`` over SSH)."""

    def close(self) -> None: ...


def _check_size(size: int, where: str) -> None:
    if size > MAX_STATE_BYTES:
        raise SourceError(
            "unreadable",
            f"{where}: {size} bytes, more than a state file can be "
            f"({MAX_STATE_BYTES // (1024 * 1024)} MiB)",
        )


def _require_regular(mode: int | None, where: str) -> None:
    """Refuse a FIFO (a read would wait for ever), a device (``/dev/zero`` never ends) and
    whatever else is not a plain file."""
    if mode is not None and stat.S_ISLNK(mode):
        raise SourceError("unreadable", f"{where}: a symbolic link; not following it")
    if mode is not None and not stat.S_ISREG(mode):
        raise SourceError("unreadable", f"{where}: not a regular file")


def _decode(data: bytes, where: str) -> StateDocument:
    try:
        return decode_state(data, source=where)
    except StateFileError as exc:
        raise SourceError("corrupt", str(exc)) from None


class LocalSource:
    """A state file on this machine (``--state-file`` without ``--host``).

    Only a regular file of at most :data:`MAX_STATE_BYTES` is read: a FIFO would block the
    read forever and ``/dev/zero`` would fill the memory, so the file is opened without
    blocking (a FIFO opens at once, writer or not) and refused after ``fstat`` unless regular.
    """

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = path
        self.name = name or str(path)
        self._seen: tuple[int, int, int] | None = None

    def read_state(self) -> StateDocument | None:
        try:
            fd = _open_regular(self.path)
            with open(fd, "rb") as handle:
                info = os.fstat(fd)
                _check_size(info.st_size, str(self.path))
                key = (info.st_ino, info.st_size, info.st_mtime_ns)
                if key == self._seen:
                    return None
                data = handle.read(MAX_STATE_BYTES + 1)  # it may have grown since fstat
        except OSError as exc:
            self._seen = None
            raise SourceError("unreadable", f"{self.path}: {exc.strerror or exc}") from None
        except SourceError:
            self._seen = None
            raise
        _check_size(len(data), str(self.path))
        document = _decode(data, str(self.path))
        self._seen = key
        return document

    def service_state(self) -> ServiceState | None:
        return None  # a local file says nothing about a service

    def journal(self, lines: int) -> list[str]:
        return ["(a local state file: no service journal)"]

    def where(self, path: str) -> str:
        return path

    def file_version(self, path: str) -> FileVersion | None:
        try:
            info = os.lstat(path)  # a link is refused, not followed
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SourceError("unreadable", f"{path}: {exc.strerror or exc}") from None
        _require_regular(info.st_mode, path)
        return _local_version(info)

    def read_range(self, path: str, offset: int, length: int) -> tuple[FileVersion, bytes]:
        fd = _open_regular(path)
        try:
            info = os.fstat(fd)
            data = _pread(fd, offset, min(length, info.st_size - offset))
        except OSError as exc:
            raise SourceError("unreadable", f"{path}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        return _local_version(info), data

    def close(self) -> None:
        pass


def _open_regular(path: str | os.PathLike[str]) -> int:
    """The one safe open (:func:`binance_funding_ws.state.open_regular`, as ``status`` reads):
    its refusals, with the same one-line messages, as :class:`SourceError`."""
    try:
        return open_regular(path)
    except StateFileError as exc:
        raise SourceError(
            "missing" if exc.reason == "missing" else "unreadable", str(exc)
        ) from None


def _local_version(info: os.stat_result) -> FileVersion:
    return FileVersion(info.st_size, (info.st_ino, info.st_size, info.st_mtime_ns))


def _pread(fd: int, offset: int, length: int) -> bytes:
    """``length`` bytes from ``offset``, fewer only at the end of the file."""
    chunks: list[bytes] = []
    while length > 0:
        chunk = os.pread(fd, min(length, 1024 * 1024), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset, length = offset + len(chunk), length - len(chunk)
    return b"".join(chunks)


# -- SSH ------------------------------------------------------------------------------------


def fingerprint(key: paramiko.PKey) -> str:
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def _known_hosts_name(hostname: str, port: int) -> str:
    return hostname if port == 22 else f"[{hostname}]:{port}"


class RefuseUnknownHostKey(paramiko.MissingHostKeyPolicy):
    """Never trust a host key nobody vouched for; explain how to trust it instead."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        if hostname.startswith("[") and "]:" in hostname:  # paramiko passes "[host]:port"
            hostname = hostname[1 : hostname.index("]")]
        port = self.target.port
        keyscan = shlex.join(["ssh-keyscan", *_port_option(port), hostname])
        raise SourceError(
            "host-key",
            f"unknown host key for {_known_hosts_name(hostname, port)}: "
            f"{key.get_name()} {fingerprint(key)}. If that is your droplet's key, trust it with "
            f"`{keyscan} >> ~/.ssh/known_hosts` (check the fingerprint first) or by connecting "
            f"once with `{self.target.ssh_command()}`",
        )


def _port_option(port: int) -> list[str]:
    return [] if port == 22 else ["-p", str(port)]


@dataclass(frozen=True)
class Target:
    """A host alias resolved through ``~/.ssh/config``."""

    alias: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    known_hosts: tuple[str, ...]
    proxy_command: str | None
    proxy_jump: str | None

    def ssh_command(self) -> str:
        """The ``ssh`` command line that reaches this target as the monitor does.

        The alias keeps ``~/.ssh/config`` (proxies, keys) in play; the port and the user are
        spelled out, since they may have come from ``--host user@host:port`` rather than the
        config, and ``ssh alias`` alone would then knock on port 22 as someone else.
        """
        return shlex.join(["ssh", *_port_option(self.port), f"{self.user}@{self.alias}"])


def resolve(alias: str, config_path: Path | None = None) -> Target:
    """What ``ssh alias`` would connect to, from the OpenSSH client config."""
    path = config_path or Path.home() / ".ssh" / "config"
    config = paramiko.SSHConfig.from_path(str(path)) if path.exists() else paramiko.SSHConfig()
    user_at, _, host_part = alias.rpartition("@")
    host, _, port_text = host_part.partition(":")
    options = config.lookup(host)
    port = int(port_text or options.get("port", "22"))
    known = options.get("userknownhostsfile", "~/.ssh/known_hosts ~/.ssh/known_hosts2").split()
    return Target(
        alias=host,
        hostname=options.get("hostname", host),
        port=port,
        user=user_at or options.get("user", getpass.getuser()),
        identity_files=tuple(os.path.expanduser(p) for p in options.get("identityfile", [])),
        known_hosts=tuple(os.path.expanduser(p) for p in known),
        proxy_command=options.get("proxycommand")
        if options.get("proxycommand", "none").lower() != "none"
        else None,
        proxy_jump=options.get("proxyjump")
        if options.get("proxyjump", "none").lower() != "none"
        else None,
    )


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 15.0
    keepalive: int = 15


def connect(
    target: Target, timeouts: Timeouts, config_path: Path | None = None, hop: int = 0
) -> paramiko.SSHClient:
    """An authenticated client for ``target``; raises :class:`SourceError`."""
    sock: paramiko.ProxyCommand | paramiko.Channel | None = None
    jump: paramiko.SSHClient | None = None
    where = f"{target.user}@{target.hostname}:{target.port}"
    try:
        if target.proxy_jump and hop == 0:
            jump_target = resolve(target.proxy_jump.split(",")[0], config_path)
            jump = connect(jump_target, timeouts, config_path, hop=1)
            transport = jump.get_transport()
            assert transport is not None
            sock = transport.open_channel(
                "direct-tcpip", (target.hostname, target.port), ("127.0.0.1", 0),
                timeout=timeouts.connect,
            )  # fmt: skip
        elif target.proxy_command:
            sock = paramiko.ProxyCommand(target.proxy_command)
        client = paramiko.SSHClient()
        _load_host_keys(client, target)
        client.set_missing_host_key_policy(RefuseUnknownHostKey(target))
        client.connect(
            target.hostname,
            target.port,
            username=target.user,
            # paramiko accepts a list of key files; its stubs say str only.
            key_filename=cast(str, list(target.identity_files) or None),
            timeout=timeouts.connect,
            banner_timeout=timeouts.connect,
            auth_timeout=timeouts.connect,
            channel_timeout=timeouts.read,
            sock=sock,
            allow_agent=True,
            look_for_keys=True,
        )
    except SourceError:
        _close_quietly(jump)
        raise
    except paramiko.BadHostKeyException as exc:
        _close_quietly(jump)
        name = _known_hosts_name(target.hostname, target.port)
        raise SourceError(
            "host-key",
            f"HOST KEY CHANGED for {name}: known {fingerprint(exc.expected_key)}, offered "
            f"{fingerprint(exc.key)}. Someone may be intercepting the connection; if the "
            f"droplet was rebuilt, remove the old key with `ssh-keygen -R '{name}'` and "
            "trust the new one",
        ) from None
    except paramiko.AuthenticationException as exc:
        _close_quietly(jump)
        raise SourceError("auth", f"authentication failed for {where}: {exc}") from None
    except (OSError, paramiko.SSHException, EOFError) as exc:
        _close_quietly(jump)
        raise SourceError("unreachable", f"cannot connect to {where}: {_reason(exc)}") from None
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(timeouts.keepalive)
        if jump is not None:
            transport.jump_client = jump  # type: ignore[attr-defined]  # closed with it
    return client


def _load_host_keys(client: paramiko.SSHClient, target: Target) -> None:
    for path in (*target.known_hosts, "/etc/ssh/ssh_known_hosts"):
        if os.path.exists(path):
            try:
                client.load_system_host_keys(path)  # read-only: never written back
            except (OSError, paramiko.SSHException):
                continue


def _remote_version(attributes: paramiko.SFTPAttributes) -> FileVersion:
    size = attributes.st_size or 0
    return FileVersion(size, (size, int(attributes.st_mtime or 0)))


def _close_quietly(client: paramiko.SSHClient | None) -> None:
    if client is not None:
        client.close()


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, socket.timeout | TimeoutError):
        text = "timed out"
    return text.splitlines()[0][:200]


class RemoteSource:
    """The state file on a host reached over SSH; reconnects on the next call after a drop."""

    def __init__(
        self,
        alias: str,
        state_file: str,
        unit: str,
        timeouts: Timeouts | None = None,
        config_path: Path | None = None,
    ) -> None:
        if not UNIT_PATTERN.match(unit):
            raise ValueError(f"not a systemd unit name: {unit!r}")
        self.name = alias
        self.state_file = state_file
        self.unit = unit if "." in unit else f"{unit}.service"
        self.timeouts = timeouts or Timeouts()
        self.config_path = config_path
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._seen: tuple[int, int] | None = None

    def _connected(self) -> tuple[paramiko.SSHClient, paramiko.SFTPClient]:
        transport = self._client.get_transport() if self._client is not None else None
        if self._client is None or self._sftp is None or not (transport and transport.is_active()):
            self.close()
            target = resolve(self.name, self.config_path)
            client = connect(target, self.timeouts, self.config_path)
            try:
                sftp = client.open_sftp()
            except (OSError, paramiko.SSHException) as exc:
                client.close()
                raise SourceError(
                    "unreachable", f"no SFTP on {self.name}: {_reason(exc)}"
                ) from None
            sftp.get_channel().settimeout(self.timeouts.read)  # type: ignore[union-attr]
            self._client, self._sftp = client, sftp
            self._seen = None
        assert self._client is not None and self._sftp is not None
        return self._client, self._sftp

    def read_state(self) -> StateDocument | None:
        _, sftp = self._connected()
        where = self.where(self.state_file)
        try:
            with self._sftp_errors(where):
                attributes = sftp.stat(self.state_file)
                key = (attributes.st_size or 0, attributes.st_mtime or 0)
                if key == self._seen:
                    return None  # unchanged: nothing transferred
                _require_regular(attributes.st_mode, where)
                _check_size(attributes.st_size or 0, where)
                with sftp.open(self.state_file, "rb") as handle:
                    # What was read belongs to the opened file, even if it was replaced since.
                    opened = handle.stat()
                    data = handle.read(MAX_STATE_BYTES + 1)
        except SourceError:
            self._seen = None  # read it again next time, whatever it was
            raise
        _check_size(len(data), where)
        document = _decode(data, where)
        self._seen = (opened.st_size or 0, opened.st_mtime or 0)
        return document

    def where(self, path: str) -> str:
        return f"{self.name}:{path}"

    def file_version(self, path: str) -> FileVersion | None:
        _, sftp = self._connected()
        where = self.where(path)
        try:
            with self._sftp_errors(where):
                attributes = sftp.stat(path)
        except SourceError as exc:
            if exc.kind == "missing":
                return None
            raise
        _require_regular(attributes.st_mode, where)
        return _remote_version(attributes)

    def read_range(self, path: str, offset: int, length: int) -> tuple[FileVersion, bytes]:
        _, sftp = self._connected()
        where = self.where(path)
        with self._sftp_errors(where), sftp.open(path, "rb") as handle:
            opened = handle.stat()
            _require_regular(opened.st_mode, where)
            version = _remote_version(opened)
            wanted = min(length, version.size - offset)
            # readv pipelines the requests: one round trip per 32 KiB would take seconds.
            data = b"".join(handle.readv([(offset, wanted)])) if wanted > 0 else b""
        return version, data

    @contextlib.contextmanager
    def _sftp_errors(self, where: str) -> Iterator[None]:
        """Turn what an SFTP call raises into a :class:`SourceError`."""
        try:
            yield
        except OSError as exc:
            raise self._file_error(exc, where) from None
        except (paramiko.SSHException, EOFError) as exc:
            self.close()
            raise SourceError(
                "unreachable", f"{self.name}: connection lost ({_reason(exc)})"
            ) from None

    def _file_error(self, exc: OSError, where: str) -> SourceError:
        """What a failed SFTP call means; a connection that may be broken is dropped."""
        if exc.errno == errno.ENOENT or isinstance(exc, FileNotFoundError):
            return SourceError("missing", f"{where}: no such file")
        if exc.errno == errno.EACCES or isinstance(exc, PermissionError):
            return SourceError("unreadable", f"{where}: permission denied")
        self.close()
        if isinstance(exc, socket.timeout | TimeoutError):
            return SourceError("unreachable", f"{self.name}: read timed out")
        return SourceError("unreachable", f"{where}: {_reason(exc)}")

    def _run(self, argv: list[str]) -> tuple[int, str]:
        client, _ = self._connected()
        try:
            _, stdout, _ = client.exec_command(shlex.join(argv), timeout=self.timeouts.read)
            output = stdout.read().decode(errors="replace")
            return stdout.channel.recv_exit_status(), output
        except (OSError, paramiko.SSHException, EOFError) as exc:
            self.close()
            raise SourceError(
                "unreachable", f"{self.name}: connection lost ({_reason(exc)})"
            ) from None

    def service_state(self) -> ServiceState | None:
        code, output = self._run(["systemctl", "show", self.unit, f"--property={SHOW_PROPERTIES}"])
        return parse_systemctl_show(output) if code == 0 and "ActiveState=" in output else None

    def journal(self, lines: int) -> list[str]:
        argv = [
            "journalctl",
            "-u",
            self.unit,
            "-n",
            str(int(lines)),
            "--no-pager",
            "-o",
            "short-iso",
        ]
        code, output = self._run(argv)
        if code != 0 and not output.strip():
            return [f"(journalctl exited {code}: no journal for {self.unit})"]
        return output.splitlines()

    def close(self) -> None:
        client, self._client, self._sftp = self._client, None, None
        if client is not None:
            transport = client.get_transport()
            jump = getattr(transport, "jump_client", None) if transport else None
            client.close()
            _close_quietly(jump)
