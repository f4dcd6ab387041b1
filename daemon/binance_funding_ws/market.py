"""Sans-I/O merge of market rows into per-symbol maps.

Rules (from the exchange facts):

* Every row is merged by its own symbol; nothing replaces a whole map. ``!ticker@arr`` sends
  only the symbols that changed, and mark price arrives in several frames per tick.
* COIN-M rows (``st`` 2) and TradFi rows are ordinary symbols, kept under their own name.
* A row older than what is already held for its symbol is ignored; a row with the same or a
  newer event time wins. That makes overlapping connections (make-before-break rotation)
  harmless: the same update delivered twice changes nothing.

Work is split in two so the receive path stays cheap: :meth:`MarketBook.apply` only records
the newest row per symbol (slim, as scanned on arrival); :meth:`MarketBook.publish`, called
once per write interval, has the frames of those rows expanded (:func:`~binance_funding_ws.
frames.expand`), validates their decimals and folds them into the published entries. A row
that fails either check is dropped then and the symbol keeps its previous good entry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter
from typing import Generic, NamedTuple, Protocol, TypeVar

import msgspec

from binance_funding_ws.frames import (
    AnyTickerRow,
    DecodedFrame,
    Keyed,
    MarkPriceRow,
    MiniTickerRow,
    ReceivedFrame,
    ScannedFrame,
    TickerRow,
    expand,
)
from binance_funding_ws.state import DECIMAL_PATTERN, FundingEntry, TickerEntry
from binance_funding_ws.text import format_age

_is_decimal = re.compile(DECIMAL_PATTERN).match

# The live market lists about 750 symbols (2026); a feed that names far more is broken or
# hostile, and every symbol costs memory and state-file bytes for good.
DEFAULT_MAX_SYMBOLS = 5_000
# How far past its arrival a row's event time may be: clocks drift by milliseconds, not by
# minutes. The daemon sets it; tests that replay old rows at made-up times need not.
MAX_AHEAD_MS = 60_000
# Scanned frames are kept, as bytes, until their rows are published. Past this many bytes the
# caller should publish early (the live feed brings ~0.3 MB a second).
PENDING_BYTES_LIMIT = 32 * 1024 * 1024


class Rejected(NamedTuple):
    """Rows of one frame refused for one reason: the reason's ``kind``, how many, and one
    line naming the first."""

    kind: str  # "future" or "symbols"
    rows: int
    reason: str


class Applied(NamedTuple):
    """What :meth:`MarketBook.apply` did with a frame."""

    accepted: int  # rows now pending (not older than what the book holds)
    rejected: list[Rejected]  # rows refused: dated too far ahead, or new to a full book


@dataclass(slots=True)
class _Arrival:
    """A frame being merged: when it came, how late its rows may be dated, what was refused."""

    frame: ReceivedFrame
    received_at: int
    not_after: float  # the newest event time accepted (inf: any)
    late: list[Keyed] = field(default_factory=list)  # rows dated after not_after
    unheld: list[str] = field(default_factory=list)  # symbols a full book could not take


class MarketBook:
    """The daemon's view of the market: published entries plus rows not yet published.

    Hostile input is bounded here: the book holds at most ``max_symbols`` symbols (both maps
    together; a symbol once held keeps its place), and, if ``max_ahead_ms`` is set, refuses
    rows dated more than that after their arrival, which would otherwise hold their symbol
    at their values for good. Both refusals are returned by :meth:`apply`, to be counted.
    """

    def __init__(
        self, max_symbols: int = DEFAULT_MAX_SYMBOLS, max_ahead_ms: int | None = None
    ) -> None:
        self.funding: dict[str, FundingEntry] = {}
        self.tickers: dict[str, TickerEntry] = {}
        self.max_symbols = max_symbols
        self.max_ahead_ms = max_ahead_ms
        self.pending_bytes = 0  # bytes of the scanned frames merged since the last publish
        self._symbols: set[str] = set()  # every symbol held, published or pending, either map
        self._mark = _Pending[MarkPriceRow](attrgetter("mark"), self._symbols, max_symbols)
        self._tickers = _Pending[AnyTickerRow](attrgetter("tickers"), self._symbols, max_symbols)

    @property
    def has_pending(self) -> bool:
        return bool(self._mark.rows or self._tickers.rows)

    def restore(
        self, funding: Mapping[str, FundingEntry], tickers: Mapping[str, TickerEntry]
    ) -> None:
        """Start from entries published by an earlier run (warm start), kept as they are.

        The merge rule then holds across the restart: a restored entry gives way only to a
        row at least as new. The fast path of the merge trusts ``newest_event_time`` alone,
        so it is raised to the newest restored entry: until rows pass it, every row is
        checked against what is held.
        """
        kept = self._within_cap({**tickers, **funding})
        self.funding.update((s, e) for s, e in funding.items() if s in kept)
        self.tickers.update((s, e) for s, e in tickers.items() if s in kept)
        self._symbols.update(kept)
        for pending, entries in ((self._mark, self.funding), (self._tickers, self.tickers)):
            newest = max((entry.event_time for entry in entries.values()), default=-1)
            pending.newest_event_time = max(pending.newest_event_time, newest)

    def _within_cap(self, entries: Mapping[str, _Published]) -> set[str]:
        """The symbols a restore may hold: all of them, or the most recently updated ones
        up to ``max_symbols`` (a previous file is no way around the cap)."""
        room = self.max_symbols - len(self._symbols)
        if len(entries) <= room:
            return set(entries)
        newest = sorted(entries, key=lambda symbol: entries[symbol].event_time, reverse=True)
        return set(newest[: max(room, 0)])

    def forget(self, funding: Sequence[str], tickers: Sequence[str]) -> None:
        """Drop published entries (see :func:`binance_funding_ws.health.forgotten`); a
        symbol gone from both maps gives its place back."""
        for symbol in funding:
            self.funding.pop(symbol, None)
        for symbol in tickers:
            self.tickers.pop(symbol, None)
        for symbol in (*funding, *tickers):
            if symbol not in self.funding and symbol not in self.tickers:
                self._symbols.discard(symbol)

    @property
    def should_publish(self) -> bool:
        """The frames kept for publication hold enough memory to publish now."""
        return self.pending_bytes > PENDING_BYTES_LIMIT

    def apply(self, frame: ReceivedFrame, received_at: int) -> Applied:
        """Record the frame's rows that are not older than what is held."""
        ahead = self.max_ahead_ms
        arrival = _Arrival(frame, received_at, math.inf if ahead is None else received_at + ahead)
        accepted = 0
        if frame.mark:
            accepted += self._mark.merge(frame.mark, self.funding, arrival)
        if frame.tickers:
            accepted += self._tickers.merge(frame.tickers, self.tickers, arrival)
        if accepted and isinstance(frame, ScannedFrame):
            self.pending_bytes += len(frame.raw)
        return Applied(accepted, self._refusals(arrival))

    def _refusals(self, arrival: _Arrival) -> list[Rejected]:
        refusals = []
        if arrival.late:
            first, count = arrival.late[0], len(arrival.late)
            allowance = (arrival.not_after - arrival.received_at) / 1000
            ahead = format_age((first.E - arrival.received_at) / 1000)
            refusals.append(
                Rejected(
                    "future",
                    count,
                    f"{count} row(s) dated more than {allowance:g} s ahead of the "
                    f"local clock skipped; first: {first.s!r} at E={first.E}, {ahead} ahead",
                )
            )
        if arrival.unheld:
            count = len(arrival.unheld)
            refusals.append(
                Rejected(
                    "symbols",
                    count,
                    f"{count} row(s) of new symbols skipped: {self.max_symbols:,} symbols held "
                    f"already, the limit (--max-symbols); first: {arrival.unheld[0]!r}",
                )
            )
        return refusals

    def publish(self) -> list[str]:
        """Fold pending rows into the published maps; return one message per rejected row."""
        errors: list[str] = []
        expanded: dict[int, DecodedFrame] = {}  # each scanned frame expanded once
        marks = self._mark.full_rows(expanded, errors)
        tickers = self._tickers.full_rows(expanded, errors)
        received = self._mark.received
        for symbol, row in marks.items():
            funding = _funding_entry(row, received[symbol])
            if funding is None:
                errors.append(f"{symbol} markPriceUpdate skipped: a price or rate is not a decimal")
            else:
                self.funding[symbol] = funding
        received = self._tickers.received
        for symbol, ticker in tickers.items():
            previous = self.tickers.get(symbol)
            entry = _ticker_entry(ticker, received[symbol], previous)
            if entry is None:
                errors.append(f"{symbol} {_event_name(ticker)} skipped: a value is not a decimal")
            else:
                self.tickers[symbol] = entry
        self._release_unpublished()
        self._mark.clear()
        self._tickers.clear()
        self.pending_bytes = 0
        return errors

    def _release_unpublished(self) -> None:
        """Give back the places of new symbols whose rows all failed: junk that never made
        it into the file must not fill the book."""
        for symbol in (*self._mark.rows, *self._tickers.rows):
            if symbol not in self.funding and symbol not in self.tickers:
                self._symbols.discard(symbol)


