"""Sans-I/O merge of market rows into per-symbol maps.

Rules (from the exchange facts):

* Every row is merged by its own symbol; nothing replaces a whole map. ``!ticker@arr`` sends
  only the symbols that changed, and mark price arrives in several frames per tick.
* COIN-M rows (``st`` 2) and TradFi rows are ordinary symbols, kept under their own name.
* A row older than what is already held for its symbol is ignored; a row with the same or a
  newer event time wins. That makes overlapping connections (make-before-break rotation)
  harmless: the same update delivered twice changes nothing.

Work is split in two so the receive path stays cheap: :meth:`MarketBook.apply` only records
the newest row per symbol; :meth:`MarketBook.publish`, called once per write interval,
validates those rows' decimals and folds them into the published entries. A row that fails
validation is dropped then and the symbol keeps its previous good entry.
"""

from __future__ import annotations

import re

import msgspec

from binance_funding_ws.frames import AnyTickerRow, DecodedFrame, MarkPriceRow, MiniTickerRow
from binance_funding_ws.state import DECIMAL_PATTERN, FundingEntry, TickerEntry

_is_decimal = re.compile(DECIMAL_PATTERN).match


class MarketBook:
    """The daemon's view of the market: published entries plus rows not yet published."""

    def __init__(self) -> None:
        self.funding: dict[str, FundingEntry] = {}
        self.tickers: dict[str, TickerEntry] = {}
        self._pending_mark: dict[str, tuple[MarkPriceRow, int]] = {}
        self._pending_tickers: dict[str, tuple[AnyTickerRow, int]] = {}

    @property
    def has_pending(self) -> bool:
        return bool(self._pending_mark or self._pending_tickers)

    def apply(self, frame: DecodedFrame, received_at: int) -> int:
        """Record the frame's rows that are not older than what is held; return how many."""
        accepted = 0
        if frame.mark:
            accepted += _merge(frame.mark, self._pending_mark, self.funding, received_at)
        if frame.tickers:
            accepted += _merge(frame.tickers, self._pending_tickers, self.tickers, received_at)
        return accepted

    def publish(self) -> list[str]:
        """Fold pending rows into the published maps; return one message per rejected row."""
        errors: list[str] = []
        for symbol, (row, received_at) in self._pending_mark.items():
            entry = _funding_entry(row, received_at)
            if entry is None:
                errors.append(f"{symbol} markPriceUpdate skipped: a price or rate is not a decimal")
            else:
                self.funding[symbol] = entry
        for symbol, (ticker, received_at) in self._pending_tickers.items():
            previous = self.tickers.get(symbol)
            entry = _ticker_entry(ticker, received_at, previous)
            if entry is None:
                errors.append(f"{symbol} {_event_name(ticker)} skipped: a value is not a decimal")
            else:
                self.tickers[symbol] = entry
        self._pending_mark.clear()
        self._pending_tickers.clear()
        return errors


def _merge(
    rows: list[MarkPriceRow] | list[AnyTickerRow],
    pending: dict,
    published: dict,
    received_at: int,
) -> int:
    accepted = 0
    for row in rows:
        symbol = row.s
        held = pending.get(symbol)
        if held is not None:
            if row.E < held[0].E:
                continue
        else:
            entry = published.get(symbol)
            if entry is not None and entry.event_time > row.E:
                continue
        pending[symbol] = (row, received_at)
        accepted += 1
    return accepted


def _all_decimal(*values: str | None) -> bool:
    return all(value is None or _is_decimal(value) for value in values)


def _funding_entry(row: MarkPriceRow, received_at: int) -> FundingEntry | None:
    if not _all_decimal(row.p, row.i, row.P, row.r, row.ap):
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
    if not _all_decimal(row.c, row.o, row.h, row.l, row.v, row.q):
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
    if isinstance(row, MiniTickerRow):
        # A mini ticker carries no change, percent or trade count: keep the last known ones.
        if previous is None:
            return TickerEntry(**common)
        return msgspec.structs.replace(previous, **common)
    if not _all_decimal(row.P, row.p, row.w):
        return None
    return TickerEntry(
        **common,
        price_change=row.p,
        price_change_percent=row.P,
        weighted_avg_price=row.w,
        trade_count=row.n,
        contract_type=row.st,
        pair=row.ps,
    )


def _event_name(row: AnyTickerRow) -> str:
    return "24hrMiniTicker" if isinstance(row, MiniTickerRow) else "24hrTicker"
