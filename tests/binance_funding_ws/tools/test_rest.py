"""The REST client's socket I/O (:mod:`binance_funding_ws.tools.rest`) against real loopback
servers: a total deadline, no redirects, odd headers capped, and odd answers as one-line errors
in ``compare`` and ``audit``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from binance_funding_ws import FundingSource
from binance_funding_ws.clock import now_ms
from binance_funding_ws.rest import MAX_RETRY_AFTER
from binance_funding_ws.state import encode_state
from binance_funding_ws.tools.rest import RestClient, RestError, http_get
from daemon_helpers import run_cli
from factories import document, mark
from rest_helpers import HUGE, ONE_ROW, drip_server, rest_server


def answer_with(status: int, headers: dict[str, str], body: bytes = b"{}"):
    return lambda path: (status, headers, body)


@pytest.mark.parametrize("status", [429, 418])
@pytest.mark.parametrize("retry_after", ["inf", "1e308", HUGE])
def test_an_absurd_retry_after_is_capped_and_named(status, retry_after):
    with rest_server(answer_with(status, {"Retry-After": retry_after})) as (url, paths):
        client = RestClient(url, timeout=5, attempts=3)
        with pytest.raises(RestError) as raised:
            client.premium_index()
    assert raised.value.retry_after == MAX_RETRY_AFTER and len(paths) == 1  # never retried
    message = str(raised.value)
    assert f"HTTP {status}" in message and "read as the 300 s cap" in message
    assert "\n" not in message and len(message) < 400


@pytest.mark.parametrize("weight", ["²", HUGE, "-5"])
def test_an_unreadable_weight_header_is_ignored(weight):
    body = b'[{"symbol":"BTCUSDT","markPrice":"1","indexPrice":"1","lastFundingRate":"0",'
    body += b'"nextFundingTime":0,"time":1}]'
    with rest_server(answer_with(200, {"X-MBX-USED-WEIGHT-1m": weight}, body)) as (url, _):
        client = RestClient(url, timeout=5)
        rows = client.premium_index()
    assert [row.symbol for row in rows] == ["BTCUSDT"] and client.used_weight is None


def test_a_redirect_is_never_followed():
    with rest_server(answer_with(200, {}, b"[]")) as (elsewhere, elsewhere_paths):
        moved = {"Location": f"{elsewhere}/fapi/v1/premiumIndex"}
        with rest_server(answer_with(302, moved)) as (url, paths):
            with pytest.raises(RestError, match="HTTP 302"):
                RestClient(url, timeout=5).premium_index()
            reply = http_get(f"{url}/fapi/v1/premiumIndex", 5, 1_000)
    assert reply.status == 302 and len(paths) == 2 and elsewhere_paths == []


def test_funding_source_follows_no_redirect(tmp_path):
    body = ONE_ROW.replace(b"1597370495002", str(now_ms()).encode())
    with rest_server(answer_with(200, {}, body)) as (elsewhere, elsewhere_paths):
        moved = {"Location": f"{elsewhere}/fapi/v1/premiumIndex?symbol=BTCUSDT"}
        with (
            rest_server(answer_with(301, moved)) as (url, paths),
            FundingSource(tmp_path / "none.json", max_age=5, rest_url=url) as source,
        ):
            assert source.funding("BTCUSDT") is None
            stats = source.stats
    assert len(paths) == 1 and elsewhere_paths == []
    assert stats["rest_errors"] == 1 and stats["unavailable"] == 1


def test_a_dripping_answer_ends_at_the_deadline():
    with drip_server(drip_every=0.1) as url:
        started = time.monotonic()
        with pytest.raises(RestError, match="no complete answer within 1 s"):
            http_get(f"{url}/fapi/v1/premiumIndex?symbol=DRIPUSDT", 1.0, 1_000)
        took = time.monotonic() - started
    # A per-read timeout would read on for 64 KiB x 0.1 s; the deadline ends it at once.
    assert took < 10, took


def test_an_answer_larger_than_its_limit_is_an_error():
    big = b"[" + b" " * 70_000 + b"]"
    with (
        rest_server(answer_with(200, {}, big)) as (url, _),
        pytest.raises(RestError, match="larger than 65,536 bytes"),
    ):
        http_get(f"{url}/fapi/v1/premiumIndex", 5, 65_536)


def write_state(path: Path) -> None:
    now = now_ms()
    path.write_bytes(
        encode_state(document(last_message_at=now, updated_at=now, funding=[mark("BTCUSDT", now)]))
    )


ODD_HEADERS = [
    (429, {"Retry-After": "inf"}),
    (418, {"Retry-After": "1e308"}),
    (429, {"Retry-After": HUGE, "X-MBX-USED-WEIGHT-1m": "²"}),
    (418, {"X-MBX-USED-WEIGHT-1m": HUGE}),
]


@pytest.mark.parametrize(("status", "headers"), ODD_HEADERS)
def test_compare_on_odd_headers_exits_2_in_one_line(tmp_path, status, headers):
    state = tmp_path / "state.json"
    write_state(state)
    with rest_server(answer_with(status, headers)) as (url, _):
        result = run_cli("compare", "--state-file", str(state), "--rest-url", url)
    assert result.returncode == 2 and result.stdout == "", result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"HTTP {status}" in lines[0] and "Traceback" not in result.stderr
    if "Retry-After" in headers:  # the odd header is named, and read as the cap
        assert "read as the 300 s cap" in lines[0], lines


@pytest.mark.parametrize(("status", "headers"), ODD_HEADERS)
def test_audit_records_odd_headers_in_its_sample_and_goes_on(tmp_path, status, headers):
    state, history = tmp_path / "state.json", tmp_path / "audit.jsonl"
    write_state(state)
    with rest_server(answer_with(status, headers)) as (url, _):
        for _ in range(2):  # the second run reads the first one's history and still samples
            result = run_cli(
                "audit", "--once", "--state-file", str(state), "--history", str(history),
                "--rest-url", url, "--compare-every", "1", "--interval", "1",
            )  # fmt: skip
            assert result.returncode == 0 and "Traceback" not in result.stderr, result
    samples = [json.loads(line) for line in history.read_text().splitlines()]
    assert len(samples) == 2
    first = samples[0]["compare"]
    assert f"HTTP {status}" in first["error"]
    if "Retry-After" in headers:  # the cap, named, and honoured: no round inside it
        assert "read as the 300 s cap" in first["error"]
        assert first["retry_at"] == first["started_at"] + 300_000
        assert samples[1].get("compare") is None
