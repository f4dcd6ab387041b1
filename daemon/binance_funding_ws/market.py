"""Sans-I/O merge of market rows into per-symbol maps.

Rules (from the exchange facts):

* Every row is merged by its own symbol; nothing replaces a whole map. ``!ticker@arr`` sends
  only the symbols that changed, and mark price arrives in several frames per tick.
* COIN-M rows (``st`` 2) and TradFi rows are ordinary symbols, kept under their own name.
* A row older than what is already held for its symbol is ignored; a row with the same or a
  newer event time wins. That makes overlapping connections (make-before-break rotation)
  harmless: the same update delivered twice changes nothing.
* Entries restored from a previous file (warm start) pass the same gate as live rows, and
  ``--max-symbols`` keeps the freshest of them (:meth:`MarketBook.restore`).

Work is split in two so the receive path stays cheap: :meth:`MarketBook.apply` only records
the newest row per symbol; :meth:`MarketBook.publish`, called once per write interval,
validates the decimals of those rows and folds them into the published entries. A row that
fails the check is dropped then and the symbol keeps its previous good entry.

Publishing is the daemon's largest cost at the live rate (one tick per write: every row is
published), so it is done a frame's rows at a time: their decimals are checked all at once
(:func:`_all_decimals`) and their entries built by one comprehension (:class:`_EntryKind`).
See docs/benchmarks.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter
from typing import Any, Generic, NamedTuple, Protocol, TypeVar, cast

import msgspec

from binance_funding_ws.durations import format_age
from binance_funding_ws.frames import (
    MAX_TEXT,
    AnyTickerRow,
    DecodedFrame,
    Keyed,
    MarkPriceRow,
    MiniTickerRow,
    TickerRow,
)
from binance_funding_ws.quotes import normalize_symbol
from binance_funding_ws.state import (
    DECIMAL_PATTERN,
    FundingEntry,
    MissingSymbols,
    TickerEntry,
    missing_symbols,
)

# The live market lists about 750 symbols (2026); a feed that names far more is broken or
# hostile, and every symbol costs memory and state-file bytes for good.
DEFAULT_MAX_SYMBOLS = 5_000
# How far past its arrival a row's event time may be: clocks drift by milliseconds, not by
# minutes. The daemon sets it; tests that replay old rows at made-up times need not.
MAX_AHEAD_MS = 60_000


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


class Dropped(NamedTuple):
    """Entries of a previous file refused by the warm start's gate for one reason."""

    reason: str  # what was wrong with them, e.g. "not keyed by a symbol"
    symbols: list[str]  # their keys, in the file's order (a symbol in both maps twice)


