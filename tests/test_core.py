"""The pure core: frame decoding, merge rules, publishing, backoff, tracker, health."""

from __future__ import annotations

import json
import logging

import pytest

from binance_funding_ws.backoff import Backoff
from binance_funding_ws.frames import (
    DecodedFrame,
    FrameDecoder,
    MarkPriceRow,
    ScannedFrame,
    TickerRow,
    expand,
)
from binance_funding_ws.health import (
    assess,
    fresh_funding,
    is_stale,
    stale_count,
    stale_entries,
    summarize,
)
from binance_funding_ws.market import MarketBook
from binance_funding_ws.runtime.logs import RateLimitedLog
from binance_funding_ws.state import missing_symbols
from binance_funding_ws.text import format_age
from binance_funding_ws.tracker import ConnectionTracker
from factories import DOCS_MARK, DOCS_TICKER, combined, document, mark, ticker


@pytest.fixture
def decoder() -> FrameDecoder:
    return FrameDecoder()


# -- decoding -------------------------------------------------------------------------


def test_docs_mark_price_frame_decodes_with_strings_unchanged(decoder):
    frame = decoder.decode(combined("!markPrice@arr@1s", [DOCS_MARK]))
    assert frame.stream == "!markPrice@arr@1s"
    assert frame.errors == [] and frame.market
    (row,) = frame.mark
    assert row == MarkPriceRow(
        E=1562305380000,
        s="BTCUSDT",
        p="11794.15000000",
        i="11784.62659091",
        P="11784.25641265",
        r="0.00038167",
        T=1562306400000,
    )


def test_docs_ticker_frame_decodes(decoder):
    frame = decoder.decode(combined("!ticker@arr", [DOCS_TICKER]))
    (row,) = frame.tickers
    assert isinstance(row, TickerRow)
    assert (row.c, row.P, row.v, row.q, row.h, row.l, row.n) == (
        "0.0025",
        "250.00",
        "10000",
        "18",
        "0.0025",
        "0.0010",
        18151,
    )


def test_raw_stream_array_takes_the_stream_name_given(decoder):
    frame = decoder.decode(json.dumps([DOCS_MARK]).encode(), stream="!markPrice@arr@1s")
    assert frame.stream == "!markPrice@arr@1s" and len(frame.mark) == 1


def test_coin_m_and_new_fields_are_kept(decoder):
    row = mark("BTCUSD_PERP", st=2, ps="BTCUSD", ap="11790.00000000")
    (decoded,) = decoder.decode(combined("!markPrice@arr@1s", [row])).mark
    assert (decoded.s, decoded.st, decoded.ps, decoded.ap) == (
        "BTCUSD_PERP",
        2,
        "BTCUSD",
        "11790.00000000",
    )


def test_unknown_extra_fields_are_ignored(decoder):
    frame = decoder.decode(combined("!markPrice@arr@1s", [mark(zz="new field", X=1)]))
    assert frame.errors == [] and len(frame.mark) == 1


@pytest.mark.parametrize(
    "bad_row",
    [
        {k: v for k, v in DOCS_MARK.items() if k != "p"},  # missing field
        mark(p=11794.15),  # number where the exchange sends a string
        mark(E="1562305380000"),  # string where an int belongs
        mark(T=None),
        mark(s=""),
        mark(E=-1),
        {**DOCS_MARK, "e": "somethingNew"},  # unknown event type
        5,
        None,
        "row",
    ],
)
def test_a_bad_row_is_skipped_and_its_neighbours_kept(decoder, bad_row):
    rows = [mark("AAAUSDT"), bad_row, mark("BBBUSDT")]
    frame = decoder.decode(combined("!markPrice@arr@1s", rows))
    assert [row.s for row in frame.mark] == ["AAAUSDT", "BBBUSDT"]
    assert len(frame.errors) == 1
    assert "row 1" in frame.errors[0] and "\n" not in frame.errors[0]


