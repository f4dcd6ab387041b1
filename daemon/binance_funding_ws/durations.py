"""Pure: durations, ages and times as people read and write them — the one place they are
parsed and worded.

Flags take ``90s``, ``15m``, ``24h``, ``7d`` or plain seconds (``3.0``): :func:`parse_duration`.
Every age, duration and time a command or the monitor prints is worded by :func:`format_age`,
:func:`format_ago`, :func:`format_span` and :func:`format_clock`.

Every flag that asks for seconds parses them here (:func:`binance_funding_ws.argtypes.seconds`,
which adds bounds: a flag that accepts 0.2 s so that a test can run fast still refuses 0 or
1e308).
"""

from __future__ import annotations

import math
import re
import time

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


def format_age(seconds: float) -> str:
    """A short human age: ``0.4 s``, ``12 s``, ``3m 05s``, ``2h 10m``, ``3d 4h``."""
    if seconds < 0:
        return "in the future (clock skew?)" if seconds < -1 else "0.0 s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def format_ago(seconds: float | None, missing: str = "never") -> str:
    """``3.1 s ago``, or ``missing`` when it never happened."""
    return missing if seconds is None else f"{format_age(seconds)} ago"


def format_age_or(seconds: float | None, missing: str = "n/a") -> str:
    """:func:`format_age`, or ``missing`` when there is no such age."""
    return missing if seconds is None else format_age(seconds)


FULL_CLOCK = "%Y-%m-%d %H:%M:%S UTC"


def format_clock(epoch_ms: float | None, fmt: str = FULL_CLOCK, missing: str = "-") -> str:
    """A UTC time (``fmt``, :func:`time.strftime`) of ``epoch_ms``; ``missing`` when ``None``."""
    if epoch_ms is None:
        return missing
    try:
        return time.strftime(fmt, time.gmtime(epoch_ms / 1000))
    except (OverflowError, ValueError, OSError):  # a hand-edited file: no calendar date
        return f"epoch ms {epoch_ms} (invalid)"
