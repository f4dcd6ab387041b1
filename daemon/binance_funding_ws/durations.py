"""Pure: durations as people write them — ``90s``, ``15m``, ``24h``, ``7d`` or plain seconds
(``3.0``) — for every flag that asks for a number of seconds.

Every flag that asks for seconds parses them here (:func:`binance_funding_ws.argtypes.seconds`,
which adds bounds: a flag that accepts 0.2 s so that a test can run fast still refuses 0 or
1e308).
"""

from __future__ import annotations

import math
import re

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
UNITS = {"": 1.0, "s": 1.0, "m": MINUTE, "min": MINUTE, "h": HOUR, "d": DAY}
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?"  # what float() reads, but signs
_DURATION = re.compile(rf"^\s*({_NUMBER})\s*(s|m|min|h|d|)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number, optionally followed by ``s``, ``m``/``min``, ``h`` or
    ``d``. Raises ``ValueError`` for anything else (negative, ``nan``, ``inf``, ``1h30m``)."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration (90s, 15m, 24h, 7d or seconds): {text!r}")
    value = float(match[1]) * UNITS[match[2].lower()]
    if not math.isfinite(value):
        raise ValueError(f"not a finite duration: {text!r}")
    return value


def format_span(seconds: float) -> str:
    """A duration the way a person asked for it: ``24 h``, ``7 d``, ``15 min``, ``90 s``."""
    for unit, size in (("d", DAY), ("h", HOUR), ("min", MINUTE)):
        # A unit from two of it on: "24 h" and "60 s" read better than "1 d" and "1 min".
        if seconds >= 2 * size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"
