"""Pure: argument types shared by the command lines (daemon, tools, simulator, monitor).

Each rejects a bad value with one line that names it, which argparse turns into exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from binance_funding_ws.durations import DAY, format_span, parse_duration

N = TypeVar("N", int, float)
T = TypeVar("T")


def _convert(text: str, convert: Callable[[str], N], noun: str) -> N:
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None


def positive(text: str) -> float:
    """A finite number greater than zero (seconds, intervals)."""
    value = _convert(text, float, "a number")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def seconds(low: float, high: float) -> Callable[[str], float]:
    """A duration within ``[low, high]`` seconds, written as people do: ``90s``, ``15m``,
    ``24h``, ``7d`` or plain seconds (``3.0``). Every interval and timeout has sane bounds (a
    1e-300 s write interval would busy-loop, a 1e308 s timeout overflows the OS's)."""

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


def add_seconds(
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
        type=seconds(low, high),
        default=default,
        metavar="DURATION",
        help=f"{help}; {format_span(low)} to {format_span(high)} [{shown}]",
    )


def count(text: str) -> int:
    """A whole number of at least one."""
    if _convert(text, int, "a whole number") < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return int(text)


def port(text: str) -> int:
    """A TCP port; 0 lets the system pick a free one."""
    if not 0 <= _convert(text, int, "a port number") <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {text!r}")
    return int(text)


def file_mode(text: str) -> int:
    """Octal permission bits, e.g. ``644``."""
    mode = _convert(text, lambda value: int(value, 8), "an octal mode")
    if not 0 <= mode <= 0o777:
        raise argparse.ArgumentTypeError(f"mode out of range: {text!r}")
    return mode


def log_level(text: str) -> str:
    level = text.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise argparse.ArgumentTypeError(f"unknown log level: {text!r}")
    return level


def percent(text: str) -> float:
    """A percentage from 0 (inclusive) to 100 (exclusive)."""
    value = _convert(text, float, "a number")
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError(f"must be a percentage from 0 to 100: {text!r}")
    return value


def http_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// URL, got {text!r}")
    return text


def symbols(text: str) -> list[str] | None:
    """``SYMBOL,SYMBOL,...`` (upper-cased, in order), or ``all`` (``None``)."""
    if text.strip().lower() == "all":
        return None
    names = [name.strip().upper() for name in text.split(",") if name.strip()]
    bad = [name for name in names if not name.replace("_", "").isalnum()]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"expected SYMBOL,SYMBOL,... or 'all', got {text!r}")
    return names


# -- flags every reader of the state file shares ----------------------------------------------

DEFAULT_MAX_AGE = 60.0
MAX_AGE_BOUNDS = (0.1, 365 * DAY)


def add_state_file(parser: argparse.ArgumentParser, default: str, help: str) -> None:
    parser.add_argument("--state-file", type=Path, default=Path(default), help=help)


def add_max_age(
    parser: argparse.ArgumentParser,
    default: float | None = DEFAULT_MAX_AGE,
    default_text: str | None = None,
) -> None:
    """``--max-age``: the one freshness threshold, with the same name on every command."""
    add_seconds(
        parser,
        "--max-age",
        default=default,
        low=MAX_AGE_BOUNDS[0],
        high=MAX_AGE_BOUNDS[1],
        help="market data, an entry or the file older than this is stale",
        default_text=default_text,
    )


def options_from(cls: type[T], args: argparse.Namespace) -> T:  # cls: a dataclass
    """A typed options dataclass filled from the parsed arguments of the same names (fields
    without a flag keep their defaults)."""
    names = [field.name for field in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return cls(**{name: getattr(args, name) for name in names if hasattr(args, name)})
