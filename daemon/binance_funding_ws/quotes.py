"""What a consumer gets for one symbol: a quote, from the state file or from REST (pure).

A quote carries the exchange's decimal strings unchanged and the exchange's event time, and
says where it came from (``source``), so an alert can show how it was enriched. Both sources
give the same shape; the REST answers are parsed and validated here, so the I/O shell
(:mod:`binance_funding_ws.consumer`) never touches an unchecked byte.

Symbols are untrusted input (they end up in a URL): :func:`normalize_symbol` is the one gate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any, Literal, TypeVar

import msgspec

from binance_funding_ws.health import is_stale
from binance_funding_ws.rest import RestAnswerError, premium_index_of, ticker_of
from binance_funding_ws.state import FundingEntry, TickerEntry

Source = Literal["websocket", "rest"]
MAX_SYMBOL_LENGTH = 64
MAX_REST_ANSWER_AGE = 3_600.0  # seconds; see check_dated
_SYMBOL = re.compile(r"[A-Z0-9_]{1,64}")


def normalize_symbol(symbol: object) -> str | None:
    """``symbol`` upper-cased if it is a plausible Binance symbol (``^[A-Z0-9_]{1,64}$``), else
    ``None``. Only a symbol that passed here is ever looked up or put into a URL."""
    # ASCII first: str.upper() maps some letters to others ("ß" to "SS").
    if not isinstance(symbol, str) or len(symbol) > MAX_SYMBOL_LENGTH or not symbol.isascii():
        return None
    upper = symbol.upper()
    return upper if _SYMBOL.fullmatch(upper) else None


class FundingQuote(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One symbol's funding rate and prices. Decimals are the exchange's strings; times are
    epoch milliseconds; ``next_funding_time`` is 0 when no funding is scheduled."""

    symbol: str
    funding_rate: str
    mark_price: str
    index_price: str
    next_funding_time: int
    event_time: int
    source: Source


class TickerQuote(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One symbol's 24 h ticker. The change, percent, average and trade count are ``None``
    when the file holds a mini-ticker row, which does not carry them."""

    symbol: str
    last_price: str
    open_price: str
    high_price: str
    low_price: str
    volume: str
    quote_volume: str
    price_change: str | None
    price_change_percent: str | None
    weighted_avg_price: str | None
    trade_count: int | None
    event_time: int
    source: Source


Quote = FundingQuote | TickerQuote


# Each quote field and the field it is read from: a state-file entry uses the same names, a
# REST answer Binance's.
_FUNDING_FROM_REST = {
    "funding_rate": "lastFundingRate",
    "mark_price": "markPrice",
    "index_price": "indexPrice",
    "next_funding_time": "nextFundingTime",
    "event_time": "time",
}
_TICKER_FROM_REST = {
    "last_price": "lastPrice",
    "open_price": "openPrice",
    "high_price": "highPrice",
    "low_price": "lowPrice",
    "volume": "volume",
    "quote_volume": "quoteVolume",
    "price_change": "priceChange",
    "price_change_percent": "priceChangePercent",
    "weighted_avg_price": "weightedAvgPrice",
    "trade_count": "count",
    "event_time": "closeTime",
}
_Q = TypeVar("_Q", FundingQuote, TickerQuote)


def _converter(
    kind: type[_Q], source: Source, fields: Mapping[str, str]
) -> Callable[[str, Any], _Q]:
    """A function building a ``kind`` quote for a symbol from a row's ``fields``."""
    names, read = tuple(fields), attrgetter(*fields.values())

    def convert(symbol: str, row: Any) -> _Q:
        return kind(symbol=symbol, source=source, **dict(zip(names, read(row), strict=True)))

    return convert


funding_from_entry: Callable[[str, FundingEntry], FundingQuote] = _converter(
    FundingQuote, "websocket", {name: name for name in _FUNDING_FROM_REST}
)
ticker_from_entry: Callable[[str, TickerEntry], TickerQuote] = _converter(
    TickerQuote, "websocket", {name: name for name in _TICKER_FROM_REST}
)
_funding_from_row = _converter(FundingQuote, "rest", _FUNDING_FROM_REST)
_ticker_from_row = _converter(TickerQuote, "rest", _TICKER_FROM_REST)


def funding_from_rest(symbol: str, body: bytes) -> FundingQuote:
    """The quote in a premiumIndex answer for ``symbol``; :class:`RestAnswerError` if it is not."""
    return _funding_from_row(symbol, premium_index_of(symbol, body))


def ticker_from_rest(symbol: str, body: bytes) -> TickerQuote:
    """The quote in a ticker/24hr answer for ``symbol``; :class:`RestAnswerError` if it is not."""
    return _ticker_from_row(symbol, ticker_of(symbol, body))


def check_dated(quote: Quote, now: int, max_age: float) -> None:
    """Refuse a REST answer dated more than :data:`MAX_REST_ANSWER_AGE` (or ``max_age``, if
    longer) ago, or more than a minute in the future (the one stale rule,
    :func:`~binance_funding_ws.health.is_stale`): a cache or a wrong clock must not hand out
    a day-old or a next-year price as a current one. Binance dates a premiumIndex answer
    with the current time and a ticker with its statistics' latest update, so a quiet
    market's answer may be older than ``max_age``: it is returned, and not reused."""
    if is_stale(quote.event_time, now, max(max_age, MAX_REST_ANSWER_AGE)):
        age = (now - quote.event_time) / 1000
        when = f"{age:.0f} s old" if age >= 0 else f"{-age:.0f} s in the future"
        raise RestAnswerError(f"the answer for {quote.symbol} is dated {when}")
