"""The REST rules (:mod:`binance_funding_ws.rest`, pure): headers read with bounds, answers
checked field by field; the socket I/O is tests/binance_funding_ws/tools/test_rest.py."""

from __future__ import annotations

import pytest

from binance_funding_ws.rest import (
    MAX_RETRY_AFTER,
    RestAnswerError,
    parse_retry_after,
    parse_used_weight,
    premium_index_of,
    premium_index_rows,
    retry_after_oddity,
)
from rest_helpers import HUGE, ONE_ROW

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


# -- compare and audit: one line, and a sample ------------------------------------------------


# -- FundingSource's stats file ---------------------------------------------------------------


# -- answers (pure) ---------------------------------------------------------------------------


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
