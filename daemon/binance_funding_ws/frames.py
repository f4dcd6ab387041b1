"""Sans-I/O decoding of Binance USDⓈ-M market-stream frames.

A frame is either a combined-stream envelope ``{"stream": NAME, "data": [rows]}`` or, on a
raw ``/market/ws/<stream>`` connection, the bare array. Rows are typed by their ``e`` field.

Each frame is decoded once, on arrival, by one typed ``msgspec`` call: at the live rate every
row is published within the second, so a cheaper first look (reading only what the merge
needs) followed by a full decode at publication would decode each row twice (see
docs/benchmarks.md).

Decoding is strict about types (a number where a string belongs, a missing field, an unknown
event type all reject the row) but isolates damage: a bad row is skipped and reported, the
rest of its frame is kept. Only a frame that fails the typed decode is re-read row by row.

Decimal *format* (is ``"p"`` a number?) is checked when rows are published
(:mod:`binance_funding_ws.market`), once per published row rather than once per frame.

Rows carry the state file's field names (``mark_price``, ``event_time``...), each decoded
from the exchange's one-letter key, so publishing turns them into
:class:`~binance_funding_ws.state.FundingEntry` objects name for name.

Hostile input is bounded here, each refusal reported in the frame's ``errors``: a frame of
more than ``MAX_FRAME_ROWS`` rows is dropped whole before any per-row work (a big one before
it is even parsed), a row with a string field longer than ``MAX_TEXT`` characters is
rejected, and a frame nested too deeply for the parser is one bad frame. Limits on what
accumulates (symbols, dates ahead of the clock, stream names) live with what accumulates:
:mod:`binance_funding_ws.market` and :mod:`binance_funding_ws.tracker`.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Annotated, Any, Protocol, cast

import msgspec

# Limits on what a frame may hold. Each is far above what the exchange sends, and each
# refusal is reported in the frame's errors, never silent.
MAX_FRAME_ROWS = 10_000  # rows in one frame; the all-market arrays hold about 750 (2026)
MAX_TEXT = 64  # characters in a symbol, pair, decimal or stream name; the longest seen are ~20
# Frames above this size are bounded before they are parsed: at most MAX_FIELDS_PER_ROW commas
# a row. A row has at most 20 fields, so this only refuses what cannot be MAX_FRAME_ROWS rows.
PRECHECK_BYTES = 1024 * 1024
MAX_FIELDS_PER_ROW = 32

Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]  # a decimal or a pair: kept as is
EventTime = Annotated[int, msgspec.Meta(ge=0)]


# Rows are decoded straight into the state file's field names: each field's wire name is its
# ``name=``. The publish step then builds each entry from the same names (see
# :mod:`binance_funding_ws.market`).
def _wire(name: str) -> Any:
    """A required field read from the exchange's key ``name``."""
    return msgspec.field(name=name)


class MarkPriceRow(msgspec.Struct, tag_field="e", tag="markPriceUpdate", frozen=True, gc=False):
    """A ``markPriceUpdate`` row; attributes named as in :class:`~binance_funding_ws.state.
    FundingEntry`, decoded from the exchange's one-letter names."""

    event_time: EventTime = _wire("E")  # ms
    symbol: Symbol = _wire("s")
    mark_price: Text = _wire("p")
    index_price: Text = _wire("i")
    estimated_settle_price: Text = _wire("P")
    funding_rate: Text = _wire("r")
    next_funding_time: EventTime = _wire("T")  # ms; 0 = none scheduled
    mark_price_avg: Text | None = msgspec.field(default=None, name="ap")  # added 2026-03
    contract_type: int | None = msgspec.field(default=None, name="st")  # 1 USDⓈ-M, 2 COIN-M
    pair: Text | None = msgspec.field(default=None, name="ps")


