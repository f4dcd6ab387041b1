"""Text from a state file or a host, made safe to show on a terminal.

A symbol, an error, a hint, a path or a journal line is data, never instructions: an escape
sequence in it could clear the screen, retitle the window or hide a line, and a Rich markup
tag could open a link or run an app action. The monitor shows such text only as
:class:`rich.text.Text` (never parsed as markup) and only after :func:`strip_control`.

Pure and shared by nature (``binance-funding-ws status`` and ``compare`` print the same
fields): it belongs in :mod:`binance_funding_ws.text`, and lives here until it moves there.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from binance_funding_ws.health import Summary

# Whole escape sequences first, so that their parameters go with them (``ESC [2J`` must not
# leave ``[2J`` behind): CSI; the string commands OSC, DCS, SOS, PM and APC up to their
# terminator (BEL or ST) or the end of the text; then the other two-character escapes.
_ESCAPE_SEQUENCE = (
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_].*?(?:\x07|\x1b\\|\Z)"
    r"|\x1b[ -/]*[0-~]"
)
_CONTROL = re.compile(
    # Then any C0 control (ESC included when alone), DEL and C1 control that is left.
    f"{_ESCAPE_SEQUENCE}|[\\x00-\\x1f\\x7f-\\x9f]",
    re.DOTALL,
)
_LINE_BREAKING = re.compile(r"[\t\n\v\f\r]+")


def strip_control(text: str) -> str:
    """``text`` without terminal control: escape sequences, C0, DEL and C1 characters removed.

    Tabs and line breaks become one space (words stay apart, and nothing can start a line of
    its own that looks like the monitor's). Printable text, any script, is left alone.
    """
    if _CONTROL.search(text) is None:  # the common case: nothing to do
        return text
    return _CONTROL.sub("", _LINE_BREAKING.sub(" ", text))


def scrubbed(summary: Summary) -> Summary:
    """``summary`` with every string (map keys included) passed through :func:`strip_control`.

    For display only: ``--once --json`` keeps the raw values, which JSON escapes anyway.
    """
    return msgspec.convert(_scrub(msgspec.to_builtins(summary)), Summary)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return strip_control(value)
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, dict):
        return {_scrub(key): _scrub(item) for key, item in value.items()}
    return value
