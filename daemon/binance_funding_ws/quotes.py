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

from binance_funding_ws.state import DecimalString, EpochMs, FundingEntry, TickerEntry

Source = Literal["websocket", "rest"]
MAX_SYMBOL_LENGTH = 64
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


class RestAnswerError(ValueError):
    """A REST answer that is not the object asked for (a garbage body, a wrong symbol)."""


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


class _PremiumIndex(msgspec.Struct, frozen=True):
    """``GET /fapi/v1/premiumIndex?symbol=`` (the fields a quote needs; others ignored)."""

    symbol: str
    markPrice: DecimalString
    indexPrice: DecimalString
    lastFundingRate: DecimalString
    nextFundingTime: EpochMs
    time: EpochMs


class _Ticker24h(msgspec.Struct, frozen=True):
    """``GET /fapi/v1/ticker/24hr?symbol=``; ``closeTime`` is the statistics' latest update."""

    symbol: str
    lastPrice: DecimalString
    openPrice: DecimalString
    highPrice: DecimalString
    lowPrice: DecimalString
    volume: DecimalString
    quoteVolume: DecimalString
    priceChange: DecimalString
    priceChangePercent: DecimalString
    weightedAvgPrice: DecimalString
    count: int
    closeTime: EpochMs


_premium_decoder = msgspec.json.Decoder(_PremiumIndex)
_ticker_decoder = msgspec.json.Decoder(_Ticker24h)


def funding_from_rest(symbol: str, body: bytes) -> FundingQuote:
    """The quote in a premiumIndex answer for ``symbol``; :class:`RestAnswerError` if it is not."""
    return _funding_from_row(symbol, _decode(_premium_decoder, body, symbol))


def ticker_from_rest(symbol: str, body: bytes) -> TickerQuote:
    """The quote in a ticker/24hr answer for ``symbol``; :class:`RestAnswerError` if it is not."""
    return _ticker_from_row(symbol, _decode(_ticker_decoder, body, symbol))


_Row = TypeVar("_Row", _PremiumIndex, _Ticker24h)


def _decode(decoder: msgspec.json.Decoder[_Row], body: bytes, symbol: str) -> _Row:
    try:
        row = decoder.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise RestAnswerError(f"unexpected answer for {symbol}: {exc}") from None
    if row.symbol != symbol:  # a proxy or cache must not hand us another symbol's prices
        raise RestAnswerError(f"asked for {symbol}, the answer is for {row.symbol[:64]!r}")
    return row
