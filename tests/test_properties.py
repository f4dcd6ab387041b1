"""Property-based tests: whatever a frame holds, decoding and merging never fail nor lie."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from binance_funding_ws.frames import FrameDecoder
from binance_funding_ws.market import MarketBook
from binance_funding_ws.state import decode_state, encode_state
from factories import DOCS_MARK, DOCS_TICKER, decimal_strings, document

decimals = decimal_strings(8, 8, leading_zeros=True)  # -?[0-9]{1,8}(\.[0-9]{1,8})?
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),  # JSON has no NaN; such a frame is not JSON
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
)
symbols = st.sampled_from(["BTCUSDT", "ETHUSDT", "XAUUSDT", "BTCUSD_PERP", "MATICUSDT"])


@st.composite
def rows(draw: st.DrawFn) -> object:
    """A row that is sometimes perfect, sometimes damaged in one or more fields."""
    base = dict(draw(st.sampled_from([DOCS_MARK, DOCS_TICKER])))
    base["s"] = draw(symbols)
    base["E"] = draw(st.integers(0, 2**45))
    for key in [k for k in base if base[k].__class__ is str and k not in ("e", "s")]:
        base[key] = draw(decimals)
    for key in draw(st.lists(st.sampled_from(sorted(base)), max_size=3)):
        if draw(st.booleans()):
            base[key] = draw(junk)
        else:
            base.pop(key, None)
    return draw(st.one_of(st.just(base), junk)) if draw(st.integers(0, 9)) == 0 else base


def is_good(row: object) -> bool:
    """Independent oracle: does the row carry every kept field with the right JSON type?"""
    if not isinstance(row, dict):
        return False
    if row.get("e") == "markPriceUpdate":
        strings, ints = ("s", "p", "i", "P", "r"), ("E", "T")
    elif row.get("e") == "24hrTicker":
        strings, ints = ("s", "c", "o", "h", "l", "v", "q", "P"), ("E",)
    else:
        return False
    optional_strings = ("p", "w") if row["e"] == "24hrTicker" else ()
    optional_ints = ("n",) if row["e"] == "24hrTicker" else ()
    return (
        all(isinstance(row.get(k), str) for k in strings)
        and all(type(row.get(k)) is int and row[k] >= 0 for k in ints)
        and row["s"] != ""
        and all(k not in row or row[k] is None or isinstance(row[k], str) for k in optional_strings)
        and all(
            k not in row or row[k] is None or (type(row[k]) is int and abs(row[k]) < 2**63)
            for k in optional_ints
        )
        and all(
            k not in row or row[k] is None or (type(row[k]) is int and abs(row[k]) < 2**63)
            for k in ("st",)
        )
        and all(k not in row or row[k] is None or isinstance(row[k], str) for k in ("ps", "ap"))
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(rows(), max_size=12), st.booleans())
def test_every_good_row_is_kept_and_every_bad_row_counted(frame_rows, wrapped):
    payload = {"stream": "!markPrice@arr@1s", "data": frame_rows} if wrapped else frame_rows
    frame = FrameDecoder().decode(json.dumps(payload).encode(), stream="!markPrice@arr@1s")
    good = [row for row in frame_rows if is_good(row)]
    assert len(frame.mark) + len(frame.tickers) == len(good)
    assert len(frame.errors) == len(frame_rows) - len(good)
    assert [row.symbol for row in (*frame.mark, *frame.tickers)] == [
        *(row["s"] for row in good if row["e"] == "markPriceUpdate"),
        *(row["s"] for row in good if row["e"] != "markPriceUpdate"),
    ]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_never_raise(data):
    frame = FrameDecoder().decode(data)
    assert frame.market or frame.errors or frame.control


def decimal_ok(*values: str | None) -> bool:
    """Independent oracle for the decimal format (ASCII digits only)."""
    return all(v is None or re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", v) for v in values)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(rows(), max_size=8), min_size=1, max_size=6))
def test_merged_state_holds_the_newest_valid_row_per_symbol_and_always_encodes(frames):
    """A model of the merge: the newest row of a write interval wins; it is published if its
    decimals are well-formed (checked once per published row, at the write), else the symbol
    keeps its previously published entry."""
    decoder, book = FrameDecoder(), MarketBook()
    pending: dict[str, object] = {}
    published: dict[str, int] = {}
    for index, frame_rows in enumerate(frames):
        decoded = decoder.decode(json.dumps(frame_rows).encode(), stream="s")
        book.apply(decoded, received_at=index)
        for row in decoded.mark:
            held = pending.get(row.symbol)
            newest_known = held.event_time if held is not None else published.get(row.symbol, -1)
            if newest_known <= row.event_time:
                pending[row.symbol] = row
        if index % 2 or index == len(frames) - 1:
            book.publish()
            for symbol, row in pending.items():
                decimals = (row.mark_price, row.index_price, row.estimated_settle_price)
                if decimal_ok(*decimals, row.funding_rate, row.mark_price_avg):
                    published[symbol] = row.event_time
            pending.clear()
    assert {s: e.event_time for s, e in book.funding.items()} == published
    doc = document()
    doc.funding.update(book.funding)
    doc.tickers.update(book.tickers)
    assert decode_state(encode_state(doc)) == doc


good_rows = st.builds(
    lambda base, symbol, event_time: {**base, "s": symbol, "E": event_time},
    st.sampled_from([DOCS_MARK, DOCS_TICKER]),
    symbols,
    st.integers(0, 40),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(good_rows, max_size=8), st.booleans()), min_size=1, max_size=10))
def test_a_publish_after_any_merges_equals_a_from_scratch_publish_of_the_same_rows(frames):
    """Whatever frames came and whenever the book published (frames faster than writes, so
    a symbol is pending from several frames, or not), the maps equal those of a new book
    given only each symbol's winning row (the newest; of equals, the last) in one frame per
    arrival time, published once."""
    decoder, book = FrameDecoder(), MarketBook()
    winners: dict[tuple[str, str], tuple[dict, int]] = {}
    for index, (frame_rows, publish_now) in enumerate(frames):
        data = json.dumps({"stream": "s", "data": frame_rows}).encode()
        book.apply(decoder.decode(data), received_at=1_000 + index)
        for row in frame_rows:
            key = (row["e"], row["s"])
            if key not in winners or winners[key][0]["E"] <= row["E"]:
                winners[key] = (row, 1_000 + index)
        if publish_now:
            assert book.publish() == []
    assert book.publish() == []
    scratch = MarketBook()
    for arrival in sorted({at for _, at in winners.values()}):
        rows = [row for row, at in winners.values() if at == arrival]
        scratch.apply(decoder.decode(json.dumps(rows).encode(), stream="s"), arrival)
    assert scratch.publish() == []
    assert book.funding == scratch.funding and book.tickers == scratch.tickers
    assert book.missing() == scratch.missing()


many_symbols = st.sampled_from([f"S{n}USDT" for n in range(8)])
dated_rows = st.builds(
    lambda base, symbol, event_time: {**base, "s": symbol, "E": event_time},
    st.sampled_from([DOCS_MARK, DOCS_TICKER]),
    many_symbols,
    st.integers(0, 2_000),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(dated_rows, max_size=8), min_size=1, max_size=6), st.integers(0, 500))
def test_no_row_dated_past_its_arrival_plus_the_allowance_is_kept_and_each_is_counted(
    frames, ahead_ms
):
    """Frame ``i`` arrives at ``i * 300`` ms: each row dated later than that plus the
    allowance is refused and counted; the rest merge as they would with no allowance."""
    decoder = FrameDecoder()
    book, unbounded = MarketBook(max_ahead_ms=ahead_ms), MarketBook()
    for index, frame_rows in enumerate(frames):
        data = json.dumps({"stream": "s", "data": frame_rows}).encode()
        arrival = index * 300
        on_time = [row for row in frame_rows if row["E"] <= arrival + ahead_ms]
        applied = book.apply(decoder.decode(data), arrival)
        assert sum(r.rows for r in applied.rejected) == len(frame_rows) - len(on_time)
        unbounded.apply(decoder.decode(json.dumps(on_time).encode()), arrival)
        assert book.publish() == unbounded.publish() == []
        assert book.funding == unbounded.funding and book.tickers == unbounded.tickers


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(dated_rows, max_size=8), min_size=1, max_size=6), st.integers(1, 6))
def test_the_book_never_holds_more_than_max_symbols_and_counts_every_refused_row(frames, limit):
    """A model of the limit: a symbol is admitted when the book holds fewer than ``limit``;
    once admitted it keeps its place; every row of a symbol not admitted is counted."""
    decoder, book = FrameDecoder(), MarketBook(max_symbols=limit)
    admitted: list[str] = []
    refused = 0
    for index, frame_rows in enumerate(frames):
        frame = decoder.decode(json.dumps({"stream": "s", "data": frame_rows}).encode())
        applied = book.apply(frame, received_at=index)
        for row in (*frame.mark, *frame.tickers):  # the order the book merges them in
            if row.symbol not in admitted and len(admitted) < limit:
                admitted.append(row.symbol)
            refused += row.symbol not in admitted
        assert sum(r.rows for r in applied.rejected) == refused
        refused = 0
        book.publish()
    held = set(book.funding) | set(book.tickers)
    assert held == set(admitted) and len(held) <= limit