class _TickerFields(msgspec.Struct, frozen=True, gc=False):
    """What every ticker row carries: the fields of a ``24hrMiniTicker``, which a
    ``24hrTicker`` extends."""

    event_time: EventTime = _wire("E")
    symbol: Symbol = _wire("s")
    last_price: Text = _wire("c")
    open_price: Text = _wire("o")
    high_price: Text = _wire("h")
    low_price: Text = _wire("l")
    volume: Text = _wire("v")  # base volume
    quote_volume: Text = _wire("q")


class TickerRow(_TickerFields, tag_field="e", tag="24hrTicker", frozen=True, gc=False):
    """A ``24hrTicker`` row, attributes named as in :class:`~binance_funding_ws.state.
    TickerEntry`. Fields the state file does not keep are optional."""

    price_change_percent: Text = _wire("P")
    price_change: Text | None = msgspec.field(default=None, name="p")
    weighted_avg_price: Text | None = msgspec.field(default=None, name="w")
    trade_count: int | None = msgspec.field(default=None, name="n")
    contract_type: int | None = msgspec.field(default=None, name="st")
    pair: Text | None = msgspec.field(default=None, name="ps")


class MiniTickerRow(_TickerFields, tag_field="e", tag="24hrMiniTicker", frozen=True, gc=False):
    """A ``24hrMiniTicker`` row: a ticker without change, percent or trade count."""


Row = MarkPriceRow | TickerRow | MiniTickerRow
AnyTickerRow = TickerRow | MiniTickerRow


class Keyed(Protocol):
    """What the merge reads of a row: its event time and its symbol."""

    @property
    def event_time(self) -> int: ...

    @property
    def symbol(self) -> str: ...


StreamName = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]


class _Envelope(msgspec.Struct):
    stream: StreamName
    data: list[Row]


