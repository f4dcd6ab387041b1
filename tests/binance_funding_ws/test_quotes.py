"""REST answers as quotes (:mod:`binance_funding_ws.quotes`): symbols normalised, answers validated
field by field."""

from __future__ import annotations

import pytest

from binance_funding_ws.quotes import (
    RestAnswerError,
    funding_from_rest,
    normalize_symbol,
    ticker_from_rest,
)
from rest_helpers import PREMIUM_BODY


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("BTCUSDT", "BTCUSDT"),
        ("btcusdt", "BTCUSDT"),
        ("BTCUSD_PERP", "BTCUSD_PERP"),
        ("1000PEPEUSDT", "1000PEPEUSDT"),
        ("A" * 64, "A" * 64),
        ("A" * 65, None),
        ("", None),
        ("BTC-USDT", None),
        ("BTCUSDT&x=1", None),
        ("BTCUSDT\n", None),
        ("ß", None),  # upper-cases to "SS" but is not an exchange symbol
        ("ＢＴＣ", None),  # full-width letters
        (None, None),
        (7, None),
    ],
)
def test_normalize_symbol(given, expected):
    assert normalize_symbol(given) == expected


def test_rest_answers_are_validated():
    body = PREMIUM_BODY
    quote = funding_from_rest("BTCUSDT", body)
    assert (quote.funding_rate, quote.mark_price, quote.event_time) == (
        "0.00038246",
        "11793.63104562",
        1597370495002,
    )
    with pytest.raises(RestAnswerError, match="ETHUSDT"):
        funding_from_rest("ETHUSDT", body)  # another symbol's prices are never used
    for bad in (b"", b"[]", b"<html>", body.replace(b'"0.00038246"', b'"1e-4"'), b"[" * 5000):
        with pytest.raises(RestAnswerError):
            funding_from_rest("BTCUSDT", bad)
    with pytest.raises(RestAnswerError):
        ticker_from_rest("BTCUSDT", body)
