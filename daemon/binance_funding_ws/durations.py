"""Pure: durations as people write them — ``90s``, ``15m``, ``24h``, ``7d`` or plain seconds
(``3.0``) — for every flag of ``audit`` and ``report`` that asks for a number of seconds.

Each flag has bounds (:func:`duration`): a flag that accepts 0.2 s so that a test can run
fast still refuses 0 or 1e308.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

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


def duration(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a duration within ``[low, high]`` seconds."""

    def parse(text: str) -> float:
        try:
            value = parse_duration(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be between {format_span(low)} and {format_span(high)}: {text!r}"
            )
        return value

    parse.__name__ = "duration"  # argparse names the type in its messages
    return parse


def add_duration(
    parser: argparse.ArgumentParser,
    flag: str,
    *,
    default: float | None,
    low: float,
    high: float,
    help: str,
    default_text: str | None = None,
) -> None:
    """A flag taking a duration, its bounds and default stated in its help."""
    shown = default_text or (format_span(default) if default is not None else "none")
    parser.add_argument(
        flag,
        type=duration(low, high),
        default=default,
        metavar="DURATION",
        help=f"{help}; {format_span(low)} to {format_span(high)} [{shown}]",
    )


MAX_AGE_BOUNDS = (0.1, 365 * DAY)


def add_max_age(
    parser: argparse.ArgumentParser, default: float | None, default_text: str | None = None
) -> None:
    """``--max-age``, the one freshness threshold, as a duration (``30``, ``30s``, ``2m``)."""
    add_duration(
        parser,
        "--max-age",
        default=default,
        low=MAX_AGE_BOUNDS[0],
        high=MAX_AGE_BOUNDS[1],
        help="market data, an entry or the file older than this is stale",
        default_text=default_text,
    )
