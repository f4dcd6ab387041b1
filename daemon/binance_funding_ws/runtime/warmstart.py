"""Warm start: a restarted daemon starts from the previous state file, so a restart (a deploy,
a watchdog kill, an OOM kill, a reboot before the network is up) never blanks the consumers'
data.

Read after the single-writer lock is taken, before the first write. What the previous file
holds is untrusted: its entries pass the live rows' gate (:meth:`~binance_funding_ws.market.
MarketBook.restore`), and whatever the gate refuses is counted (``errors``) and named in one
warning. What is kept is kept exactly as it was (values, ``event_time``, ``received_at``): it
ages by its own event time, so the stale rule treats old entries honestly, and the merge
replaces one only by a row at least as new, so no value goes back in time across a restart.

The previous file may be:

* ours (:func:`~binance_funding_ws.state.read_state`'s format): restored;
* the earlier script's (:mod:`binance_funding_ws.earlier`): its rows are imported, and the
  user's file is kept as ``<state file>.pre-<UTC time>``, a hard link (a copy where a link is
  refused), so the state path keeps it until the first write replaces it: a reader never
  finds the file missing or the funding map empty through the switch. One line says what was
  imported and where the original is kept;
* neither (torn, not JSON, the wrong shape, an unsupported ``schema_version``, absurdly
  large): it never stops the daemon; it is moved aside as ``<state file>.corrupt-<UTC time>``
  for forensics and the daemon starts with empty maps.

Of each kind the newest :data:`KEEP_ASIDE` files are kept. Only names of exactly that pattern
that are regular files are ever pruned, and the one just made never is: a planted name cannot
make the log say "kept as" a file that is gone, nor send the pruning through a link. A missing
file is the ordinary first start.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from binance_funding_ws.earlier import EarlierFile, decode_earlier
from binance_funding_ws.market import Dropped, MarketBook, add_dropped, describe_dropped
from binance_funding_ws.runtime.writer import write_durably
from binance_funding_ws.state import (
    FundingEntry,
    StateFileError,
    TickerEntry,
    decode_state,
    read_bounded,
)
from binance_funding_ws.tracker import ConnectionTracker

log = logging.getLogger(__name__)

KEEP_ASIDE = 3  # of each kind: .corrupt-* and .pre-*
_SET_ASIDE = ("corrupt", "unsupported")  # StateFileError reasons that mean "not usable"
_STAMP = r"[0-9]{8}T[0-9]{6}\.[0-9]{3}Z"  # see _aside_name
_COPY = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Previous(NamedTuple):
    """A usable previous file: its entries, when it was written, and, for the earlier
    script's format, the rows refused while decoding and where the original is kept."""

    funding: Mapping[str, FundingEntry]
    tickers: Mapping[str, TickerEntry]
    written_at: int  # epoch ms: updated_at, or the earlier file's modification time
    earlier: bool = False
    dropped: Sequence[Dropped] = ()
    kept_as: Path | None = None
    not_kept: str | None = None  # why the earlier file could not be kept aside


def restore_previous(path: Path, book: MarketBook, tracker: ConnectionTracker, now: int) -> None:
    """Fill ``book`` from the previous file at ``path``, if usable; log and count it.

    Never raises: whatever a file holds, the daemon starts (a bug here would otherwise stop
    it at every restart, for as long as the file is there).
    """
    try:
        _restore(path, book, tracker, now)
    except Exception:
        log.error("warm start failed; starting with what was restored, if anything",
                  exc_info=True)  # fmt: skip


def _restore(path: Path, book: MarketBook, tracker: ConnectionTracker, now: int) -> None:
    previous = load_previous(path, now)
    if previous is None:
        return
    dropped = [Dropped(group.reason, list(group.symbols)) for group in previous.dropped]
    restored = book.restore(
        previous.funding, previous.tickers, written_at=previous.written_at, now=now
    )
    for group in restored:
        add_dropped(dropped, group.reason, group.symbols)
    funding, tickers = len(book.funding), len(book.tickers)
    tracker.on_restored(now, funding, tickers)
    if not previous.earlier:
        log.info("warm start: %d funding and %d ticker entries from the previous file",
                 funding, tickers)  # fmt: skip
    elif previous.kept_as is not None:
        log.info(
            "warm start: imported %d funding and %d ticker entries from the earlier script's "
            "file; the original is kept as %s",
            funding, tickers, previous.kept_as,
        )  # fmt: skip
    else:
        log.warning(
            "warm start: imported %d funding and %d ticker entries from the earlier script's "
            "file; the original could not be kept aside (%s): the first write replaces it",
            funding, tickers, previous.not_kept,
        )  # fmt: skip
    warning = describe_dropped(dropped)
    if warning is not None:
        tracker.on_rejected(sum(len(group.symbols) for group in dropped), warning, now)
        log.warning("warm start: %s", warning)


