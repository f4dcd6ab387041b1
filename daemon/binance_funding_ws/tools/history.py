"""I/O: the audit history on disk — appended a line at a time, rotated beside itself (``H.1``,
``H.2``, …), read back across the rotated files.

* **Append.** One ``write`` of one whole line with ``O_APPEND``, then ``fsync``: a crash leaves
  at most a torn last line, which readers skip. Before appending after such a crash the
  writer ends the torn line first, so it can never swallow the next sample.
* **Rotate.** Once ``H``'s first sample is a day old, ``H`` becomes ``H.1`` (``H.1`` becomes
  ``H.2``, …); a rotated file is deleted only when its *newest* sample is older than the
  retention (at least a day), so the last 24 h are never lost. Only regular files are
  rotated, read or deleted: a symlink or a directory under a rotated name is left alone (a
  rotation that would land on one waits, and says so), and never stops the append.
* **Read.** Every file is opened with the one safe open (no symlink followed, nothing but a
  regular file), lines are read with a size cap, and only the window asked for is kept.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from binance_funding_ws.durations import DAY
from binance_funding_ws.history import Parsed, Sample, bounded_lines, iter_samples, parse_lines
from binance_funding_ws.state import StateFileError, open_regular

SEGMENT_S = DAY  # how much one history file covers before it is rotated
TAIL_BYTES = 64 * 1024  # enough for the last few samples
# What the audit reads back at each start (the last day, for its rolling availability and
# its last compare round): a day at the default 60 s is ~1 MB, at 6 s ~10 MB. A longer
# history is read from its tail, so a forged or runaway file costs no more than this.
RECENT_BYTES = 16 * 1024 * 1024


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
    """``H.1``, ``H.2``, … that exist as regular files, newest first. Anything else under such
    a name (a symlink, a directory, a FIFO: planted, never the audit's) is left alone: not
    followed, not read, not renamed, not deleted."""
    return [entry for entry, regular in _numbered(path) if regular]


def _numbered(path: Path) -> list[tuple[Path, bool]]:
    """Every ``H.<n>`` entry, by number, and whether it is a regular file (``lstat``)."""
    pattern = re.compile(re.escape(path.name) + r"\.([1-9][0-9]{0,3})")
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in path.parent.iterdir():
            match = pattern.fullmatch(entry.name)
            if match:
                try:
                    regular = stat.S_ISREG(entry.lstat().st_mode)
                except FileNotFoundError:
                    continue
                found.append((int(match[1]), entry, regular))
    return [(entry, regular) for _, entry, regular in sorted(found)]


def rotate(path: Path, now: int, keep_s: float, segment_s: float = SEGMENT_S) -> None:
    """Rotate ``path`` once its first sample is ``segment_s`` old; drop rotated files whose
    newest sample is older than ``keep_s``. Raises ``OSError`` (the caller appends anyway),
    or :class:`HistoryError` when an entry that is not a regular file holds a name the
    rotation needs: it is refused, never followed or replaced, and the rotation waits."""
    first = _first_sample_time(path)
    if first is not None and now - first >= segment_s * 1000:
        files = rotated(path)
        _check_free(path, len(files) + 1)
        for number, older in reversed(list(enumerate(files, start=1))):
            older.rename(path.with_name(f"{path.name}.{number + 1}"))
        path.rename(path.with_name(f"{path.name}.1"))
    for older in rotated(path):
        if _last_sample_time(older) < now - keep_s * 1000:
            older.unlink(missing_ok=True)


def _check_free(path: Path, count: int) -> None:
    """Refuse to rotate onto ``H.1`` … ``H.<count>`` if one of them is not a regular file."""
    names = {f"{path.name}.{n}" for n in range(1, count + 1)}
    foreign = [entry for entry, regular in _numbered(path) if not regular and entry.name in names]
    if foreign:
        raise HistoryError(
            f"{foreign[0]}: not a regular file; not rotating onto it (remove it by hand)"
        )


def _first_sample_time(path: Path) -> int | None:
    """The first sample's time, from the file's first :data:`RECENT_BYTES`. A larger file
    without a sample there (junk, or one endless line) is as old as can be: rotated away,
    rather than read whole every minute."""
    try:
        with _open_history(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            head = bounded_lines(_reader(handle, RECENT_BYTES))
            for sample in iter_samples(head, Parsed()):
                return sample.at
    except (FileNotFoundError, HistoryError):
        return None
    return 0 if size > RECENT_BYTES else None


def _last_sample_time(path: Path) -> int:
    """The newest sample's time; the file's mtime when no sample can be read from its tail."""
    try:
        with _open_history(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - TAIL_BYTES))
            samples = parse_lines(handle.read(TAIL_BYTES).splitlines(keepends=True)).samples
    except (FileNotFoundError, HistoryError):
        samples = []
    if samples:
        return samples[-1].at
    return int(path.lstat().st_mtime * 1000)


def read_history(path: Path, since: int = 0) -> Parsed:
    """Every sample at or after ``since`` (epoch ms) in ``path`` and its rotated files, oldest
    first, in a list (for tests and small windows: ``report`` iterates a
    :class:`HistoryWindow` instead). Raises :class:`HistoryError` as :class:`HistoryWindow`
    does."""
    window = HistoryWindow(path, since)
    samples = list(window)
    window.parsed.samples = samples
    return window.parsed


class HistoryWindow:
    """The samples at or after ``since`` (epoch ms) in ``path`` and its rotated files, oldest
    first, read anew on each iteration and never held: ``report`` iterates twice, and its
    memory does not grow with the history.

    Bounded: a file whose last change is older than ``since`` is not opened, a line over
    :data:`~binance_funding_ws.history.MAX_LINE_BYTES` is skipped as it is read, and samples
    older than ``since`` are dropped as they are parsed. An iteration raises
    :class:`HistoryError` when there is no history at ``path``, a file cannot be read, or
    none of its lines is a sample (then ``parsed`` counts the lines of that iteration).
    """

    def __init__(self, path: Path, since: int = 0) -> None:
        self.path = path
        self.since = since
        self.parsed = Parsed()  # what the last iteration skipped and left out

    def __iter__(self) -> Iterator[Sample]:
        parsed = self.parsed = Parsed()
        found = seen = 0
        for file in [*reversed(rotated(self.path)), self.path]:
            try:
                handle = _open_history(file)
            except FileNotFoundError:
                continue
            found += 1
            with handle:
                if os.fstat(handle.fileno()).st_mtime * 1000 < self.since:
                    continue  # its last change is older than the window: so are its samples
                try:
                    for sample in iter_samples(bounded_lines(handle.read), parsed, self.since):
                        seen += 1
                        yield sample
                except OSError as exc:
                    raise HistoryError(f"{file}: cannot read ({exc.strerror or exc})") from None
        if not found:
            raise HistoryError(f"{self.path}: no such file (is the audit running?)")
        if not seen and not parsed.older and parsed.skipped:
            raise HistoryError(
                f"{self.path}: no audit sample in {parsed.skipped} line(s): not a history"
            )


def read_recent(path: Path, since: int, budget: int = RECENT_BYTES) -> Iterator[Sample]:
    """The samples at or after ``since`` in the last ``budget`` bytes of the history (``H``,
    then the end of ``H.1`` if ``H`` is shorter), oldest first, one at a time: what the audit
    needs at each start, at a cost that does not grow with the history. Raises
    :class:`HistoryError` when a file cannot be read."""
    parts = []
    left = budget
    for file in [path, *rotated(path)[:1]]:
        if left <= 0:
            break
        try:
            handle = _open_history(file)
        except FileNotFoundError:
            continue
        size = os.fstat(handle.fileno()).st_size
        if os.fstat(handle.fileno()).st_mtime * 1000 < since:
            handle.close()
            continue
        start = max(0, size - left)
        left -= size - start
        parts.append((handle, start, size))
    parsed = Parsed()
    for handle, start, size in reversed(parts):
        with handle:
            handle.seek(start)
            lines = bounded_lines(_reader(handle, size - start))
            if start:
                next(lines, None)  # cut mid-line: the first line is not whole
            yield from iter_samples(lines, parsed, since)


def _reader(handle: BinaryIO, length: int) -> Callable[[int], bytes]:
    """``read`` of at most ``length`` bytes of ``handle``: a file that grows while it is read
    is read to the size it had."""
    left = length

    def read(n: int) -> bytes:
        nonlocal left
        data = handle.read(min(n, left))
        left -= len(data)
        return data

    return read


def _open_history(path: Path) -> BinaryIO:
    """The history file at ``path``, opened with the one safe open
    (:func:`~binance_funding_ws.state.open_regular`). Raises ``FileNotFoundError`` when there
    is none, :class:`HistoryError` (one line) when it is anything but a readable regular
    file."""
    try:
        fd = open_regular(path)
    except StateFileError as exc:
        if exc.reason == "missing":
            raise FileNotFoundError(path) from None
        raise HistoryError(str(exc)) from None
    return os.fdopen(fd, "rb")
