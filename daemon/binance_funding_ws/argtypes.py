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
    """A duration in seconds within ``[low, high]``: every interval and timeout has sane bounds
    (a 1e-300 s write interval would busy-loop, a 1e308 s timeout overflows the OS's)."""

    def parse(text: str) -> float:
        value = _convert(text, float, "a number of seconds")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be between {low:g} and {high:g} seconds: {text!r}"
            )
        return value

    parse.__name__ = "seconds"  # argparse names the type in its messages
    return parse


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
MAX_AGE = seconds(0.1, 365 * 86400)


def add_state_file(parser: argparse.ArgumentParser, default: str, help: str) -> None:
    parser.add_argument("--state-file", type=Path, default=Path(default), help=help)


def add_max_age(parser: argparse.ArgumentParser, default: float = DEFAULT_MAX_AGE) -> None:
    """``--max-age``: the one freshness threshold, with the same name on every command."""
    parser.add_argument(
        "--max-age",
        type=MAX_AGE,
        default=default,
        help="seconds after which market data, an entry or the file counts as stale [%(default)s]",
    )


def options_from(cls: type[T], args: argparse.Namespace) -> T:  # cls: a dataclass
    """A typed options dataclass filled from the parsed arguments of the same names (fields
    without a flag keep their defaults)."""
    names = [field.name for field in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return cls(**{name: getattr(args, name) for name in names if hasattr(args, name)})