class _Published(Protocol):
    @property
    def event_time(self) -> int: ...


FullRow = TypeVar("FullRow", bound=Keyed)


class _Pending(Generic[FullRow]):
    """The newest unpublished row per symbol, when it arrived, and the frame it came in.

    A row is slim if its frame was scanned, full if the frame had to be decoded in full on
    arrival. Kept in three dicts rather than one dict of tuples: the fast path then fills
    them with C-level ``dict.update`` calls and allocates nothing per row.
    """

    def __init__(
        self, rows_of: Callable[[DecodedFrame], list[FullRow]], symbols: set[str], limit: int
    ) -> None:
        self._rows_of = rows_of  # which rows of a decoded frame are ours
        self._symbols = symbols  # shared by both maps: the book's symbols
        self._limit = limit
        self.rows: dict[str, Keyed] = {}
        self.received: dict[str, int] = {}
        self.frames: dict[str, ReceivedFrame] = {}  # where each pending row came from
        # No row merged so far (pending or published) is newer than this event time.
        self.newest_event_time = -1

    def clear(self) -> None:
        self.rows.clear()
        self.received.clear()
        self.frames.clear()

    def full_rows(self, expanded: dict[int, DecodedFrame], errors: list[str]) -> dict[str, FullRow]:
        """Every pending row in full, in arrival order; each frame is expanded once.

        A row whose full decode fails is left out (its symbol keeps its published entry);
        the expansion's errors, which name it, are added to ``errors``.
        """
        found: dict[int, dict[tuple[str, int], FullRow]] = {}
        for frame in self.frames.values():
            if id(frame) not in found:
                found[id(frame)] = self._index(frame, expanded, errors)
        full: dict[str, FullRow] = {}
        for symbol, row in self.rows.items():
            match = found[id(self.frames[symbol])].get((symbol, row.E))
            if match is not None:
                full[symbol] = match
        return full

    def _index(
        self, frame: ReceivedFrame, expanded: dict[int, DecodedFrame], errors: list[str]
    ) -> dict[tuple[str, int], FullRow]:
        decoded = expanded.get(id(frame))
        if decoded is None:  # a frame mixing kinds is expanded for the first kind only
            decoded = expanded[id(frame)] = expand(frame)
            if decoded is not frame:  # a frame decoded on arrival reported its errors then
                errors.extend(decoded.errors)
        return {(row.s, row.E): row for row in self._rows_of(decoded)}

    def merge(
        self, rows: Sequence[Keyed], published: Mapping[str, _Published], arrival: _Arrival
    ) -> int:
        """Keep each row unless its symbol holds a newer one; return how many were kept.

        Rows dated after ``arrival.not_after``, and rows of symbols new to a full book, are
        not kept: they go to ``arrival``'s lists.

        Fast path, for the common frame (every row at least as new as anything merged so
        far and not dated ahead, one row per symbol, no new symbol): no per-row Python at
        all. It keeps the receive loop close to the cost of bare parsing (see
        benchmarks/bench_daemon.py).
        """
        times = list(map(_event_time, rows))
        oldest, newest = min(times), max(times)
        if oldest >= self.newest_event_time and newest <= arrival.not_after:
            symbols = list(map(_symbol, rows))
            distinct = set(symbols)
            if len(distinct) == len(symbols) and distinct <= self._symbols:
                self.rows.update(zip(symbols, rows, strict=True))
                self.received.update(zip(symbols, repeat(arrival.received_at), strict=False))
                self.frames.update(zip(symbols, repeat(arrival.frame), strict=False))
                self.newest_event_time = newest
                return len(rows)
        if newest > arrival.not_after:  # rows from the future must not raise the mark
            newest = max((t for t in times if t <= arrival.not_after), default=-1)
        self.newest_event_time = max(self.newest_event_time, newest)
        return self._merge_row_by_row(rows, published, arrival)

    def _merge_row_by_row(
        self, rows: Sequence[Keyed], published: Mapping[str, _Published], arrival: _Arrival
    ) -> int:
        pending, received, frames = self.rows, self.received, self.frames
        symbols, limit, not_after = self._symbols, self._limit, arrival.not_after
        accepted = 0
        for row in rows:
            if not_after < row.E:
                arrival.late.append(row)
                continue
            symbol = row.s
            held = pending.get(symbol)
            if held is not None:
                if row.E < held.E:
                    continue
            else:
                entry = published.get(symbol)
                if entry is not None:
                    if entry.event_time > row.E:
                        continue
                elif symbol not in symbols:  # new to the book (it may be in the other map)
                    if len(symbols) >= limit:
                        arrival.unheld.append(symbol)
                        continue
                    symbols.add(symbol)
            pending[symbol] = row
            received[symbol] = arrival.received_at
            frames[symbol] = arrival.frame
            accepted += 1
        return accepted