@dataclass(slots=True)
class _Arrival:
    """A frame being merged: when it came, how late its rows may be dated, what was refused."""

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
    Rows waiting for publication are kept one per symbol, so what the book holds between
    two publishes is bounded by ``max_symbols`` too, however many frames arrive.

    ``funding`` and ``tickers`` are for reading: they change only through :meth:`publish`,
    :meth:`restore` and :meth:`forget`, which keep :meth:`missing` up to date.
    """

    def __init__(
        self, max_symbols: int = DEFAULT_MAX_SYMBOLS, max_ahead_ms: int | None = None
    ) -> None:
        self.funding: dict[str, FundingEntry] = {}
        self.tickers: dict[str, TickerEntry] = {}
        self.max_symbols = max_symbols
        self.max_ahead_ms = max_ahead_ms
        self._symbols: set[str] = set()  # every symbol held, published or pending, either map
        self._mark = _Pending[MarkPriceRow](self._symbols, max_symbols)
        self._tickers = _Pending[AnyTickerRow](self._symbols, max_symbols)
        self._keys_version = 0  # changes whenever either map gains or loses a symbol
        self._missing: tuple[int, MissingSymbols] | None = None

    @property
    def has_pending(self) -> bool:
        return bool(self._mark.rows or self._tickers.rows)

    def restore(
        self,
        funding: Mapping[str, FundingEntry],
        tickers: Mapping[str, TickerEntry],
        *,
        written_at: int,
        now: int,
    ) -> list[Dropped]:
        """Start from entries published by an earlier run (warm start); return what was
        refused, by reason.

        A previous file is untrusted input, so its entries pass the live rows' gate
        (:func:`restorable`): a key that is a symbol, decimals of the exchange's grammar and
        length, an event time at most :data:`MAX_AHEAD_MS` past the file's own write time
        ``written_at`` (and never past ``now`` + that), then ``max_symbols``, the freshest
        entries first. Without it, a file of future-dated junk would hold its values for
        good and keep every real symbol out.

        What is kept is kept as it is, so the merge rule holds across the restart: a
        restored entry gives way only to a row at least as new. The fast path of the merge
        trusts ``newest_event_time`` alone, so it is raised to the newest restored entry:
        until rows pass it, every row is checked against what is held.
        """
        not_after = min(written_at, now) + MAX_AHEAD_MS
        dropped: list[Dropped] = []
        funding = restorable(funding, _FUNDING_ENTRY, not_after, dropped)
        tickers = restorable(tickers, _TICKER_ENTRY, not_after, dropped)
        kept = self._within_cap({**tickers, **funding})
        over = [s for entries in (funding, tickers) for s in entries if s not in kept]
        if over:
            dropped.append(Dropped(f"over --max-symbols ({self.max_symbols:,})", over))
        self.funding.update((s, e) for s, e in funding.items() if s in kept)
        self.tickers.update((s, e) for s, e in tickers.items() if s in kept)
        self._symbols.update(kept)
        self._keys_version += 1
        for pending, entries in ((self._mark, self.funding), (self._tickers, self.tickers)):
            newest = max((entry.event_time for entry in entries.values()), default=-1)
            pending.newest_event_time = max(pending.newest_event_time, newest)
        return dropped

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
        if funding or tickers:
            self._keys_version += 1

    def missing(self) -> MissingSymbols:
        """The symbols in one map but not the other (:func:`~binance_funding_ws.state.
        missing_symbols`), worked out again only after a map gained or lost a symbol: the
        usual publish only replaces entries, and two set differences and sorts of every
        symbol each second would cost more than the merge."""
        cached = self._missing
        if cached is not None and cached[0] == self._keys_version:
            return cached[1]
        missing = missing_symbols(self.funding, self.tickers)
        self._missing = (self._keys_version, missing)
        return missing

    def apply(self, frame: DecodedFrame, received_at: int) -> Applied:
        """Record the frame's rows that are not older than what is held."""
        ahead = self.max_ahead_ms
        arrival = _Arrival(received_at, math.inf if ahead is None else received_at + ahead)
        accepted = 0
        if frame.mark:
            accepted += self._mark.merge(frame.mark, self.funding, arrival)
        if frame.tickers:
            accepted += self._tickers.merge(frame.tickers, self.tickers, arrival)
        return Applied(accepted, self._refusals(arrival))

    def _refusals(self, arrival: _Arrival) -> list[Rejected]:
        refusals = []
        if arrival.late:
            first, count = arrival.late[0], len(arrival.late)
            allowance = (arrival.not_after - arrival.received_at) / 1000
            ahead = format_age((first.event_time - arrival.received_at) / 1000)
            refusals.append(
                Rejected(
                    "future",
                    count,
                    f"{count} row(s) dated more than {allowance:g} s ahead of the "
                    f"local clock skipped; first: {first.symbol!r} at E={first.event_time}, "
                    f"{ahead} ahead",
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
        """Fold pending rows into the published maps; return one message per rejected row.

        Rows go by frame (:meth:`_Pending.groups`): the rows of a frame become entries
        together (:meth:`_EntryKind.entries`), after one check of all their decimals. No
        row is looked up one by one.
        """
        errors: list[str] = []
        sizes = len(self.funding), len(self.tickers)
        for marks, arrivals in self._mark.groups():
            self.funding.update(_FUNDING.entries(marks, arrivals, errors))
        for tickers, arrivals in self._tickers.groups():
            self._publish_tickers(tickers, arrivals, errors)
        if errors:  # only a rejected row can leave a new symbol unpublished
            self._release_unpublished()
        self._mark.clear()
        self._tickers.clear()
        if (len(self.funding), len(self.tickers)) != sizes:  # publishing only adds symbols
            self._keys_version += 1
        return errors

    def _publish_tickers(
        self, rows: list[AnyTickerRow], arrivals: Iterable[int], errors: list[str]
    ) -> None:
        if set(map(type, rows)) == {TickerRow}:  # the !ticker@arr stream: every time
            self.tickers.update(_TICKERS.entries(cast(list[TickerRow], rows), arrivals, errors))
            return
        # The mini-ticker stream too: rare, row by row. (arrivals may be endless: repeat(at).)
        pairs = list(zip(rows, arrivals, strict=False))
        full = [(row, at) for row, at in pairs if type(row) is TickerRow]
        rows_only, times = [row for row, _ in full], [at for _, at in full]
        self.tickers.update(_TICKERS.entries(rows_only, times, errors))
        for row, received_at in pairs:
            if type(row) is MiniTickerRow:
                self._publish_mini_ticker(row, received_at, errors)

    def _publish_mini_ticker(self, row: MiniTickerRow, received_at: int, errors: list[str]) -> None:
        if not _MINI_TICKER_CHECK.row_ok(row):
            errors.append(_MINI_TICKER_CHECK.rejected(row))
            return
        common = {name: getattr(row, name) for name in _MINI_TICKER_FIELDS}
        common |= {"event_time": row.event_time, "received_at": received_at}
        # A mini ticker carries no change, percent or trade count: keep the last known ones.
        previous = self.tickers.get(row.symbol)
        if previous is None:
            self.tickers[row.symbol] = TickerEntry(**common)
        else:
            self.tickers[row.symbol] = msgspec.structs.replace(previous, **common)

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
_Entry = TypeVar("_Entry", FundingEntry, TickerEntry)


class _Pending(Generic[FullRow]):
    """The newest unpublished row per symbol of one map, and when each row's frame arrived.

    ``rows`` holds each symbol's pending row. Arrival times are kept per frame while no
    symbol is pending from two frames (the live rate: one tick per write), so
    :meth:`groups` hands each frame's rows over with one arrival time and no lookup per
    row. The first frame that brings a symbol again switches to one arrival time per row
    (``arrivals``): the frame no longer holds its superseded rows, so what is pending stays
    at one row per symbol, however many frames come between two writes.
    """

    def __init__(self, symbols: set[str], limit: int) -> None:
        self._symbols = symbols  # shared by both maps: the book's symbols
        self._limit = limit
        self.rows: dict[str, FullRow] = {}
        self.frames: list[tuple[int, dict[str, FullRow]]] = []  # (arrival, accepted rows)
        self.arrivals: dict[str, int] | None = None  # per symbol, once frames overlap
        # No row merged so far (pending or published) is newer than this event time.
        self.newest_event_time = -1

    def clear(self) -> None:
        self.rows.clear()
        self.frames.clear()
        self.arrivals = None

    def groups(self) -> list[tuple[list[FullRow], Iterable[int]]]:
        """The pending rows in groups, each with its rows' arrival times in order (one
        group per frame while arrival times are kept per frame)."""
        if self.arrivals is None:
            return [(list(rows.values()), repeat(at)) for at, rows in self.frames]
        arrivals = self.arrivals
        return [(list(self.rows.values()), [arrivals[symbol] for symbol in self.rows])]

    def _record(self, accepted: dict[str, FullRow], received_at: int, overlap: bool) -> None:
        """Note when the rows ``accepted`` from one frame arrived (``overlap``: one of them
        replaced a row pending from an earlier frame)."""
        if self.arrivals is None and not overlap:
            self.frames.append((received_at, accepted))
            return
        if self.arrivals is None:
            self.arrivals = {}
            for at, earlier in self.frames:
                self.arrivals.update(dict.fromkeys(earlier, at))
            self.frames.clear()
        self.arrivals.update(dict.fromkeys(accepted, received_at))

    def merge(
        self, rows: Sequence[FullRow], published: Mapping[str, _Published], arrival: _Arrival
    ) -> int:
        """Keep each row unless its symbol holds a newer one; return how many were kept.

        Rows dated after ``arrival.not_after``, and rows of symbols new to a full book, are
        not kept: they go to ``arrival``'s lists.

        Fast path, for the common frame (every row at least as new as anything merged so
        far and not dated ahead, one row per symbol, no new symbol): a few C-level passes
        over the frame and no per-row Python. It keeps the receive loop close to the cost of
        bare parsing (see benchmarks/bench_daemon.py).
        """
        times = [row.event_time for row in rows]
        if times.count(times[0]) == len(times):  # the usual frame: one event time for all
            oldest = newest = times[0]
        else:
            oldest, newest = min(times), max(times)
        if oldest >= self.newest_event_time and newest <= arrival.not_after:
            accepted = {row.symbol: row for row in rows}
            if len(accepted) == len(rows) and self._symbols.issuperset(accepted):
                before = len(self.rows)
                self.rows.update(accepted)
                self._record(accepted, arrival.received_at, len(self.rows) - before < len(rows))
                self.newest_event_time = newest
                return len(rows)
        if newest > arrival.not_after:  # rows from the future must not raise the mark
            newest = max((t for t in times if t <= arrival.not_after), default=-1)
        self.newest_event_time = max(self.newest_event_time, newest)
        return self._merge_row_by_row(rows, published, arrival)

    def _merge_row_by_row(
        self, rows: Sequence[FullRow], published: Mapping[str, _Published], arrival: _Arrival
    ) -> int:
        pending, accepted = self.rows, dict[str, FullRow]()
        symbols, limit, not_after = self._symbols, self._limit, arrival.not_after
        overlap = False
        for row in rows:
            if not_after < row.event_time:
                arrival.late.append(row)
                continue
            symbol = row.symbol
            held = pending.get(symbol)
            if held is not None:
                if row.event_time < held.event_time:
                    continue
                overlap = overlap or symbol not in accepted  # pending from an earlier frame
            else:
                entry = published.get(symbol)
                if entry is not None:
                    if entry.event_time > row.event_time:
                        continue
                elif symbol not in symbols:  # new to the book (it may be in the other map)
                    if len(symbols) >= limit:
                        arrival.unheld.append(symbol)
                        continue
                    symbols.add(symbol)
            pending[symbol] = accepted[symbol] = row
        if accepted:
            self._record(accepted, arrival.received_at, overlap)
        return len(accepted)


_DECIMAL = DECIMAL_PATTERN.removeprefix("^").removesuffix("$")
# fullmatch, not the pattern's own "^...$" with match(): "$" also matches before a final "\n".
_is_decimal = re.compile(_DECIMAL).fullmatch
_NUMBER_CHARS = b"0123456789.-"
_json_numbers = msgspec.json.Decoder(msgspec.Raw).decode  # checks the syntax, builds nothing


def _all_decimals(columns: Sequence[list[str]]) -> bool:
    """Whether every value of every column is a decimal (``-?[0-9]+(\\.[0-9]+)?``), checked in C.

    Hand-rolled because a regex costs ~40 ns a character in Python's engine (about as much
    as the rest of publishing). Instead: the values, comma-joined, must be ASCII, hold only
    digits, dots, minus signs and exactly one comma between two values, and parse as a JSON
    array of numbers. Without "e", "E" or "+", a JSON number is ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?``:
    a decimal. The converse fails only for leading zeros ("007"), which the exchange does
    not send: a False sends the caller to the exact per-field check, never to a rejection.
    Columns (one list per field) rather than rows: gathering a field of every row is one
    specialised comprehension, about half the cost of flattening per-row tuples.
    """
    count = sum(map(len, columns))
    try:
        joined = ",".join(map(",".join, filter(None, columns))).encode("ascii")
    except UnicodeEncodeError:
        return False
    if not joined:  # no values, or one empty one ("[]" would parse)
        return count == 0
    separators = joined.translate(None, _NUMBER_CHARS)  # the commas, and anything else
    if len(separators) != count - 1 or separators.strip(b","):
        return False
    try:
        _json_numbers(b"".join((b"[", joined, b"]")))
    except msgspec.DecodeError:
        return False
    return True


class _RowCheck(NamedTuple):
    """One kind of row's decimal fields, checked one row at a time, and the message for a
    row that fails them."""

    event: str  # the row's event type, for the message
    what: str  # what was not a decimal
    required: tuple[str, ...]  # decimal fields
    optional: tuple[str, ...] = ()  # decimal fields that may be None

    def row_ok(self, row: object) -> bool:
        return all(_is_decimal(getattr(row, name)) for name in self.required) and all(
            value is None or _is_decimal(value)
            for value in (getattr(row, name) for name in self.optional)
        )

    def rejected(self, row: Keyed) -> str:
        return f"{row.symbol} {self.event} skipped: {self.what} is not a decimal"


class _EntryKind(NamedTuple):
    """How rows of one kind become entries, a group of rows at a time."""

    check: _RowCheck
    decimals: Callable[[Sequence[Any]], list[list[str]]]  # the rows' decimals, by field
    build: Callable[[Sequence[Any], Iterable[int]], dict[str, Any]]  # symbol: entry

    def entries(
        self, rows: Sequence[Keyed], arrivals: Iterable[int], errors: list[str]
    ) -> dict[str, Any]:
        """``{symbol: entry}`` for each row whose decimals are all decimals, its
        ``received_at`` taken from ``arrivals`` (in the order of ``rows``); one message in
        ``errors`` for each other row.

        The decimals of all the rows are checked at once (:func:`_all_decimals`), one row at
        a time only if that fails; the entries are built by one comprehension. Measured in
        benchmarks/bench_publish.py, with the alternatives tried.
        """
        if not _all_decimals(self.decimals(rows)):
            pairs = zip(rows, arrivals, strict=False)  # arrivals may be endless: repeat(at)
            kept = [(r, at) for r, at in pairs if self._well_formed(r, errors)]
            rows, arrivals = [r for r, _ in kept], [at for _, at in kept]
        return self.build(rows, arrivals)

    def _well_formed(self, row: Keyed, errors: list[str]) -> bool:
        if self.check.row_ok(row):
            return True
        errors.append(self.check.rejected(row))
        return False


def _present(values: list[str | None]) -> list[str]:
    """``values`` without its Nones (an optional field absent from some rows)."""
    return [v for v in values if v is not None] if None in values else cast(list[str], values)


# The builders below read every field by name in a comprehension: CPython 3.11 specialises
# such attribute reads, which makes them cheaper than any C-level helper reachable from
# Python here (attrgetter, msgspec.convert).
def _mark_decimals(rows: Sequence[MarkPriceRow]) -> list[list[str]]:
    return [
        [r.mark_price for r in rows],
        [r.index_price for r in rows],
        [r.estimated_settle_price for r in rows],
        [r.funding_rate for r in rows],
        _present([r.mark_price_avg for r in rows]),
    ]


def _funding_entries(
    rows: Sequence[MarkPriceRow], arrivals: Iterable[int]
) -> dict[str, FundingEntry]:
    # Positional, in FundingEntry's field order: cheaper than keywords, and
    # test_a_row_with_every_field_becomes_the_entry_built_by_keyword checks the order.
    return {
        r.symbol: FundingEntry(
            r.mark_price, r.index_price, r.estimated_settle_price, r.funding_rate,
            r.next_funding_time, r.event_time, received_at, r.mark_price_avg,
            r.contract_type, r.pair,
        )
        for r, received_at in zip(rows, arrivals, strict=False)  # arrivals: maybe repeat(at)
    }  # fmt: skip


def _ticker_decimals(rows: Sequence[TickerRow]) -> list[list[str]]:
    return [
        [r.last_price for r in rows],
        [r.open_price for r in rows],
        [r.high_price for r in rows],
        [r.low_price for r in rows],
        [r.volume for r in rows],
        [r.quote_volume for r in rows],
        [r.price_change_percent for r in rows],
        _present([r.price_change for r in rows]),
        _present([r.weighted_avg_price for r in rows]),
    ]


def _ticker_entries(rows: Sequence[TickerRow], arrivals: Iterable[int]) -> dict[str, TickerEntry]:
    # Positional, in TickerEntry's field order (see _funding_entries).
    return {
        r.symbol: TickerEntry(
            r.last_price, r.open_price, r.high_price, r.low_price, r.volume, r.quote_volume,
            r.event_time, received_at, r.price_change, r.price_change_percent,
            r.weighted_avg_price, r.trade_count, r.contract_type, r.pair,
        )
        for r, received_at in zip(rows, arrivals, strict=False)  # arrivals: maybe repeat(at)
    }  # fmt: skip


_FUNDING = _EntryKind(
    _RowCheck(
        "markPriceUpdate",
        "a price or rate",
        ("mark_price", "index_price", "estimated_settle_price", "funding_rate"),
        ("mark_price_avg",),
    ),
    _mark_decimals,
    _funding_entries,
)
_TICKERS = _EntryKind(
    _RowCheck(
        "24hrTicker",
        "a value",
        ("last_price", "open_price", "high_price", "low_price", "volume", "quote_volume",
         "price_change_percent"),
        ("price_change", "weighted_avg_price"),
    ),
    _ticker_decimals,
    _ticker_entries,
)  # fmt: skip
_MINI_TICKER_FIELDS = (
    "last_price", "open_price", "high_price", "low_price", "volume", "quote_volume",
)  # fmt: skip
_MINI_TICKER_CHECK = _RowCheck("24hrMiniTicker", "a value", _MINI_TICKER_FIELDS)


# -- the warm start's gate ---------------------------------------------------------------


class _EntryCheck(NamedTuple):
    """What a restored entry must hold: the fields that must be decimals, those that may
    also be None, and the other text fields (bounded like the feed's, :data:`MAX_TEXT`)."""

    decimals: tuple[str, ...]
    optional: tuple[str, ...]
    texts: tuple[str, ...] = ("pair",)

    def ok(self, entry: object) -> bool:
        values = [getattr(entry, name) for name in self.decimals]
        optional = [getattr(entry, name) for name in self.optional]
        texts = [getattr(entry, name) for name in self.texts]
        return (
            all(_short_decimal(value) for value in values)
            and all(value is None or _short_decimal(value) for value in optional)
            and all(value is None or _short_text(value) for value in texts)
        )

    def all_ok(self, entries: Sequence[object]) -> bool:
        """Whether every entry passes :meth:`ok`, checked a column at a time in C, as the
        publish path checks rows (:func:`_all_decimals`); ``False`` may be a false alarm
        (leading zeros): the caller then checks entry by entry. At a file's 5,000 symbols,
        entry by entry costs ~0.2 s of the start."""
        decimals = [list(map(attrgetter(name), entries)) for name in self.decimals]
        decimals += [_present(list(map(attrgetter(name), entries))) for name in self.optional]
        texts = [_present(list(map(attrgetter(name), entries))) for name in self.texts]
        columns = decimals + texts
        return (
            all(set(map(type, column)) <= {str} for column in columns)
            and all(max(map(len, column), default=0) <= MAX_TEXT for column in columns)
            and _all_decimals(decimals)
        )


def _short_text(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TEXT


def _short_decimal(value: object) -> bool:
    # Length first: a 5,000,000-digit "decimal" matches the grammar.
    return _short_text(value) and _is_decimal(cast(str, value)) is not None


# The decimals of the feed's rows (:data:`_FUNDING`, :data:`_TICKERS`), named as in the entries.
_FUNDING_ENTRY = _EntryCheck(_FUNDING.check.required, _FUNDING.check.optional)
_TICKER_ENTRY = _EntryCheck(
    _MINI_TICKER_FIELDS,  # a ticker entry from a mini ticker has no change or percent
    ("price_change", "price_change_percent", "weighted_avg_price"),
)
_NOT_SYMBOLS = "not keyed by a symbol (A-Z, 0-9, _; at most 64)"
_NOT_DECIMALS = f"with a value that is not a decimal of at most {MAX_TEXT} characters"
_AHEAD = f"dated more than {MAX_AHEAD_MS / 1000:g} s past the file's write time or the clock"


def restorable(
    entries: Mapping[str, _Entry],
    check: _EntryCheck,
    not_after: int,
    dropped: list[Dropped],
) -> dict[str, _Entry]:
    """The ``entries`` of a previous file that a live row could have made: a key the
    consumer can look up (:func:`~binance_funding_ws.quotes.normalize_symbol`, unchanged by
    it), decimals of the grammar and length the feed allows, an event time no later than
    ``not_after``. The others are added to ``dropped``, by reason."""
    kept: dict[str, _Entry] = {}
    refused: dict[str, list[str]] = {_NOT_SYMBOLS: [], _NOT_DECIMALS: [], _AHEAD: []}
    for symbol, entry in entries.items():
        if normalize_symbol(symbol) != symbol:
            refused[_NOT_SYMBOLS].append(symbol)
        elif entry.event_time > not_after:
            refused[_AHEAD].append(symbol)
        else:
            kept[symbol] = entry
    if not check.all_ok(list(kept.values())):
        refused[_NOT_DECIMALS] = [symbol for symbol, entry in kept.items() if not check.ok(entry)]
        for symbol in refused[_NOT_DECIMALS]:
            del kept[symbol]
    for reason, symbols in refused.items():
        if symbols:
            add_dropped(dropped, reason, symbols)
    return kept


def add_dropped(dropped: list[Dropped], reason: str, symbols: list[str]) -> None:
    """One :class:`Dropped` per reason: the second map's refusals join the first's."""
    for group in dropped:
        if group.reason == reason:
            group.symbols.extend(symbols)
            return
    dropped.append(Dropped(reason, symbols))


def describe_dropped(dropped: Sequence[Dropped], shown: int = 3) -> str | None:
    """One line counting and naming what a restore refused (``None``: nothing).

    Keys are untrusted: each is shown by its ``repr`` (escapes, never control characters),
    cut to a few dozen characters, and only the first ``shown`` of each reason.
    """
    groups = [group for group in dropped if group.symbols]
    if not groups:
        return None
    total = sum(len(group.symbols) for group in groups)
    parts = []
    for group in groups:
        names = ", ".join(_shown_key(symbol) for symbol in group.symbols[:shown])
        more = len(group.symbols) - shown
        if more > 0:
            names += f" (+{more:,} more)"
        parts.append(f"{len(group.symbols):,} {group.reason}: {names}")
    return f"{total:,} entr{'y' if total == 1 else 'ies'} not restored: " + "; ".join(parts)


def _shown_key(symbol: str, limit: int = 32) -> str:
    cut = symbol[:limit]
    return repr(cut) + ("..." if len(symbol) > limit else "")


def funding_entries(rows: Sequence[MarkPriceRow], received_at: int) -> dict[str, FundingEntry]:
    """``{symbol: entry}`` for ``rows`` as published, all received at ``received_at``; their
    decimals unchecked (:meth:`MarketBook.restore` checks them)."""
    return _funding_entries(rows, repeat(received_at))


def ticker_entries(rows: Sequence[TickerRow], received_at: int) -> dict[str, TickerEntry]:
    """:func:`funding_entries` for ``24hrTicker`` rows."""
    return _ticker_entries(rows, repeat(received_at))
