"""Pure: argument types shared by the command lines (daemon, tools, simulator, monitor).

Each rejects a bad value with one line that names it, which argparse turns into exit code 2.
"""

from __future__ import annotations

import argparse
from urllib.parse import urlsplit


def positive(text: str) -> float:
    """A finite number greater than zero (seconds, intervals)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def count(text: str) -> int:
    """A whole number of at least one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port; 0 lets the system pick a free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {text!r}")
    return value


def file_mode(text: str) -> int:
    """Octal permission bits, e.g. ``644``."""
    try:
        mode = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal mode: {text!r}") from None
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
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
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