_event_time = attrgetter("E")
_symbol = attrgetter("s")


_DECIMAL = DECIMAL_PATTERN.removeprefix("^").removesuffix("$")


def _decimals(count: int) -> Callable[[str], re.Match[str] | None]:
    """A matcher for ``count`` comma-joined decimals. One regex call per row instead of one
    per field: publishing is the daemon's largest per-interval cost. The exact count makes a
    "," inside a field fail the match."""
    return re.compile(rf"(?:{_DECIMAL},){{{count - 1}}}{_DECIMAL}").fullmatch


_FUNDING_OK = _decimals(4)  # p, i, P, r
_FUNDING_WITH_AVG_OK = _decimals(5)  # ... and ap
_TICKER_OK = _decimals(9)  # c, o, h, l, v, q, P, p, w
_MINI_TICKER_OK = _decimals(6)  # c, o, h, l, v, q


def _optional_decimal(value: str | None) -> bool:
    return value is None or _is_decimal(value) is not None


def _funding_entry(row: MarkPriceRow, received_at: int) -> FundingEntry | None:
    if row.ap is None:
        ok = _FUNDING_OK(f"{row.p},{row.i},{row.P},{row.r}")
    else:
        ok = _FUNDING_WITH_AVG_OK(f"{row.p},{row.i},{row.P},{row.r},{row.ap}")
    if ok is None:
        return None
    return FundingEntry(
        mark_price=row.p,
        index_price=row.i,
        estimated_settle_price=row.P,
        funding_rate=row.r,
        next_funding_time=row.T,
        event_time=row.E,
        received_at=received_at,
        mark_price_avg=row.ap,
        contract_type=row.st,
        pair=row.ps,
    )


