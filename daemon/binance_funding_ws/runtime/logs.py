"""Logging set-up and a rate limiter for log lines driven by outside input.

Under systemd (``JOURNAL_STREAM`` is set) the journal adds its own timestamps and shows
priorities, so lines carry no timestamp and no colour there; on a terminal they do.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable

from binance_funding_ws.text import one_line


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once for a command-line entry point."""
    under_journal = bool(os.environ.get("JOURNAL_STREAM"))
    if under_journal:
        # "<N>" prefixes let journald record each line's priority (sd-daemon(3)).
        fmt = "%(journal_priority)s%(name)s: %(message)s"
    else:
        fmt = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter(fmt))
    if under_journal:
        handler.addFilter(_add_journal_priority)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # websockets logs every handshake failure with a traceback at DEBUG/INFO; ours say enough.
    logging.getLogger("websockets").setLevel(max(root.level, logging.WARNING))


class PrintableFormatter(logging.Formatter):
    """Log messages quote the feed (symbols, bad rows, close reasons): each message is folded
    onto one printable line, so input can neither forge journal lines nor drive the operator's
    terminal. Tracebacks keep their lines (they are ours)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)


_PRIORITY = {
    logging.CRITICAL: "<2>",
    logging.ERROR: "<3>",
    logging.WARNING: "<4>",
    logging.INFO: "<6>",
    logging.DEBUG: "<7>",
}


def _add_journal_priority(record: logging.LogRecord) -> bool:
    record.journal_priority = _PRIORITY.get(record.levelno, "<6>")
    return True


class RateLimitedLog:
    """Lets through at most ``burst`` lines per ``period`` seconds per key.

    Bad frames can arrive many times a second; the log must say so without flooding the
    journal. When lines were held back, the next line that passes says how many.
    """

    def __init__(
        self,
        logger: logging.Logger,
        burst: int = 5,
        period: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._burst = burst
        self._period = period
        self._clock = clock
        self._windows: dict[str, tuple[float, int, int]] = {}  # key -> (start, sent, held)

    def log(self, level: int, key: str, message: str) -> bool:
        """Log ``message`` unless ``key`` is over its budget; return whether it was logged."""
        now = self._clock()
        start, sent, held = self._windows.get(key, (now, 0, 0))
        if now - start >= self._period:
            start, sent = now, 0
        if sent >= self._burst:
            self._windows[key] = (start, sent, held + 1)
            return False
        if held:
            message = f"{message} ({held} similar lines suppressed)"
        self._windows[key] = (start, sent + 1, 0)
        self._logger.log(level, message)
        return True
