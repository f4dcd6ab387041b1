"""Binance's USDⓈ-M REST API as data (pure): the endpoints and their weights, the answers'
shapes, and every header read with bounds.

The one REST client (:mod:`binance_funding_ws.tools.rest`) does the socket I/O for ``compare``,
``audit`` and :class:`~binance_funding_ws.FundingSource`; the circuit breaker
(:mod:`binance_funding_ws.circuit`) decides when it may ask. Everything here is a function of
bytes and strings the server sent, so every rule is tested without a socket.

Bounds (every value from the server is untrusted):

* ``Retry-After`` is a number of seconds in ASCII (Binance never sends an HTTP date), read as
  at most :data:`MAX_RETRY_AFTER` (300 s). Binance's 429 asks for the rest of a one-minute
  window; its 418 bans last 2 minutes to 3 days, but trusting a header for days would let one
  bad answer (``inf``, ``1e308``) switch REST off for that long. Past the cap a client probes
  once per window; while the ban holds the probe is refused again, at one request a window.
* ``X-MBX-USED-WEIGHT-1m`` is an ASCII integer of at most 9 digits, else unknown.
* An answer body is at most :data:`MAX_ONE_SYMBOL_BODY` (one symbol) or
  :data:`MAX_LIST_BODY` (every symbol). A one-symbol answer's decimals match the state
  file's grammar in at most :data:`MAX_DECIMAL_LENGTH` characters.
"""

from __future__ import annotations

import re
from typing import Annotated, TypeVar

import msgspec

from binance_funding_ws.state import DECIMAL_PATTERN, DecimalString, EpochMs

DEFAULT_REST_URL = "https://fapi.binance.com"
# Binance's REST request-weight budget per IP and minute, shared by everything on the host.
WEIGHT_BUDGET_PER_MINUTE = 2400

PREMIUM_INDEX = "/fapi/v1/premiumIndex"
TICKER_24HR = "/fapi/v1/ticker/24hr"
EXCHANGE_INFO = "/fapi/v1/exchangeInfo"
# Request weights (Binance's documentation).
WEIGHT_PREMIUM_INDEX_ALL, WEIGHT_ONE_SYMBOL, WEIGHT_EXCHANGE_INFO = 10, 1, 1

MAX_RETRY_AFTER = 300.0
MAX_ONE_SYMBOL_BODY = 64 * 1024  # a one-symbol answer is a few hundred bytes
MAX_LIST_BODY = 32 * 1024 * 1024  # exchangeInfo for every symbol is a few MB
MAX_ERROR_BODY = 4 * 1024  # an error's {"code": ..., "msg": ...}
_SECONDS = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")  # ASCII only: float() takes "١٢" and "²"
_WEIGHT = re.compile(r"[0-9]{1,9}")
_DECIMAL = re.compile(DECIMAL_PATTERN)
MAX_DECIMAL_LENGTH = 64  # a price or rate is a few dozen characters at most
_MAX_HEADER_SHOWN = 40


class RestAnswerError(ValueError):
    """A REST answer that is not the object asked for (a garbage body, a wrong symbol)."""


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds, at most :data:`MAX_RETRY_AFTER`; ``None`` if absent or not
    a plain decimal number. A number too large to mean anything (``inf``, ``1e308``, 5,000
    digits) still says "later": it is read as the cap."""
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return min(float(text), MAX_RETRY_AFTER)
    if text.lower() in ("inf", "+inf", "infinity") or _is_huge_number(text):
        return MAX_RETRY_AFTER
    return None


def _is_huge_number(text: str) -> bool:
    """A positive ASCII number (exponent allowed) beyond the cap: ``1e308``, 5,000 digits."""
    if not text.isascii() or len(text) > 10_000:
        return False
    try:
        seconds = float(text)
    except ValueError:
        return False
    return seconds > MAX_RETRY_AFTER  # inf and 1e308 both; NaN is not > anything


def retry_after_oddity(value: str | None) -> str | None:
    """What was odd about a ``Retry-After`` header, for the error line and the audit's sample:
    ``None`` when it is absent or a plain number within the cap."""
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text) and float(text) <= MAX_RETRY_AFTER:
        return None
    cut = value[:_MAX_HEADER_SHOWN].encode("unicode_escape").decode("ascii")
    shown = repr(cut + ("..." if len(value) > _MAX_HEADER_SHOWN else ""))
    if parse_retry_after(value) is None:
        return f"Retry-After {shown} unreadable, ignored"
    return f"Retry-After {shown} read as the {MAX_RETRY_AFTER:g} s cap"


def parse_used_weight(value: str | None) -> int | None:
    """``X-MBX-USED-WEIGHT-1m``: the weight this IP used this minute, or ``None`` if absent or
    not a plain ASCII integer of at most 9 digits."""
    if value is None:
        return None
    text = value.strip()
    return int(text) if _WEIGHT.fullmatch(text) else None


# -- answers ----------------------------------------------------------------------------------


class PremiumIndex(msgspec.Struct, frozen=True):
    """One row of ``GET /fapi/v1/premiumIndex`` (one object with ``?symbol=``, a list without):
    the fields ``compare`` and the consumer use; the others are ignored.

    The fields are loosely typed on purpose: ``compare`` judges every row it can read, so an
    absurd value in one row is that symbol's mismatch, not a failed round. A one-symbol
    answer for a consumer is checked field by field (:func:`premium_index_of`)."""

    symbol: str
    markPrice: str
    lastFundingRate: str
    nextFundingTime: int
    time: int
    indexPrice: str = ""


class Ticker24h(msgspec.Struct, frozen=True):
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
    count: Annotated[int, msgspec.Meta(ge=0)]
    closeTime: EpochMs


class ExchangeSymbol(msgspec.Struct, frozen=True):
    """One row of ``GET /fapi/v1/exchangeInfo``'s ``symbols`` (the fields coverage uses)."""

    symbol: str
    status: str = ""
    contractType: str = ""


