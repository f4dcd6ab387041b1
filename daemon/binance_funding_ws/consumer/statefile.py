"""The state file as a consumer sees it: checked at most every ``check_interval``, parsed once
per change, never an exception.

Invariants:

* At most one ``stat()`` per ``check_interval`` across all threads; between checks a lookup
  costs a clock read and an attribute read.
* A changed file is read and decoded by one thread while the others wait for it (the lock is
  held only for the check, the read and the decode, never across a lookup). Bytes equal to the
  last decoded ones are not decoded again.
* The signature (device, inode, size, mtime, ctime) is taken *before* the read: a replacement
  racing with the read costs one extra read at the next check, never a missed version.
* A missing, unreadable or corrupt file is counted once per change of the file and gives an
  empty snapshot: every symbol is then unanswered, so lookups fall back rather than trust it.
* A snapshot holds ready-made quotes, keyed only by valid symbols (``normalize_symbol(key) ==
  key``): they are built once per version, and a hit on a key proves the symbol valid.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from binance_funding_ws.botstats import LookupCounters
from binance_funding_ws.quotes import (
    FundingQuote,
    TickerQuote,
    funding_from_entry,
    normalize_symbol,
    ticker_from_entry,
)
from binance_funding_ws.state import (
    FundingEntry,
    StateFileError,
    TickerEntry,
    decode_state,
    read_bounded,
)
from binance_funding_ws.text import one_line

log = logging.getLogger("binance_funding_ws.consumer")

Signature = tuple[int, int, int, int, int]
E = TypeVar("E", FundingEntry, TickerEntry)
Q = TypeVar("Q", FundingQuote, TickerQuote)
_NEVER_READ: tuple[()] = ()  # differs from every signature and from None (no file)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version of the file's quotes, and when (monotonic seconds) the file was last checked."""

    funding: Mapping[str, FundingQuote]
    tickers: Mapping[str, TickerQuote]
    checked_at: float
    signature: Signature | tuple[()] | None
    error: str | None = None  # why the maps are empty, while the file is unusable


class StateCache:
    """The newest readable version of one state file, shared by every thread."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        check_interval: float,
        counters: LookupCounters,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = os.fspath(path)
        self._interval = check_interval
        self._counters = counters
        self._clock = clock
        self._lock = threading.Lock()
        self._data: bytes | None = None  # the bytes behind the current maps
        self._snapshot = Snapshot({}, {}, float("-inf"), _NEVER_READ)

    def current(self) -> Snapshot:
        """The snapshot to answer from: the cached one unless ``check_interval`` has passed."""
        snapshot = self._snapshot
        if self._clock() - snapshot.checked_at < self._interval:
            return snapshot
        with self._lock:
            snapshot, now_s = self._snapshot, self._clock()
            if now_s - snapshot.checked_at >= self._interval:  # not checked while we waited
                snapshot = self._snapshot = self._refresh(snapshot, now_s)
            return snapshot

    def _refresh(self, snapshot: Snapshot, now_s: float) -> Snapshot:
        self._counters.add("file_checks")
        signature = _signature(self._path)
        if signature == snapshot.signature:
            return replace(snapshot, checked_at=now_s)
        try:
            data = read_bounded(self._path)
            if data == self._data:
                return replace(snapshot, checked_at=now_s, signature=signature)
            document = decode_state(data, self._path)
        except StateFileError as exc:
            return self._unusable(snapshot, exc, signature, now_s)
        if snapshot.error is not None:
            log.info("state file readable again: %s", one_line(self._path))
        self._data = data
        self._counters.add("file_parses")
        funding = _quotes(document.funding, funding_from_entry)
        return Snapshot(funding, _quotes(document.tickers, ticker_from_entry), now_s, signature)

    def _unusable(
        self,
        snapshot: Snapshot,
        exc: StateFileError,
        signature: Signature | None,
        now_s: float,
    ) -> Snapshot:
        self._counters.add("file_errors")
        self._data = None
        error = one_line(exc)
        if error != snapshot.error:  # a lasting fault is logged once, not at every check
            log.warning("state file unusable, answering without it: %s", error)
        return Snapshot({}, {}, now_s, signature, error)


def _quotes(entries: Mapping[str, E], convert: Callable[[str, E], Q]) -> dict[str, Q]:
    return {key: convert(key, entry) for key, entry in entries.items() if _is_symbol(key)}


def _is_symbol(key: str) -> bool:
    return normalize_symbol(key) == key


def _signature(path: str) -> Signature | None:
    """What changes whenever the daemon replaces the file (a new inode) or anyone edits it."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
