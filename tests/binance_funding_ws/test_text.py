"""``binance_funding_ws.text``: the sanitiser every command's output of untrusted text goes
through."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from binance_funding_ws.text import error_line, one_line, strip_control


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("BTC\u202eTDSU", "BTCTDSU"),  # right-to-left override: "BTCUSDT" shown reversed
        ("BTC\u200bUSDT", "BTCUSDT"),  # zero width space: two names that look the same
        ("\u2066ETH\u2069USDT\u200d\ufeff", "ETHUSDT"),  # isolates, joiner, BOM
        ("tag\U000e0041\U000e007f", "tag"),  # Unicode tags hide text
        ("one\u2028two\u2029three", "one two three"),  # line and paragraph separators
        ("\x1b[2J\u202e\x07x", "x"),
        ("價格 ₿ café ünï", "價格 ₿ café ünï"),  # printable text, any script, is left alone
    ],
)
def test_format_characters_do_not_pass_the_sanitiser(raw, shown):
    assert one_line(raw) == shown
    assert error_line("p", raw) == f"p: error: {shown}"


def test_every_format_character_of_this_python_is_removed():
    """The sanitiser's table of Unicode category Cf, checked against the running Python's
    own (3.10's Unicode 13 to 3.13's 15.1)."""
    everything = [chr(c) for c in range(sys.maxunicode + 1)]
    format_chars = [c for c in everything if unicodedata.category(c) == "Cf"]
    assert len(format_chars) > 150
    assert strip_control("".join(format_chars)) == ""
    printable = "".join(c for c in everything[0x20:0x3000] if unicodedata.category(c)[0] in "LNPS")
    assert strip_control(printable) == printable
