"""Publishing the state file: single-writer lock and atomic, durable replacement.

Readers must never see a half-written file, and a crash at any instant must leave either the
old or the new file. Hence: write a unique temporary file in the same directory, flush and
fsync it, ``os.replace`` it over the target (atomic on POSIX within one filesystem), then
fsync the directory so the rename itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from pathlib import Path


class LockHeldError(Exception):
    """Another process holds the state file's lock."""

    def __init__(self, lock_path: Path, holder_pid: int | None) -> None:
        holder = f"pid {holder_pid}" if holder_pid else "another process"
        super().__init__(f"{lock_path} is held by {holder}: another daemon writes this state file")
        self.holder_pid = holder_pid


class StateFileLock:
    """An exclusive ``flock`` on ``<state file>.lock``, holding the owner's pid.

    ``flock`` locks die with their process, so a crashed daemon never leaves a stale lock.
    """

    def __init__(self, state_path: Path) -> None:
        self.path = state_path.with_name(state_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`LockHeldError` at once (never waits)."""
        # The lock is held through a read-only descriptor (flock does not need write
        # access): a daemon that keeps no file open for writing between writes does not
        # stop an operator from remounting the filesystem read-only.
        fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise LockHeldError(self.path, _read_pid(self.path)) from None
            raise
        try:
            pid_fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
            try:
                os.write(pid_fd, f"{os.getpid()}\n".encode())
            finally:
                os.close(pid_fd)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


class AtomicWriter:
    """Replaces one file atomically and durably with the bytes it is given."""

    def __init__(self, path: Path, mode: int = 0o644) -> None:
        self.path = path
        self.mode = mode
        self._prefix = f".{path.name}."
        self._suffix = ".tmp"

    def remove_leftovers(self) -> int:
        """Delete temporary files a crashed writer left behind; return how many.

        Call only while holding the lock: a live writer's temporary file looks the same.
        """
        removed = 0
        for leftover in self.path.parent.glob(f"{self._prefix}*{self._suffix}"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
                removed += 1
        return removed

    def write(self, data: bytes) -> None:
        """Publish ``data`` as the new file content. Raises ``OSError``; the old file stays."""
        fd, tmp_name = tempfile.mkstemp(
            prefix=self._prefix, suffix=self._suffix, dir=self.path.parent
        )
        try:
            try:
                os.fchmod(fd, self.mode)  # mkstemp creates 0600; umask must not matter either
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp_name, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        self._fsync_directory()

    def _fsync_directory(self) -> None:
        dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