@pytest.mark.parametrize(
    "data",
    [
        b'{"stream": "!ticker@arr", "data": [',
        b"",
        b"\xff\xfe garbage",
        b'"hello"',
        b"42",
        b'{"stream": "!ticker@arr", "data": 5}',
        b'{"data": []}',
        b'{"stream": 5, "data": []}',
        b"[[[[]]]]",
    ],
)
def test_garbage_frames_yield_one_error_and_no_rows(decoder, data):
    frame = decoder.decode(data)
    assert not frame.market
    assert len(frame.errors) >= 1
    assert all("\n" not in error for error in frame.errors)


def test_subscribe_ack_is_control_not_error(decoder):
    frame = decoder.decode(b'{"result":null,"id":1}')
    assert frame.control and not frame.errors and not frame.market


def test_exchange_error_reply_is_an_error(decoder):
    frame = decoder.decode(b'{"error":{"code":2,"msg":"Invalid request"},"id":null}')
    assert frame.errors and "Invalid request" in frame.errors[0]


def test_str_frames_decode_like_bytes(decoder):
    frame = decoder.decode(combined("!markPrice@arr@1s", [DOCS_MARK]).decode())
    assert len(frame.mark) == 1


# -- merging --------------------------------------------------------------------------


def apply_rows(book: MarketBook, decoder: FrameDecoder, stream: str, rows: list, at: int = 1):
    return book.apply(decoder.decode(combined(stream, rows)), at)


def test_partial_ticker_arrays_merge_row_by_row(decoder):
    book = MarketBook()
    apply_rows(book, decoder, "!ticker@arr", [ticker("AUSDT", 1), ticker("BUSDT", 1)])
    apply_rows(book, decoder, "!ticker@arr", [ticker("BUSDT", 2, c="9.5")])
    book.publish()
    assert set(book.tickers) == {"AUSDT", "BUSDT"}  # AUSDT was not in the latest array
    assert book.tickers["BUSDT"].last_price == "9.5"


def test_mark_price_in_several_frames_per_tick_all_merge(decoder):
    book = MarketBook()
    apply_rows(book, decoder, "!markPrice@arr@1s", [mark(f"S{i}USDT", 5) for i in range(745)])
    apply_rows(book, decoder, "!markPrice@arr@1s", [mark("XAUUSDT", 5), mark("BTCUSD_PERP", 5)])
    book.publish()
    assert len(book.funding) == 747
    assert "XAUUSDT" in book.funding and "BTCUSD_PERP" in book.funding


def test_older_rows_never_overwrite_newer(decoder):
    book = MarketBook()
    apply_rows(book, decoder, "!markPrice@arr@1s", [mark(event_time=20, p="2.0")])
    assert apply_rows(book, decoder, "!markPrice@arr@1s", [mark(event_time=10, p="1.0")]) == 0
    book.publish()
    assert apply_rows(book, decoder, "!markPrice@arr@1s", [mark(event_time=15, p="1.5")]) == 0
    book.publish()
    assert book.funding["BTCUSDT"].mark_price == "2.0"
    assert apply_rows(book, decoder, "!markPrice@arr@1s", [mark(event_time=20, p="2.0")]) == 1


def test_no_funding_scheduled_rows_are_kept_as_such(decoder):
    book = MarketBook()
    apply_rows(book, decoder, "!markPrice@arr@1s", [mark("MATICUSDT", T=0, r="0.00000000")])
    book.publish()
    entry = book.funding["MATICUSDT"]
    assert entry.next_funding_time == 0 and entry.funding_rate == "0.00000000"
    assert missing_symbols(book.funding, book.tickers).no_ticker == ["MATICUSDT"]


