"""The one REST client: headers read with bounds (:mod:`binance_funding_ws.rest`, pure), and the
socket I/O (:mod:`binance_funding_ws.tools.rest`) against real loopback servers: a total
deadline, no redirects, and odd answers as one-line errors in ``compare`` and ``audit``."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest
from rest_helpers import drip_server, rest_server

from binance_funding_ws import FundingSource
from binance_funding_ws.clock import now_ms
from binance_funding_ws.rest import (
    MAX_RETRY_AFTER,
    RestAnswerError,
    parse_retry_after,
    parse_used_weight,
    premium_index_of,
    premium_index_rows,
    retry_after_oddity,
)
from binance_funding_ws.state import encode_state
from binance_funding_ws.tools.rest import RestClient, RestError, http_get
from daemon_helpers import run_cli
from factories import document, mark

HUGE = "9" * 5_000


# -- headers (pure) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("30", 30.0),
        (" 0.5 ", 0.5),
        ("300", 300.0),
        ("301", MAX_RETRY_AFTER),
        ("inf", MAX_RETRY_AFTER),
        ("1e308", MAX_RETRY_AFTER),
        (HUGE, MAX_RETRY_AFTER),
        ("nan", None),
        ("-3", None),
        ("soon", None),
        ("²", None),  # a digit to str.isdigit(), not to float()
        ("١٢", None),  # Arabic-Indic digits: float() takes them, Binance never sends them
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),  # an HTTP date: Binance sends seconds
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_a_plain_number_capped_at_300_s(header, seconds):
    assert parse_retry_after(header) == seconds


def test_an_odd_retry_after_is_named_shortened_and_printable():
    assert retry_after_oddity(None) is None and retry_after_oddity("30") is None
    assert retry_after_oddity("1e308") == "Retry-After '1e308' read as the 300 s cap"
    assert retry_after_oddity("soon") == "Retry-After 'soon' unreadable, ignored"
    long = retry_after_oddity(HUGE)
    assert long is not None and len(long) < 100 and "..." in long
    assert "\x1b" not in (retry_after_oddity("\x1b[2J") or "")


@pytest.mark.parametrize(
    ("header", "weight"),
    [
        *[("12", 12), (" 2400 ", 2400), ("999999999", 999_999_999), ("1000000000", None)],
        *[(HUGE, None), ("²", None), ("١٢", None), ("-1", None), ("1e3", None), ("", None)],
    ],
)
def test_used_weight_is_a_bounded_ascii_integer(header, weight):
    assert parse_used_weight(header) == weight


# -- the shell, against loopback servers --------------------------------------------------------


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


# -- compare and audit: one line, and a sample ------------------------------------------------


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


# -- FundingSource's stats file ---------------------------------------------------------------


@pytest.mark.parametrize("target", ["state.json", "state.json.lock", "link-to-state"])
def test_the_stats_file_is_never_the_state_file_or_its_lock(tmp_path, target):
    state = tmp_path / "state.json"
    write_state(state)
    (tmp_path / "state.json.lock").write_text("123\n")
    (tmp_path / "link-to-state").symlink_to(state)
    before = state.read_bytes(), (tmp_path / "state.json.lock").read_bytes()
    with pytest.raises(ValueError, match="stats_file must not be the state file or its lock"):
        FundingSource(state, max_age=5, rest_url=None, stats_file=tmp_path / target)
    assert (state.read_bytes(), (tmp_path / "state.json.lock").read_bytes()) == before


def test_an_unwritable_stats_file_is_called_the_stats_file(tmp_path, caplog):
    stats = tmp_path / "stats.json"
    os.mkfifo(stats)
    with caplog.at_level(logging.WARNING, logger="binance_funding_ws.consumer"):
        FundingSource(tmp_path / "state.json", max_age=5, rest_url=None, stats_file=stats).close()
    messages = [r.getMessage() for r in caplog.records if "stats" in r.getMessage()]
    assert messages and all("state file" not in m for m in messages), messages
    assert f"stats file {stats} is a FIFO" in messages[0]


# -- answers (pure) ---------------------------------------------------------------------------

ONE_ROW = (
    b'{"symbol":"BTCUSDT","markPrice":"11793.63104562","indexPrice":"11781.80495970",'
    b'"lastFundingRate":"0.00038246","nextFundingTime":1597392000000,"time":1597370495002}'
)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"11793.63104562"', b'"' + b"9" * 5_000 + b'"'),  # a 5,000-digit price
        (b'"0.00038246"', b'"1e-4"'),
        (b'"11781.80495970"', b'"1\\u001b[2J"'),
        (b"1597370495002", b"-1"),
        (b',"indexPrice":"11781.80495970"', b""),  # a one-symbol answer must carry it
    ],
)
def test_a_one_symbol_answer_is_checked_field_by_field(old, new):
    assert premium_index_of("BTCUSDT", ONE_ROW).markPrice == "11793.63104562"
    with pytest.raises(RestAnswerError):
        premium_index_of("BTCUSDT", ONE_ROW.replace(old, new))


def test_a_listing_keeps_a_row_with_an_absurd_value_for_compare_to_judge():
    body = b"[" + ONE_ROW.replace(b'"11793.63104562"', b'"1e999999999"') + b"]"
    assert [row.markPrice for row in premium_index_rows(body)] == ["1e999999999"]