def load_previous(path: Path, now_ms: int) -> Previous | None:
    """The previous file's entries, or ``None`` (first start, or not usable)."""
    try:
        data = read_bounded(path)
    except StateFileError as exc:
        _not_used(path, exc, now_ms)
        return None
    try:
        document = decode_state(data, os.fspath(path))
    except StateFileError as exc:
        written_at = _modified_at(path, now_ms)
        earlier = decode_earlier(data, written_at) if exc.reason == "corrupt" else None
        if earlier is None:
            _not_used(path, exc, now_ms)
            return None
        return _imported(path, data, earlier, written_at, now_ms)
    return Previous(document.funding, document.tickers, document.updated_at)


def _imported(
    path: Path, data: bytes, earlier: EarlierFile, written_at: int, now_ms: int
) -> Previous:
    previous = Previous(earlier.funding, earlier.tickers, written_at, True, earlier.dropped)
    try:
        return previous._replace(kept_as=keep_aside(path, data, now_ms))
    except OSError as exc:
        return previous._replace(not_kept=exc.strerror or str(exc))


def _not_used(path: Path, exc: StateFileError, now_ms: int) -> None:
    """Log why the previous file is not used; set a bad one aside (a missing one is the
    first start)."""
    if exc.reason == "missing":
        return
    if exc.reason not in _SET_ASIDE:  # unreadable: nothing to judge, nothing to move
        log.warning("previous state file not used (%s); starting empty", exc)
        return
    try:
        aside = set_aside(path, now_ms)
    except OSError as move:
        log.warning(
            "previous state file not used (%s) and not moved aside (%s); starting empty",
            exc,
            move.strerror or move,
        )
        return
    log.warning("previous state file not used (%s); kept as %s; starting empty", exc, aside)


def _modified_at(path: Path, now_ms: int) -> int:
    """The file's modification time in epoch ms, never later than ``now_ms``."""
    try:
        modified = os.stat(path, follow_symlinks=False).st_mtime_ns // 1_000_000
    except OSError:
        return now_ms
    return min(modified, now_ms)


def set_aside(path: Path, now_ms: int) -> Path:
    """Rename ``path`` to ``<name>.corrupt-<UTC time>`` and keep only the newest few."""
    aside = _aside_name(path, "corrupt", now_ms)
    os.rename(path, aside)  # same directory: atomic, and never follows a link at the target
    _prune(path, "corrupt", aside)
    return aside


def keep_aside(path: Path, data: bytes, now_ms: int) -> Path:
    """Keep the earlier script's file as ``<name>.pre-<UTC time>`` while ``path`` still
    holds it: a hard link, or, where one is refused (``fs.protected_hardlinks``, a
    filesystem without links), a private copy of ``data``, the bytes that were imported."""
    aside = _aside_name(path, "pre", now_ms)
    try:
        os.link(path, aside, follow_symlinks=False)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise
        _write_copy(aside, data)
    _prune(path, "pre", aside)
    return aside


def _write_copy(path: Path, data: bytes) -> None:
    fd = os.open(path, _COPY, 0o600)  # O_EXCL: never through, or over, anything there
    try:
        write_durably(fd, data)
    finally:
        os.close(fd)


def _aside_name(path: Path, kind: str, now_ms: int) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now_ms / 1000))
    return path.with_name(f"{path.name}.{kind}-{stamp}.{now_ms % 1000:03d}Z")


def _prune(path: Path, kind: str, fresh: Path) -> None:
    """Delete all but the newest :data:`KEEP_ASIDE` files of ``kind``, ``fresh`` among them.

    Only regular files named exactly ``<name>.<kind>-<stamp>`` are candidates; the stamps
    are fixed-width UTC times, so the names sort by time, the oldest first.
    """
    pattern = re.compile(re.escape(f"{path.name}.{kind}-") + _STAMP)
    with os.scandir(path.parent) as entries:
        others = sorted(
            entry.name
            for entry in entries
            if entry.name != fresh.name
            and pattern.fullmatch(entry.name)
            and entry.is_file(follow_symlinks=False)
        )
    for name in others[: max(len(others) - (KEEP_ASIDE - 1), 0)]:
        try:
            os.unlink(path.parent / name)
        except OSError as exc:
            log.debug("cannot remove %s: %s", path.parent / name, exc.strerror or exc)