class _ExchangeInfo(msgspec.Struct):
    symbols: list[ExchangeSymbol]


_premium_index = msgspec.json.Decoder(PremiumIndex)
_premium_index_list = msgspec.json.Decoder(list[PremiumIndex])
_ticker = msgspec.json.Decoder(Ticker24h)
_exchange_info = msgspec.json.Decoder(_ExchangeInfo)


def premium_index_of(symbol: str, body: bytes) -> PremiumIndex:
    """The premiumIndex answer for ``symbol``, every decimal in the state file's grammar and
    every time an epoch in milliseconds; :class:`RestAnswerError` if it is not that."""
    what = f"premiumIndex for {symbol}"
    row = _of_symbol(_decode(_premium_index, body, what), symbol)
    _check(row, what, ("markPrice", "indexPrice", "lastFundingRate"), ("nextFundingTime", "time"))
    return row


def ticker_of(symbol: str, body: bytes) -> Ticker24h:
    """The ticker/24hr answer for ``symbol``; :class:`RestAnswerError` if it is not that."""
    what = f"ticker/24hr for {symbol}"
    row = _of_symbol(_decode(_ticker, body, what), symbol)
    _check(row, what, _TICKER_DECIMALS, ())
    return row


_TICKER_DECIMALS = (
    "lastPrice",
    "openPrice",
    "highPrice",
    "lowPrice",
    "volume",
    "quoteVolume",
    "priceChange",
    "priceChangePercent",
    "weightedAvgPrice",
)


def _check(row: object, what: str, decimals: tuple[str, ...], times: tuple[str, ...]) -> None:
    for name in decimals:
        value = getattr(row, name)
        if len(value) > MAX_DECIMAL_LENGTH or not _DECIMAL.fullmatch(value):
            shown = value[:_MAX_HEADER_SHOWN].encode("unicode_escape").decode("ascii")
            raise RestAnswerError(f"unexpected {what} answer: {name} {shown!r} is not a decimal")
    for name in times:
        if getattr(row, name) < 0:
            raise RestAnswerError(f"unexpected {what} answer: {name} is negative")


def premium_index_rows(body: bytes) -> list[PremiumIndex]:
    """Every symbol's premium index (the answer without ``symbol``)."""
    return _decode(_premium_index_list, body, "premiumIndex")


def exchange_symbols(body: bytes) -> list[ExchangeSymbol]:
    """Every listed symbol with its status and contract type."""
    return _decode(_exchange_info, body, "exchangeInfo").symbols


def error_message(body: bytes) -> str:
    """Binance's ``msg`` in an error answer, shortened; empty if there is none."""
    try:
        answer = msgspec.json.decode(body[:MAX_ERROR_BODY])
    except (msgspec.DecodeError, RecursionError):
        return ""
    message = answer.get("msg", "") if isinstance(answer, dict) else ""
    return str(message)[:200]


_T = TypeVar("_T")
_Row = TypeVar("_Row", PremiumIndex, Ticker24h)


def _decode(decoder: msgspec.json.Decoder[_T], body: bytes, what: str) -> _T:
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise RestAnswerError(f"unexpected {what} answer: {str(exc)[:200]}") from None


def _of_symbol(row: _Row, symbol: str) -> _Row:
    if row.symbol != symbol:  # a proxy or cache must not hand us another symbol's prices
        raise RestAnswerError(f"asked for {symbol}, the answer is for {row.symbol[:64]!r}")
    return row
