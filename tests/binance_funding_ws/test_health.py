"""Health (:mod:`binance_funding_ws.health`): one stale rule, the problems named, the summary every
reader shares."""

from __future__ import annotations

import pytest

from binance_funding_ws.clock import now_ms
from binance_funding_ws.health import (
    assess,
    fresh_funding,
    fresh_ticker,
    is_stale,
    stale_entries,
    summarize,
)
from binance_funding_ws.state import TickerEntry, encode_state
from daemon_helpers import status_json
from factories import DOCS_TICKER, document, fresh_doc, mark


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


# -- data dated in the future ---------------------------------------------------------------------


def test_a_document_dated_in_the_future_is_degraded(tmp_path):
    path = tmp_path / "state.json"
    ten_years = 10 * 365 * 86400 * 1000
    path.write_bytes(encode_state(fresh_doc(updated_at=now_ms() + ten_years)))
    code, summary = status_json(path)
    assert code == 1 and any("in the future" in p for p in summary["problems"])


def test_an_entry_dated_in_the_future_is_not_fresh():
    now = now_ms()
    doc = document(funding=[mark("BTCUSDT", now + 3_600_000), mark("ETHUSDT", now + 500)])
    assert fresh_funding(doc, "BTCUSDT", max_age=60, now=now) is None
    assert fresh_funding(doc, "ETHUSDT", max_age=60, now=now) is not None  # mere clock skew
    assert "BTCUSDT" in summarize(doc, now, 60, "s").stale_funding


# -- freshness of one entry -----------------------------------------------------------------------


def test_fresh_funding_respects_max_age():
    doc = document()  # AUSDT event_time 9_000, BUSDT 1_000
    assert fresh_funding(doc, "AUSDT", max_age=5, now=11_000) is not None
    assert fresh_funding(doc, "BUSDT", max_age=5, now=11_000) is None
    assert fresh_funding(doc, "NOPEUSDT", max_age=5, now=11_000) is None
    assert fresh_funding(doc, "AUSDT", max_age=1, now=11_000) is None


def test_fresh_ticker_respects_max_age():
    doc = document()
    doc.tickers["AUSDT"] = TickerEntry(
        last_price=DOCS_TICKER["c"],
        open_price="1",
        high_price="1",
        low_price="1",
        volume="1",
        quote_volume="1",
        event_time=10_000,
        received_at=10_000,
    )
    assert fresh_ticker(doc, "AUSDT", max_age=2, now=11_000).last_price == DOCS_TICKER["c"]
    assert fresh_ticker(doc, "AUSDT", max_age=0.5, now=11_000) is None
