"""The earlier script's state file, decoded by the pure module the warm start imports it with.

Real-shaped files: the exchange's own rows (the docs examples), keyed by symbol and written
with ``json.dump(indent=2)``, as the earlier script wrote them.
"""

from __future__ import annotations

import json

from binance_funding_ws.earlier import decode_earlier
from binance_funding_ws.market import MarketBook, describe_dropped
from binance_funding_ws.state import FundingEntry, TickerEntry, encode_state
from factories import document, mark, ticker

WRITTEN_AT = 1_700_000_000_000


def earlier_file(funding: dict[str, object], tickers: dict[str, object] | None = None) -> bytes:
    """A file as the earlier script wrote it: its own status, raw rows keyed by symbol."""
    status = {"connected": True, "last_message": "2025-12-03T10:00:00", "reconnects": 0}
    content = {"connection_status": status, "tickers": tickers or {}, "funding": funding}
    return json.dumps(content, indent=2).encode()


def test_an_earlier_file_becomes_entries_with_its_exact_values_and_times():
    btc = mark("BTCUSDT", 1_699_999_999_000, ap="11794.10000000", st=1, ps="BTCUSDT")
    eth = mark("ETHUSDT", 1_699_999_998_000, p="2012.50000000", r="-0.00010000", T=0)
    btc_ticker = ticker("BTCUSDT", 1_699_999_997_000)
    data = earlier_file({"BTCUSDT": btc, "ETHUSDT": eth}, {"BTCUSDT": btc_ticker})

    imported = decode_earlier(data, WRITTEN_AT)

    assert imported is not None and imported.dropped == []
    # Every value as the exchange sent it; received_at: the file holds no arrival time, so
    # its write time stands for it.
    assert imported.funding == {
        "BTCUSDT": FundingEntry(
            mark_price=btc["p"], index_price=btc["i"], estimated_settle_price=btc["P"],
            funding_rate=btc["r"], next_funding_time=btc["T"], event_time=btc["E"],
            received_at=WRITTEN_AT, mark_price_avg="11794.10000000", contract_type=1,
            pair="BTCUSDT",
        ),
        "ETHUSDT": FundingEntry(
            mark_price="2012.50000000", index_price=eth["i"], estimated_settle_price=eth["P"],
            funding_rate="-0.00010000", next_funding_time=0, event_time=eth["E"],
            received_at=WRITTEN_AT,
        ),
    }  # fmt: skip
    assert imported.tickers == {
        "BTCUSDT": TickerEntry(
            last_price=btc_ticker["c"], open_price=btc_ticker["o"], high_price=btc_ticker["h"],
            low_price=btc_ticker["l"], volume=btc_ticker["v"], quote_volume=btc_ticker["q"],
            event_time=btc_ticker["E"], received_at=WRITTEN_AT, price_change=btc_ticker["p"],
            price_change_percent=btc_ticker["P"], weighted_avg_price=btc_ticker["w"],
            trade_count=btc_ticker["n"],
        )
    }  # fmt: skip


def test_a_file_without_tickers_is_still_the_earlier_format():
    imported = decode_earlier(b'{"funding": {}}', WRITTEN_AT)
    assert imported is not None and imported.funding == {} and imported.tickers == {}


def test_our_own_format_and_other_files_are_not_taken_for_the_earlier_one():
    ours = encode_state(document())
    deep = b'{"funding": {"BTCUSDT": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    for data in (
        ours,  # a schema_version: ours, even one this reader would refuse
        b'{"schema_version": 99, "funding": {}}',
        b"[]",
        b'{"tickers": {}}',  # no funding map
        b'{"funding": []}',  # a funding map of the wrong type
        b'{"funding": {"BTCUSDT": ',  # torn
        b"\x00\x01 not json",
        deep,  # nested too deeply for the parser: refused whole, never a crash
    ):
        assert decode_earlier(data, WRITTEN_AT) is None, data[:60]


def test_rows_of_the_wrong_type_are_refused_one_by_one_and_the_rest_kept():
    good = mark("BTCUSDT", 1_000)
    funding = {
        "BTCUSDT": good,
        "ETHUSDT": "11794.15",  # not a row
        "SOLUSDT": [good],
        "XRPUSDT": {**mark("XRPUSDT", 1_000), "p": 0.52},  # a number where a string belongs
        "ADAUSDT": {**mark("ADAUSDT", 1_000), "e": "24hrTicker"},  # another row type
        "DOGEUSDT": mark("OTHERUSDT", 1_000),  # keyed by another symbol
        "LONGUSDT": mark("LONGUSDT", 1_000, p="1" * 65),  # longer than any feed text
    }
    tickers = {"BTCUSDT": ticker("BTCUSDT", 1_000), "ETHUSDT": mark("ETHUSDT", 1_000)}

    imported = decode_earlier(earlier_file(funding, tickers), WRITTEN_AT)

    assert imported is not None
    assert list(imported.funding) == ["BTCUSDT"] and list(imported.tickers) == ["BTCUSDT"]
    refused = {group.reason: group.symbols for group in imported.dropped}
    assert refused == {
        "funding rows that are not markPriceUpdate rows of the feed's shape": [
            "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "LONGUSDT"
        ],
        "rows keyed by another symbol than their own": ["DOGEUSDT"],
        "ticker rows that are not 24hrTicker rows of the feed's shape": ["ETHUSDT"],
    }  # fmt: skip


def test_imported_entries_pass_the_same_gate_as_any_previous_file():
    """The import decodes; the restore judges: an earlier file is no way around the gate."""
    funding = {
        "BTCUSDT": mark("BTCUSDT", WRITTEN_AT - 1_000),
        "btcusdt": mark("btcusdt", WRITTEN_AT - 1_000),  # not a symbol the bot can look up
        "FUTUSDT": mark("FUTUSDT", WRITTEN_AT + 3_600_000),  # an hour past the file's write
        "BADUSDT": mark("BADUSDT", WRITTEN_AT - 1_000, r="1e-4"),  # not the decimal grammar
    }
    imported = decode_earlier(earlier_file(funding), WRITTEN_AT)
    assert imported is not None and len(imported.funding) == 4
    book = MarketBook()

    dropped = book.restore(
        imported.funding, imported.tickers, written_at=WRITTEN_AT, now=WRITTEN_AT + 5_000
    )

    assert list(book.funding) == ["BTCUSDT"]
    assert [group.symbols for group in dropped] == [["btcusdt"], ["BADUSDT"], ["FUTUSDT"]]
    assert describe_dropped(dropped).startswith("3 entries not restored: ")
