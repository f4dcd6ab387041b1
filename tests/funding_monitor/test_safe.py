"""Text from a host is shown as text (:mod:`funding_monitor.safe`)."""

from __future__ import annotations

import pytest

from funding_monitor.safe import strip_control


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("BTCUSDT", "BTCUSDT"),
        ("[/] [link=file:///etc/passwd]x[/link]", "[/] [link=file:///etc/passwd]x[/link]"),
        ("\x1b[2Jwiped", "wiped"),  # CSI: the whole sequence goes, not just ESC
        ("a\x1b]0;new title\x07b", "ab"),  # OSC ended by BEL
        ("a\x1b]8;;file:///etc/passwd\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),  # OSC 8 by ST
        ("a\x1b]0;never ended", "a"),
        ("a\x1bcb\x1b(0c", "abc"),  # RIS, charset designation
        ("x\x9b2Jy\x85z", "x2Jyz"),  # C1 controls (8-bit CSI, NEL)
        ("nul\x00del\x7fbell\x07back\x08", "nuldelbellback"),
        ("two\nlines\r\tand tab", "two lines and tab"),
        ("trailing\x1b", "trailing"),
        ("Ünïcödé 币安 ₿", "Ünïcödé 币安 ₿"),
    ],
)
def test_strip_control_keeps_text_and_drops_terminal_control(raw, shown):
    assert strip_control(raw) == shown
