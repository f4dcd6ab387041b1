"""Frame decoding (:mod:`binance_funding_ws.frames`): the exchange's rows with their strings
unchanged, bad rows and frames counted, and the limits that hold before any per-row work."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binance_funding_ws.frames import DecodedFrame, FrameDecoder, MarkPriceRow, TickerRow
from factories import DOCS_MARK, DOCS_TICKER, combined, mark, marks_frame
from strategies import examples, exchange_rows, is_good


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


def test_a_bad_event_time_rejects_its_row_only():
    frame = FrameDecoder().decode(
        combined("!markPrice@arr@1s", [mark("AUSDT", 5), mark("BUSDT", "soon")])
    )
    assert isinstance(frame, DecodedFrame)
    assert [r.symbol for r in frame.mark] == ["AUSDT"] and len(frame.errors) == 1


# -- limits that hold before any per-row work -----------------------------------------------------


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


# -- properties: whatever a frame holds, decoding never fails nor lies ----------------------------


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(exchange_rows(), max_size=12), st.booleans())
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


@settings(max_examples=examples(200), deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_never_raise(data):
    frame = FrameDecoder().decode(data)
    assert frame.market or frame.errors or frame.control