def _ticker_entry(
    row: AnyTickerRow, received_at: int, previous: TickerEntry | None
) -> TickerEntry | None:
    if type(row) is MiniTickerRow:
        return _mini_ticker_entry(row, received_at, previous)
    assert isinstance(row, TickerRow)
    if row.p is not None and row.w is not None:
        ok = _TICKER_OK(f"{row.c},{row.o},{row.h},{row.l},{row.v},{row.q},{row.P},{row.p},{row.w}")
    else:  # the optional fields missing: the rare, slower check
        ok = _MINI_TICKER_OK(f"{row.c},{row.o},{row.h},{row.l},{row.v},{row.q}") and (
            _is_decimal(row.P) and _optional_decimal(row.p) and _optional_decimal(row.w)
        )
    if not ok:
        return None
    return TickerEntry(
        last_price=row.c,
        open_price=row.o,
        high_price=row.h,
        low_price=row.l,
        volume=row.v,
        quote_volume=row.q,
        event_time=row.E,
        received_at=received_at,
        price_change=row.p,
        price_change_percent=row.P,
        weighted_avg_price=row.w,
        trade_count=row.n,
        contract_type=row.st,
        pair=row.ps,
    )


def _mini_ticker_entry(
    row: MiniTickerRow, received_at: int, previous: TickerEntry | None
) -> TickerEntry | None:
    if not _MINI_TICKER_OK(f"{row.c},{row.o},{row.h},{row.l},{row.v},{row.q}"):
        return None
    common = {
        "last_price": row.c,
        "open_price": row.o,
        "high_price": row.h,
        "low_price": row.l,
        "volume": row.v,
        "quote_volume": row.q,
        "event_time": row.E,
        "received_at": received_at,
    }
    # A mini ticker carries no change, percent or trade count: keep the last known ones.
    if previous is None:
        return TickerEntry(**common)
    return msgspec.structs.replace(previous, **common)


def _event_name(row: AnyTickerRow) -> str:
    return "24hrMiniTicker" if isinstance(row, MiniTickerRow) else "24hrTicker"