def test_publish_rejects_non_decimal_values_and_keeps_the_previous_entry(decoder):
    book = MarketBook()
    apply_rows(book, decoder, "!markPrice@arr@1s", [mark(event_time=1, p="100.5")])
    assert book.publish() == []
    apply_rows(book, decoder, "!markPrice@arr@1s", [mark(event_time=2, p="abc")])
    apply_rows(book, decoder, "!ticker@arr", [ticker(c="NaN")])
    errors = book.publish()
    assert len(errors) == 2
    assert book.funding["BTCUSDT"].mark_price == "100.5"
    assert "BTCUSDT" not in book.tickers
    assert not book.has_pending


def test_mini_ticker_updates_prices_and_keeps_change_fields(decoder):
    book = MarketBook()
    apply_rows(book, decoder, "!ticker@arr", [ticker(event_time=1)])
    mini = {"e": "24hrMiniTicker", "E": 2, "s": "BTCUSDT", "c": "0.003", "o": "0.0010"}
    mini |= {"h": "0.003", "l": "0.0010", "v": "10001", "q": "19"}
    book.publish()
    apply_rows(book, decoder, "!miniTicker@arr", [mini])
    book.publish()
    entry = book.tickers["BTCUSDT"]
    assert (entry.last_price, entry.price_change_percent, entry.event_time) == (
        "0.003",
        "250.00",
        2,
    )


def test_received_at_is_the_arrival_time(decoder):
    book = MarketBook()
    apply_rows(book, decoder, "!markPrice@arr@1s", [mark()], at=1234)
    book.publish()
    assert book.funding["BTCUSDT"].received_at == 1234


# -- backoff, tracker, rate-limited log ----------------------------------------------------


def test_backoff_is_capped_full_jitter_and_resets():
    draws = []
    backoff = Backoff(base=1, cap=60, rand=lambda lo, hi: draws.append((lo, hi)) or hi)
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert all(lo == 0 for lo, _ in draws)  # full jitter: anywhere from zero
    backoff.reset()
    assert backoff.next_delay() == 1
    for _ in range(10_000):
        backoff.next_delay()
    assert backoff.ceiling() == 60


def test_backoff_default_draws_within_bounds():
    backoff = Backoff(base=0.5, cap=3)
    for _ in range(100):
        ceiling = backoff.ceiling()
        assert 0 <= backoff.next_delay() <= ceiling <= 3


def test_tracker_connected_only_with_data_and_counts_changes():
    tracker = ConnectionTracker("ws://x", now=100, pid=7)
    status = tracker.status
    assert status.state == "connecting" and status.connected_since is None
    version = tracker.version
    tracker.set_state("connected", 200)
    assert status.connected_since == 200 and tracker.version > version
    tracker.set_state("stalled", 300)
    assert status.connected_since is None and status.state_since == 300
    tracker.on_errors(["a", "b"], 400)
    tracker.on_market_data("!ticker@arr", 500)
    snap = tracker.snapshot()
    assert (snap.errors, snap.last_error, snap.last_error_at) == (2, "b", 400)
    assert snap.streams["!ticker@arr"].messages == 1
    assert snap.streams["!ticker@arr"].last_message_at == 500
    tracker.on_write_result("disk full")
    tracker.on_write_result(None)
    assert status.write_errors == 1 and status.last_write_error is None


def test_tracker_snapshot_is_a_copy_later_events_do_not_change():
    tracker = ConnectionTracker("ws://x", now=100, pid=7)
    tracker.on_market_data("!ticker@arr", 500)
    snap = tracker.snapshot()
    tracker.on_market_data("!ticker@arr", 600)
    tracker.on_market_data("!markPrice@arr@1s", 600)
    tracker.on_errors(["late"], 600)
    assert (snap.errors, snap.last_message_at, list(snap.streams)) == (0, 500, ["!ticker@arr"])
    assert snap.streams["!ticker@arr"].messages == 1
    assert tracker.status.streams["!ticker@arr"].messages == 2


def test_rate_limited_log_holds_back_and_reports_suppressed(caplog):
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("t"), burst=2, period=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        results = [limited.log(logging.WARNING, "k", f"line {i}") for i in range(5)]
        now[0] = 11
        limited.log(logging.WARNING, "k", "after")
    assert results == [True, True, False, False, False]
    assert caplog.messages == ["line 0", "line 1", "after (3 similar lines suppressed)"]


