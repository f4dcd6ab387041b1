"""I/O: the audit history on disk — appended a line at a time, rotated beside itself (``H.1``,
``H.2``, …), read back across the rotated files.

* **Append.** One ``write`` of one whole line with ``O_APPEND``, then ``fsync``: a crash leaves
  at most a torn last line, which readers skip. Before appending after such a crash the
  writer ends the torn line first, so it can never swallow the next sample.
* **Rotate.** Once ``H``'s first sample is a day old, ``H`` becomes ``H.1`` (``H.1`` becomes
  ``H.2``, …); a rotated file is deleted only when its *newest* sample is older than the
  retention (at least a day), so the last 24 h are never lost.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path
from typing import BinaryIO

from binance_funding_ws.durations import DAY
from binance_funding_ws.history import Parsed, Sample, parse_lines

SEGMENT_S = DAY  # how much one history file covers before it is rotated
TAIL_BYTES = 64 * 1024  # enough for the last few samples


class HistoryError(Exception):
    """The history cannot be read or written; the message is one line."""


def append(path: Path, line: bytes) -> None:
    """Append one line durably. Raises ``OSError``."""
    # Read-write, not write-only: the last byte is read to find a torn line.
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # end a torn line left by a crash: it stays one skipped line
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if not size:  # a new file: make its directory entry durable too
        _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rotated(path: Path) -> list[Path]:
    """``H.1``, ``H.2``, … that exist, newest first."""
    pattern = re.compile(re.escape(path.name) + r"\.([1-9][0-9]{0,3})")
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in path.parent.iterdir():
            match = pattern.fullmatch(entry.name)
            if match:
                found.append((int(match[1]), entry))
    return [entry for _, entry in sorted(found)]


def rotate(path: Path, now: int, keep_s: float, segment_s: float = SEGMENT_S) -> None:
    """Rotate ``path`` once its first sample is ``segment_s`` old; drop rotated files whose
    newest sample is older than ``keep_s``. Raises ``OSError``."""
    first = _first_sample_time(path)
    if first is not None and now - first >= segment_s * 1000:
        for number, older in reversed(list(enumerate(rotated(path), start=1))):
            older.rename(path.with_name(f"{path.name}.{number + 1}"))
        path.rename(path.with_name(f"{path.name}.1"))
    for older in rotated(path):
        if _last_sample_time(older) < now - keep_s * 1000:
            older.unlink(missing_ok=True)


def _first_sample_time(path: Path) -> int | None:
    try:
        with _open_regular(path) as handle:
            for line in handle:
                samples = parse_lines([line]).samples
                if samples:
                    return samples[0].at
    except (FileNotFoundError, HistoryError):
        return None
    return None


def _last_sample_time(path: Path) -> int:
    """The newest sample's time; the file's mtime when no sample can be read from its tail."""
    try:
        with _open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - TAIL_BYTES))
            samples = parse_lines(handle.read().splitlines(keepends=True)).samples
    except (FileNotFoundError, HistoryError):
        samples = []
    if samples:
        return samples[-1].at
    return int(path.lstat().st_mtime * 1000)


def read_history(path: Path, since: int = 0) -> Parsed:
    """Every sample at or after ``since`` (epoch ms) in ``path`` and its rotated files, oldest
    first. Raises :class:`HistoryError` when there is no history at ``path`` or it cannot be
    read, or when none of its lines is a sample."""
    files = [*reversed(rotated(path)), path]
    parsed = Parsed()
    found = 0
    for file in files:
        try:
            with _open_regular(file) as handle:
                found += 1
                if os.fstat(handle.fileno()).st_mtime * 1000 >= since:  # else: all older
                    parse_lines(handle, since, parsed)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise HistoryError(f"{file}: cannot read ({exc.strerror or exc})") from None
    if not found:
        raise HistoryError(f"{path}: no such file (is the audit running?)")
    if not parsed.samples and not parsed.older and parsed.skipped:
        raise HistoryError(f"{path}: no audit sample in {parsed.skipped} line(s): not a history")
    return parsed


def _open_regular(path: Path) -> BinaryIO:
    """Open for reading without following a link or blocking on a FIFO; refuse anything but
    a regular file."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise HistoryError(f"{path}: not a regular file")
    return os.fdopen(fd, "rb")


def recent_samples(path: Path, since: int) -> list[Sample]:
    """The samples since ``since``, or none when there is no history yet (a first run)."""
    if not path.exists() and not rotated(path):
        return []
    return read_history(path, since).samples
