"""Real-shaped payloads and documents shared by the tests."""

from __future__ import annotations

import json

import msgspec
from hypothesis import strategies as st

from binance_funding_ws.clock import now_ms
from binance_funding_ws.frames import FrameDecoder
from binance_funding_ws.market import MarketBook
from binance_funding_ws.state import SCHEMA_VERSION, FundingEntry, StateDocument, missing_symbols
from binance_funding_ws.tracker import ConnectionTracker

# Real-shaped rows: the docs examples from ../shared/binance-usdm-facts.md.
DOCS_MARK = {
    "e": "markPriceUpdate",
    "E": 1562305380000,
    "s": "BTCUSDT",
    "p": "11794.15000000",
    "i": "11784.62659091",
    "P": "11784.25641265",
    "r": "0.00038167",
    "T": 1562306400000,
}
DOCS_TICKER = {
    "e": "24hrTicker",
    "E": 123456789,
    "s": "BTCUSDT",
    "p": "0.0015",
    "P": "250.00",
    "w": "0.0018",
    "c": "0.0025",
    "Q": "10",
    "o": "0.0010",
    "h": "0.0025",
    "l": "0.0010",
    "v": "10000",
    "q": "18",
    "O": 0,
    "C": 86400000,
    "F": 0,
    "L": 18150,
    "n": 18151,
}


def mark(symbol: str = "BTCUSDT", event_time: int = 1562305380000, **changes) -> dict:
    return {**DOCS_MARK, "s": symbol, "E": event_time, **changes}


def ticker(symbol: str = "BTCUSDT", event_time: int = 123456789, **changes) -> dict:
    return {**DOCS_TICKER, "s": symbol, "E": event_time, **changes}


def combined(stream: str, rows: list) -> bytes:
    return json.dumps({"stream": stream, "data": rows}).encode()


def document(state="connected", last_message_at=10_000, updated_at=10_000, funding=None):
    book = MarketBook()
    rows = funding if funding is not None else [mark("AUSDT", 9_000), mark("BUSDT", 1_000)]
    book.apply(FrameDecoder().decode(combined("!markPrice@arr@1s", rows)), 9_500)
    book.publish()
    tracker = ConnectionTracker("ws://x", 0)
    tracker.set_state(state, 5_000)
    tracker.status.last_message_at = last_message_at
    return StateDocument(
        schema_version=SCHEMA_VERSION,
        updated_at=updated_at,
        connection_status=tracker.snapshot(),
        funding=book.funding,
        tickers=book.tickers,
        missing=missing_symbols(book.funding, book.tickers),
    )


DIGITS = "0123456789"


def decimal_strings(whole: int, fraction: int, *, leading_zeros: bool) -> st.SearchStrategy[str]:
    """Decimal strings: an optional minus, 1 to ``whole`` digits, then optionally a point and 1
    to ``fraction`` digits; without ``leading_zeros`` the whole part is canonical (``0`` or
    no leading zero), as a JSON number's. The language of ``-?[0-9]{1,W}(\\.[0-9]{1,F})?``
    (or ``-?(0|[1-9][0-9]{0,W-1})...``), built from digit strings because ``st.from_regex``
    drew it four times slower: most of the property tests' time went into drawing decimals."""
    if leading_zeros:
        wholes = st.text(DIGITS, min_size=1, max_size=whole)
    else:
        tails = st.text(DIGITS, max_size=whole - 1)
        wholes = st.just("0") | st.builds(str.__add__, st.sampled_from(DIGITS[1:]), tails)
    fractions = st.none() | st.text(DIGITS, min_size=1, max_size=fraction)
    return st.builds(
        lambda sign, digits, decimals: sign + digits + ("" if decimals is None else "." + decimals),
        st.sampled_from(["", "-"]),
        wholes,
        fractions,
    )


ESCAPES = "\x1b[2J\x1b]0;pwned\x07"


def fresh_doc(**changes):
    now = now_ms()
    doc = document(last_message_at=now, updated_at=now, funding=[mark("BTCUSDT", now)])
    return msgspec.structs.replace(doc, **changes)


def marks_frame(count: int, prefix: str = "S", event_time: int = 5) -> bytes:
    return combined("!markPrice@arr@1s", [mark(f"{prefix}{n}", event_time) for n in range(count)])


TEN_YEARS_MS = 10 * 365 * 86_400_000


def previous_entry(event_time: int, **changes: object) -> FundingEntry:
    """An entry as a previous file may hold it, built directly: a file is not bound by what
    the feed's decoder lets through."""
    entry = FundingEntry(
        "11794.15000000", "11784.62659091", "11784.25641265", "0.00038167",
        event_time + 3_600_000, event_time, event_time,
    )  # fmt: skip
    return msgspec.structs.replace(entry, **changes)