# -- health --------------------------------------------------------------------------------


def test_health_connected_and_fresh_is_healthy_and_lists_stale_symbols():
    health = assess(document(), now=11_000, max_age=5)
    assert health.healthy and health.problems == []
    summary = summarize(document(), now=11_000, max_age=5, source="s.json")
    assert summary.verdict == "HEALTHY" and summary.exit_code == 0
    assert summary.stale_funding == {"BUSDT": 10.0}
    assert summary.no_ticker == ["AUSDT", "BUSDT"]


def test_one_stale_rule_for_every_reader():
    """The summary, fresh_funding and stale_count agree on the boundary (strictly older)."""
    doc = document()
    entry = doc.funding["BUSDT"]
    at_limit = entry.event_time + 5_000
    assert not is_stale(entry.event_time, at_limit, 5)
    assert fresh_funding(doc, "BUSDT", 5, now=at_limit) is entry
    assert is_stale(entry.event_time, at_limit + 1, 5)
    assert fresh_funding(doc, "BUSDT", 5, now=at_limit + 1) is None
    assert "BUSDT" in summarize(doc, at_limit + 1, 5, "s").stale_funding
    assert stale_count(doc.funding, at_limit + 1, 5) >= 1


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"state": "stalled"}, "feed is stalled"),
        ({"state": "connecting", "last_message_at": None}, "no market data received"),
        ({"last_message_at": 1_000}, "no market data for"),
        ({"updated_at": 1_000}, "not written for"),
        ({"funding": []}, "no funding data"),
    ],
)
def test_health_problems(kwargs, fragment):
    health = assess(document(**kwargs), now=11_000, max_age=5)
    assert not health.healthy
    assert any(fragment in problem for problem in health.problems), health.problems


def test_stale_entries_orders_oldest_first():
    entries = {"A": type("E", (), {"event_time": 5})(), "B": type("E", (), {"event_time": 1})()}
    assert stale_entries(entries, now=10_000, max_age=1) == [("B", 9.999), ("A", 9.995)]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.42, "0.4 s"), (12.3, "12 s"), (185, "3m 05s"), (7_800, "2h 10m"), (273_600, "3d 4h")],
)
def test_format_age(seconds, text):
    assert format_age(seconds) == text


def test_scanned_rows_are_checked_in_full_when_published():
    decoder, book = FrameDecoder(), MarketBook()
    good = mark("AUSDT", 5)
    bad = mark("BUSDT", 5, p=123)  # good event type, time and symbol; a number for a price
    frame = decoder.scan(combined("!markPrice@arr@1s", [good, bad]))
    assert isinstance(frame, ScannedFrame) and not frame.errors, "the scan reads only E and s"
    book.apply(frame, 7)
    errors = book.publish()
    assert list(book.funding) == ["AUSDT"] and book.funding["AUSDT"].mark_price == good["p"]
    assert len(errors) == 1 and "row 1" in errors[0]


def test_expand_decodes_a_scanned_frame_in_full_and_keeps_a_decoded_one():
    data = combined("!markPrice@arr@1s", [mark("AUSDT", 5), mark("BUSDT", 6)])
    scanned, decoded = FrameDecoder().scan(data), FrameDecoder().decode(data)
    assert isinstance(scanned, ScannedFrame) and expand(scanned) == decoded
    assert expand(decoded) is decoded


def test_scan_falls_back_to_the_careful_decode_for_a_bad_event_time():
    frame = FrameDecoder().scan(
        combined("!markPrice@arr@1s", [mark("AUSDT", 5), mark("BUSDT", "soon")])
    )
    assert isinstance(frame, DecodedFrame), "decoded in full on arrival"
    assert [r.s for r in frame.mark] == ["AUSDT"] and len(frame.errors) == 1
