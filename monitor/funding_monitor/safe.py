"""Text from a state file or a host, made safe to show on a terminal.

A symbol, an error, a hint, a path or a journal line is data, never instructions: an escape
sequence in it could clear the screen, retitle the window or hide a line, and a Rich markup
tag could open a link or run an app action. The monitor shows such text only as
:class:`rich.text.Text` (never parsed as markup) and only after :func:`strip_control`.

The stripping itself is :func:`binance_funding_ws.text.strip_control`, shared with
``status``, ``compare`` and the daemon's log; this module adds what only a screen needs.
"""

from __future__ import annotations

from typing import Any

import msgspec

from binance_funding_ws.health import Summary
from binance_funding_ws.text import strip_control

__all__ = ["scrubbed", "strip_control"]


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
