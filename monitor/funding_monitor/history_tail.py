"""The audit history as the monitor reads it from a host: bounded, and only what changed.

The history (``H``, JSON Lines, one sample a line; see :mod:`binance_funding_ws.history`) is
appended to once a minute and rotated daily to ``H.1``, so the last 24 h are in ``H`` and, just
after a rotation, the end of ``H.1``. Reading it over SSH must stay cheap however large it is:

* **Bounded.** At most :data:`MAX_HISTORY_BYTES` of lines are read and kept: the last ones of
  ``H``, then of ``H.1`` only what that leaves, and only while ``H`` does not reach back over
  the window. A larger file is read from its tail (the cut first line is dropped).
* **Only what changed.** A file whose version (size, mtime) is the one read before is not read
  again; a file that grew is read from where the last read stopped, after checking that the
  bytes just before that point are still the ones read (else it was replaced: read anew).
* **Whole lines.** A last line without its newline (torn by a crash, or being written) is
  left for the next read; lines that are not samples, or longer than the readers' cap
  (:data:`~binance_funding_ws.history.MAX_LINE_BYTES`), are counted, not fatal.

One :class:`HistoryTail` per host, used by that host's poller thread only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace

from binance_funding_ws.history import Sample, bounded_lines, parse_lines
from funding_monitor.sources import FileAccess, FileVersion, SourceError

MAX_HISTORY_BYTES = 8 * 1024 * 1024  # ~15,000 samples: 24 h at any interval from 6 s on
CHECK_BYTES = 64  # the bytes re-read before a resumed read, to recognise the same file


@dataclass
class Segment:
    """What has been read of one history file."""

    version: tuple[int, ...] | None  # the file as read; None: read it again next time
    start: int  # file offset of the first byte kept
    end: int  # file offset just after the last whole line read
    check: bytes  # the bytes just before ``end`` (empty when no line boundary is known)
    samples: list[Sample] = field(default_factory=list)
    skipped: int = 0  # lines that are not samples
    seen: int = 0  # samples parsed, those older than the window included
    first_at: int | None = None  # the file's first sample (epoch ms), when read from its start

    def reaches_back(self, since: int) -> bool:
        """Whether this file holds the window back to ``since`` (else the older file may)."""
        if self.start > 0:
            return True  # cut to the budget: what is older is not read anyway
        return self.first_at is not None and self.first_at <= since

    def resumable(self) -> bool:
        return self.start == 0 or bool(self.check)


@dataclass(frozen=True)
class Tail:
    """The samples of the window, oldest first, and how the lines read went."""

    samples: list[Sample]
    skipped: int
    seen: int


class HistoryTail:
    """Reads the history at ``path`` (and ``path.1``) through ``files``, keeping what it read."""

    def __init__(self, path: str, files: FileAccess, limit: int = MAX_HISTORY_BYTES) -> None:
        self.path = path
        self.files = files
        self.limit = limit
        self.bytes_read = 0  # in all, for tests and the curious
        self._segments: dict[str, Segment] = {}

    def read(self, since: int) -> Tail | None:
        """The samples at or after ``since`` (epoch ms); ``None`` when there is no history.

        Raises :class:`~funding_monitor.sources.SourceError` when a file cannot be read.
        """
        older_path = f"{self.path}.1"
        current = self._update(self.path, self.limit, since)
        older = None
        budget = self.limit - (current.end - current.start if current else 0)
        if (current is None or not current.reaches_back(since)) and budget > 0:
            older = self._update(older_path, budget, since)
        else:
            self._segments.pop(older_path, None)
        if current is None and older is None:
            return None
        segments = [s for s in (older, current) if s is not None]
        return Tail(
            samples=[sample for s in segments for sample in s.samples],
            skipped=sum(s.skipped for s in segments),
            seen=sum(s.seen for s in segments),
        )

    def _update(self, path: str, budget: int, since: int) -> Segment | None:
        """The segment of ``path`` as the file is now; ``None`` when there is no such file."""
        try:
            segment = self._current(path, budget)
        except SourceError as exc:
            if exc.kind != "missing":  # else rotated away between two calls: as if absent
                raise
            segment = None
        if segment is None:
            self._segments.pop(path, None)
            return None
        segment.samples = [s for s in segment.samples if s.at >= since]  # the window moved on
        self._segments[path] = segment
        return segment

    def _current(self, path: str, budget: int) -> Segment | None:
        """What was read of ``path``, read again only if the file changed."""
        version = self.files.file_version(path)
        if version is None:
            return None
        segment = self._segments.get(path)
        if segment is not None and segment.version == version.key:
            return segment  # unchanged: nothing transferred
        resumed = self._resumed(path, segment, version, budget)
        return resumed if resumed is not None else self._tail(path, version.size, budget)

    def _resumed(
        self, path: str, old: Segment | None, version: FileVersion, budget: int
    ) -> Segment | None:
        """``old`` and the lines appended since, or ``None`` if the file is not ``old``'s."""
        if old is None or not old.resumable() or version.size < old.end:
            return None
        if version.size - old.start > budget:
            return None  # read the tail anew: what is kept stays within the budget
        offset = old.end - len(old.check)
        got, data = self._read(path, offset, old.start + budget - offset)
        if not data.startswith(old.check):
            return None  # another file under the same name
        segment = replace(old, version=_version_if_whole(got, offset, data))
        _add_lines(segment, data, offset, len(old.check))
        return segment

    def _tail(self, path: str, size: int, budget: int) -> Segment:
        """The last ``budget`` bytes of the file, from its first whole line on."""
        start = max(0, size - budget)
        offset = max(0, start - 1)  # one byte early: is ``start`` itself a line's first byte?
        got, data = self._read(path, offset, budget + (start - offset))
        segment = Segment(_version_if_whole(got, offset, data), start, start, b"")
        if start == 0:
            _add_lines(segment, data, offset, 0)
            return segment
        cut = data.find(b"\n")
        if cut >= 0:  # else one endless line: nothing to read, and no place to resume from
            _add_lines(segment, data, offset, cut + 1)
        return segment

    def _read(self, path: str, offset: int, length: int) -> tuple[FileVersion, bytes]:
        got, data = self.files.read_range(path, offset, length)
        self.bytes_read += len(data)
        return got, data


def _version_if_whole(got: FileVersion, offset: int, data: bytes) -> tuple[int, ...] | None:
    """The version read, if the read reached the end of that file; else read again later."""
    return got.key if offset + len(data) >= got.size else None


def _add_lines(segment: Segment, data: bytes, offset: int, begin: int) -> None:
    """Parse the whole lines of ``data`` (read at ``offset``) from index ``begin`` into
    ``segment``; a last line without its newline is left for the next read."""
    last = data.rfind(b"\n") + 1
    if last <= begin:
        if begin and not segment.check:  # a line boundary, even without a line after it
            segment.end, segment.check = offset + begin, data[max(0, begin - CHECK_BYTES) : begin]
        return
    # Split at "\n" only, as files do, with the readers' line cap (a longer line: skipped).
    parsed = parse_lines(bounded_lines(io.BytesIO(data[begin:last]).read))
    segment.samples += parsed.samples
    segment.skipped += parsed.skipped
    segment.seen += len(parsed.samples)
    if segment.start == 0 and segment.first_at is None and parsed.samples:
        segment.first_at = min(sample.at for sample in parsed.samples)
    segment.end = offset + last
    segment.check = data[max(0, last - CHECK_BYTES) : last]