@dataclass(slots=True, kw_only=True)
class DecodedFrame:
    """What one frame contained, its rows sorted by kind.

    ``market`` is true when the frame carried at least one good row: only such frames prove
    that market data flows. ``control`` marks replies such as a SUBSCRIBE acknowledgement.
    """

    stream: str | None = None
    mark: list[MarkPriceRow] = field(default_factory=list)
    tickers: list[AnyTickerRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    control: bool = False

    @property
    def market(self) -> bool:
        return bool(self.mark or self.tickers)

    def latest_event_time(self) -> int:
        """The newest event time among the frame's rows (0 if none)."""
        return max(_newest(self.mark), _newest(self.tickers))


class FrameDecoder:
    """Turns frame bytes into frames; never raises on bad input.

    A frame of more than ``max_rows`` rows is dropped whole, with one error, before any
    per-row work: however it is built, one frame costs the event loop milliseconds.
    """

    def __init__(self, max_rows: int = MAX_FRAME_ROWS) -> None:
        self.max_rows = max_rows
        self._envelope = msgspec.json.Decoder(_Envelope)
        self._array = msgspec.json.Decoder(list[Row])
        self._any = msgspec.json.Decoder()

    def decode(self, data: bytes | str, stream: str | None = None) -> DecodedFrame:
        """Decode one frame in full. ``stream`` names the stream of a raw (unwrapped) connection."""
        return self._precheck(data, stream) or self._decode(data, stream)

    def _precheck(self, data: bytes | str, stream: str | None) -> DecodedFrame | None:
        """Refuse, unparsed, a big frame with more items than ``max_rows`` rows could hold.

        Counting commas costs ~0.5 ms a MiB; parsing 5 M empty rows cost over a minute and
        a gigabyte. Frames of up to PRECHECK_BYTES are parsed at once: their row count is
        checked right after, before any per-row work.
        """
        if len(data) <= PRECHECK_BYTES:
            return None
        commas = data.count(b",") if isinstance(data, bytes) else data.count(",")
        if commas < self.max_rows * MAX_FIELDS_PER_ROW:
            return None
        return DecodedFrame(
            stream=stream,
            errors=[
                f"frame of {len(data):,} bytes dropped unread: {commas:,} commas, more than "
                f"{self.max_rows:,} rows (the most a frame may hold) of up to "
                f"{MAX_FIELDS_PER_ROW} fields could have"
            ],
        )

    def _too_many_rows(self, rows: int, stream: str | None) -> DecodedFrame:
        where = stream or "frame"
        message = f"{where} frame of {rows:,} rows dropped: more than the {self.max_rows:,} allowed"
        return DecodedFrame(stream=stream, errors=[message])

    def _decode(self, data: bytes | str, stream: str | None) -> DecodedFrame:
        frame = DecodedFrame(stream=stream)
        try:
            if _first_char(data) == "[":
                rows: list[Row] = self._array.decode(data)
            else:
                envelope = self._envelope.decode(data)
                frame.stream, rows = envelope.stream, envelope.data
        except msgspec.ValidationError:
            return self._decode_row_by_row(data, frame)
        except (msgspec.DecodeError, RecursionError) as exc:
            frame.errors.append(f"frame is not JSON ({_why(exc)})")
            return frame
        if len(rows) > self.max_rows:
            return self._too_many_rows(len(rows), frame.stream)
        _fill(frame, rows)
        return frame

    def _decode_row_by_row(self, data: bytes | str, frame: DecodedFrame) -> DecodedFrame:
        """Slow path for a frame that failed the typed decode: keep every good row."""
        try:
            # The typed decode stops at the first type error, before it sees e.g. trailing junk.
            document: Any = self._any.decode(data)
        except (msgspec.DecodeError, RecursionError) as exc:
            frame.errors.append(f"frame is not JSON ({_why(exc)})")
            return frame
        items = self._items(document, frame)
        if items is None:
            return frame
        if len(items) > self.max_rows:
            return self._too_many_rows(len(items), frame.stream)
        rows: list[Row] = []
        for index, item in enumerate(items):
            try:
                rows.append(msgspec.convert(item, Row))
            except msgspec.ValidationError as exc:
                where = frame.stream or "frame"
                frame.errors.append(f"{where} row {index} skipped: {exc}")
        _fill(frame, rows)
        return frame

    @staticmethod
    def _items(document: object, frame: DecodedFrame) -> list[object] | None:
        """The row array of a parsed frame; ``None`` (reported or a control reply) if none."""
        if isinstance(document, list):
            return document
        if not isinstance(document, dict):
            frame.errors.append(f"unexpected frame shape: {_short(document)}")
            return None
        if "result" in document and "id" in document:
            frame.control = True
            return None
        if "error" in document:
            frame.errors.append(f"exchange error reply: {_short(document['error'])}")
            return None
        stream, items = document.get("stream"), document.get("data")
        if not isinstance(stream, str) or len(stream) > MAX_TEXT or not isinstance(items, list):
            frame.errors.append(f"unexpected frame shape: {_short(document)}")
            return None
        frame.stream = stream
        return items


def _fill(frame: DecodedFrame, rows: list[Row]) -> None:
    """Sort rows into the frame's ``mark`` and ``tickers``, in their order."""
    kinds = set(map(type, rows))  # a frame holds one stream's rows: usually all of one kind
    if kinds == {MarkPriceRow}:
        frame.mark = cast(list[MarkPriceRow], rows)
    elif MarkPriceRow not in kinds:
        frame.tickers = cast(list[AnyTickerRow], rows)
    else:
        frame.mark = [row for row in rows if isinstance(row, MarkPriceRow)]
        frame.tickers = [row for row in rows if not isinstance(row, MarkPriceRow)]


_event_time = attrgetter("event_time")


def _newest(rows: Sequence[Keyed]) -> int:
    return max(map(_event_time, rows), default=0)


def _first_char(data: bytes | str) -> str:
    head = data[:64].lstrip()
    if isinstance(head, bytes):
        return chr(head[0]) if head else ""
    return head[:1]


def _why(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


# A hostile frame can be 16 MiB of one string: describe it without building its whole repr.
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxdict = _REPR.maxlist = 6


def _short(value: object, limit: int = 120) -> str:
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
