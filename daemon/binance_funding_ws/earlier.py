"""The earlier script's state file, imported by the warm start (pure: bytes in, entries out).

Before this daemon, an earlier script kept the same file in its own format, written with
``json.dump(indent=2)`` through ``<name>.tmp`` and a rename::

    {"connection_status": {...},
     "tickers": {SYMBOL: raw 24hrTicker row of !ticker@arr},
     "funding": {SYMBOL: raw markPriceUpdate row}}

Its rows are the exchange's own rows, each with its event time ``E``, so the merge rule holds
for them as for our own entries. They are decoded by the feed's row types
(:mod:`binance_funding_ws.frames`: types, symbol and text lengths) and become entries by the
feed's builders (:mod:`binance_funding_ws.market`); :meth:`~binance_funding_ws.market.
MarketBook.restore` then judges them as it judges any previous file's entries (symbols,
decimals, event times, ``--max-symbols``). A row that fails is refused and counted, never a
reason to refuse the rest. ``connection_status`` describes a process that is gone: ignored.

The file holds no time of arrival per row: the file's own write time stands for it (every
row had arrived by then).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from binance_funding_ws.frames import MarkPriceRow, TickerRow
from binance_funding_ws.market import Dropped, add_dropped, funding_entries, ticker_entries
from binance_funding_ws.state import FundingEntry, TickerEntry


class _EarlierFile(msgspec.Struct):
    """The earlier format's outline: rows are left undecoded (``Raw``) so that one bad row
    is refused alone. ``schema_version`` is there only to tell our own format apart."""

    funding: dict[str, msgspec.Raw]
    tickers: dict[str, msgspec.Raw] = msgspec.field(default_factory=dict)
    schema_version: Any = None


class EarlierFile(NamedTuple):
    """What an earlier-format file held: its entries, and the rows refused while decoding."""

    funding: dict[str, FundingEntry]
    tickers: dict[str, TickerEntry]
    dropped: list[Dropped]


_outline = msgspec.json.Decoder(_EarlierFile)
_mark_row = msgspec.json.Decoder(MarkPriceRow)
_ticker_row = msgspec.json.Decoder(TickerRow)
_NOT_A_ROW = "funding rows that are not markPriceUpdate rows of the feed's shape"
_NOT_A_TICKER = "ticker rows that are not 24hrTicker rows of the feed's shape"
_MISKEYED = "rows keyed by another symbol than their own"


def decode_earlier(data: bytes, written_at: int) -> EarlierFile | None:
    """The entries of an earlier-format file, or ``None`` if ``data`` is not one (not JSON,
    nested too deeply, no ``funding`` object, or a ``schema_version``: our own format).

    ``written_at`` (epoch ms, the file's write time) becomes each entry's ``received_at``.
    The caller bounds ``data`` (:func:`~binance_funding_ws.state.read_bounded`).
    """
    try:
        outline = _outline.decode(data)
    except (msgspec.DecodeError, RecursionError):  # msgspec: RecursionError when too deep
        return None
    if outline.schema_version is not None:
        return None
    dropped: list[Dropped] = []
    marks = _rows(outline.funding, _mark_row, _NOT_A_ROW, dropped)
    tickers = _rows(outline.tickers, _ticker_row, _NOT_A_TICKER, dropped)
    return EarlierFile(
        funding_entries(marks, written_at), ticker_entries(tickers, written_at), dropped
    )


def _rows(
    raw: dict[str, msgspec.Raw],
    decoder: msgspec.json.Decoder[Any],
    what: str,
    dropped: list[Dropped],
) -> list[Any]:
    """The rows of one map that decode as the feed's rows and are keyed by their own symbol;
    the others are added to ``dropped`` (one :class:`Dropped` per reason)."""
    rows, bad, miskeyed = [], [], []
    for key, value in raw.items():
        try:
            row = decoder.decode(value)
        except (msgspec.DecodeError, RecursionError):
            bad.append(key)
            continue
        if row.symbol != key:
            miskeyed.append(key)
            continue
        rows.append(row)
    for reason, keys in ((what, bad), (_MISKEYED, miskeyed)):
        if keys:
            add_dropped(dropped, reason, keys)
    return rows
