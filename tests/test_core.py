"""The pure core: frame decoding, merge rules, publishing, backoff, tracker, health."""

from __future__ import annotations

import json
import logging
import tracemalloc

import pytest

from binance_funding_ws.backoff import Backoff
from binance_funding_ws.durations import format_age
from binance_funding_ws.frames import DecodedFrame, FrameDecoder, MarkPriceRow, TickerRow
from binance_funding_ws.health import (
    assess,
    fresh_funding,
    is_stale,
    stale_entries,
    summarize,
)
from binance_funding_ws.market import MAX_AHEAD_MS, MarketBook
from binance_funding_ws.runtime.logs import RateLimitedLog
from binance_funding_ws.state import missing_symbols
from binance_funding_ws.tracker import MAX_STREAMS, ConnectionTracker
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
        event_time=1562305380000,
        symbol="BTCUSDT",
        mark_price="11794.15000000",
        index_price="11784.62659091",
        estimated_settle_price="11784.25641265",
        funding_rate="0.00038167",
        next_funding_time=1562306400000,
    )


def test_docs_ticker_frame_decodes(decoder):
    frame = decoder.decode(combined("!ticker@arr", [DOCS_TICKER]))
    (row,) = frame.tickers
    assert isinstance(row, TickerRow)
    assert (
        row.last_price,
        row.price_change_percent,
        row.volume,
        row.quote_volume,
        row.high_price,
        row.low_price,
        row.trade_count,
    ) == (
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
    assert (decoded.symbol, decoded.contract_type, decoded.pair, decoded.mark_price_avg) == (
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
    assert [row.symbol for row in frame.mark] == ["AAAUSDT", "BBBUSDT"]
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
    """How many rows the book accepted."""
    return book.apply(decoder.decode(combined(stream, rows)), at).accepted


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
    """The summary, fresh_funding and stale_entries agree on the boundary (strictly older)."""
    doc = document()
    entry = doc.funding["BUSDT"]
    at_limit = entry.event_time + 5_000
    assert not is_stale(entry.event_time, at_limit, 5)
    assert fresh_funding(doc, "BUSDT", 5, now=at_limit) is entry
    assert is_stale(entry.event_time, at_limit + 1, 5)
    assert fresh_funding(doc, "BUSDT", 5, now=at_limit + 1) is None
    assert "BUSDT" in summarize(doc, at_limit + 1, 5, "s").stale_funding
    assert stale_entries(doc.funding, at_limit + 1, 5)


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


def test_a_row_of_the_wrong_type_is_refused_on_arrival_and_the_rest_published():
    decoder, book = FrameDecoder(), MarketBook()
    good = mark("AUSDT", 5)
    bad = mark("BUSDT", 5, p=123)  # good event type, time and symbol; a number for a price
    frame = decoder.decode(combined("!markPrice@arr@1s", [good, bad]))
    assert [row.symbol for row in frame.mark] == ["AUSDT"]
    assert len(frame.errors) == 1 and "row 1" in frame.errors[0]
    book.apply(frame, 7)
    assert book.publish() == []
    assert list(book.funding) == ["AUSDT"] and book.funding["AUSDT"].mark_price == good["p"]


def test_a_bad_event_time_rejects_its_row_only():
    frame = FrameDecoder().decode(
        combined("!markPrice@arr@1s", [mark("AUSDT", 5), mark("BUSDT", "soon")])
    )
    assert isinstance(frame, DecodedFrame)
    assert [r.symbol for r in frame.mark] == ["AUSDT"] and len(frame.errors) == 1


# -- limits on hostile input ----------------------------------------------------------------------


def marks_frame(count: int, prefix: str = "S", event_time: int = 5) -> bytes:
    return combined("!markPrice@arr@1s", [mark(f"{prefix}{n}", event_time) for n in range(count)])


def test_a_frame_over_the_row_limit_is_dropped_whole_with_one_error():
    decode = FrameDecoder(max_rows=3).decode
    assert len(decode(marks_frame(3)).mark) == 3
    frame = decode(marks_frame(4))
    assert not frame.market and frame.errors == [
        "!markPrice@arr@1s frame of 4 rows dropped: more than the 3 allowed"
    ]


def test_the_row_limit_holds_before_any_per_row_work_on_the_careful_path():
    rows = [mark("AUSDT"), {}, {}, 7]  # the typed decode fails: each item would be re-read
    frame = FrameDecoder(max_rows=3).decode(combined("!markPrice@arr@1s", rows))
    assert not frame.market and len(frame.errors) == 1 and "4 rows dropped" in frame.errors[0]


@pytest.mark.parametrize(
    "data",
    [
        b"[" + b",".join([b"{}"] * 400_000) + b"]",  # 1.2 MB of empty rows
        b"[" + b",".join([b"0"] * 600_000) + b"]",
        b'{"stream":"x","data":[' + b",".join([b"[]"] * 400_000) + b"]}",
    ],
)
def test_a_big_frame_with_more_items_than_rows_could_hold_is_refused_unread(data):
    frame = FrameDecoder().decode(data)
    assert not frame.market and len(frame.errors) == 1
    assert "dropped unread" in frame.errors[0]


def test_a_big_frame_of_plausible_rows_passes_the_precheck():
    data = marks_frame(8_000)
    assert len(data) > 1024 * 1024
    frame = FrameDecoder().decode(data)
    assert not frame.errors and len(frame.mark) == 8_000


def test_a_frame_nested_past_the_recursion_limit_is_one_bad_frame():
    data = b"[" * 100_000 + b"]" * 100_000
    assert FrameDecoder().decode(data).errors == ["frame is not JSON (nested too deeply)"]


@pytest.mark.parametrize(
    "changes",
    [{"p": "1" * 65}, {"ps": "P" * 65}, {"ap": "2" * 65}, {"s": "S" * 65}],
)
def test_a_field_longer_than_64_characters_rejects_its_row(changes):
    rows = [mark("AUSDT", **changes), mark("BUSDT", p="1" * 64)]
    frame = FrameDecoder().decode(combined("!markPrice@arr@1s", rows))
    assert [row.symbol for row in frame.mark] == ["BUSDT"]
    assert len(frame.errors) == 1 and "length <= 64" in frame.errors[0]


def test_a_stream_name_longer_than_64_characters_rejects_its_frame():
    frame = FrameDecoder().decode(combined("s" * 65, [mark()]))
    assert not frame.market and "unexpected frame shape" in frame.errors[0]
    assert len(FrameDecoder().decode(combined("s" * 64, [mark()])).mark) == 1


def test_rows_more_than_a_minute_ahead_of_their_arrival_are_refused_and_named():
    now, decoder = 1_000_000_000, FrameDecoder()
    book = MarketBook(max_ahead_ms=MAX_AHEAD_MS)
    rows = [mark("AUSDT", now + 60_000), mark("BUSDT", now + 60_001), ticker("CUSDT", now * 9)]
    applied = book.apply(decoder.decode(combined("!ticker@arr", rows)), now)
    assert applied.accepted == 1 and len(applied.rejected) == 1
    kind, count, reason = applied.rejected[0]
    assert (kind, count) == ("future", 2)
    assert "first: 'BUSDT' at E=1000060001" in reason and "ahead of the local clock" in reason
    book.publish()
    assert list(book.funding) == ["AUSDT"] and book.tickers == {}
    # The refused rows did not raise the merge's mark: a normal frame takes the fast path.
    assert book.apply(decoder.decode(marks_frame(1, "AUSDT", now + 60_000)), now) == (1, [])


def test_a_future_row_never_pins_its_symbol():
    now, decoder = 1_000_000_000, FrameDecoder()
    book = MarketBook(max_ahead_ms=MAX_AHEAD_MS)
    ten_years = now + 10 * 365 * 86_400_000
    book.apply(decoder.decode(combined("!markPrice@arr@1s", [mark(event_time=ten_years)])), now)
    for step in range(1, 4):
        at = now + step * 1_000
        book.apply(decoder.decode(combined("!markPrice@arr@1s", [mark(event_time=at)])), at)
        book.publish()
        assert book.funding["BTCUSDT"].event_time == at


def test_the_book_holds_at_most_max_symbols_and_the_first_keep_their_place():
    decoder, book = FrameDecoder(), MarketBook(max_symbols=3)
    applied = book.apply(decoder.decode(marks_frame(5, event_time=1)), 1)
    assert applied.accepted == 3 and len(applied.rejected) == 1
    kind, count, reason = applied.rejected[0]
    assert (kind, count) == ("symbols", 2) and "first: 'S3'" in reason
    ticker_rows = [ticker("S0", 2), ticker("NEW", 2)]  # a held symbol counts once for both maps
    applied = book.apply(decoder.decode(combined("!ticker@arr", ticker_rows)), 2)
    assert applied.accepted == 1 and applied.rejected[0].rows == 1
    book.publish()
    assert list(book.funding) == ["S0", "S1", "S2"] and list(book.tickers) == ["S0"]
    applied = book.apply(decoder.decode(marks_frame(3, event_time=3)), 3)  # the fast path
    assert applied == (3, [])


def test_new_symbols_whose_rows_all_fail_give_their_place_back():
    decoder, book = FrameDecoder(), MarketBook(max_symbols=2)
    book.apply(decoder.decode(combined("!markPrice@arr@1s", [mark("JUNK", 1, p="x")])), 1)
    assert len(book.publish()) == 1 and book.funding == {}
    applied = book.apply(decoder.decode(marks_frame(2, event_time=2)), 2)
    assert applied == (2, [])


def test_frames_faster_than_writes_keep_one_pending_row_per_symbol():
    """Between two writes the book holds one row per symbol, however many frames come (the
    20x replay brings 20 a write): it keeps no record of a frame whose rows were superseded
    (in the daemon nothing else holds them, so they are freed at once). Measured with
    tracemalloc: the frames were decoded before it started, so only the book's own
    allocations count."""
    decoder, book = FrameDecoder(), MarketBook()
    frames = [decoder.decode(marks_frame(1_000, event_time=t)) for t in range(1, 42)]
    book.apply(frames[0], 1)
    book.publish()
    tracemalloc.start()
    try:
        book.apply(frames[1], 2)
        one, _ = tracemalloc.get_traced_memory()
        for t, frame in enumerate(frames[2:], start=3):
            book.apply(frame, t)
        many, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert many < 1.5 * one + 64 * 1024, (one, many)
    book.publish()
    assert {entry.event_time for entry in book.funding.values()} == {41}
    assert {entry.received_at for entry in book.funding.values()} == {41}


def test_the_tracker_lists_at_most_max_streams_and_counts_the_rest():
    tracker = ConnectionTracker("ws://x", now=1)
    names = [f"stream{n}" for n in range(MAX_STREAMS)]
    assert all(tracker.on_market_data(name, 2) is None for name in names)
    problem = tracker.on_market_data("one-too-many", 3)
    assert problem is not None and "'one-too-many'" in problem
    assert tracker.on_market_data("stream0", 4) is None
    status = tracker.status
    assert list(status.streams) == names and status.streams["stream0"].messages == 2
    assert (status.errors, status.last_error, status.last_message_at) == (1, problem, 4)
