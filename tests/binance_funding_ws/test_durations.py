"""Durations as people write them and as the reports print them
(:mod:`binance_funding_ws.durations`)."""

from __future__ import annotations

import argparse

import pytest

from binance_funding_ws.argtypes import seconds
from binance_funding_ws.durations import format_age, format_span, parse_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.42, "0.4 s"), (12.3, "12 s"), (185, "3m 05s"), (7_800, "2h 10m"), (273_600, "3d 4h")],
)
def test_format_age(seconds, text):
    assert format_age(seconds) == text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("15min", 900), ("24h", 86400), ("7d", 604800), ("3.0", 3.0),
     ("0.2", 0.2), (" 1.5h ", 5400), ("2D", 172800), (".5s", 0.5), ("1e3", 1000)],
)  # fmt: skip
def test_durations_as_people_write_them(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "-1", "nan", "inf", "1e999", "1h30m", "5 weeks", "s", "1..2"])
def test_not_durations(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_duration_bounds_are_named_in_the_error():
    parse = seconds(0.1, 3600)
    assert parse("60m") == 3600
    with pytest.raises(argparse.ArgumentTypeError, match=r"between 0\.1 s and 60 min"):
        parse("2h")
    assert [format_span(s) for s in (86400, 604800, 900, 60, 0.2)] == [
        "24 h", "7 d", "15 min", "60 s", "0.2 s"
    ]  # fmt: skip
