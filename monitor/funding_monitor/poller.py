"""One poll of one host: the blocking part, run in a worker thread, never in the UI thread.

A :class:`Poller` owns its source (and so its SSH client) and is only ever called by one
thread at a time: the UI starts the next poll only after the previous one reported back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from binance_funding_ws.backoff import Backoff
from funding_monitor.model import PollResult
from funding_monitor.sources import Source, SourceError

log = logging.getLogger(__name__)
JOURNAL_LINES = 40


class Poller:
    """Reads a source; after a failure the next poll waits with capped, jittered backoff."""

    def __init__(
        self, source: Source, interval: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.source = source
        self.interval = interval
        self._clock = clock
        self._backoff = Backoff(base=1.0, cap=max(30.0, interval))

    def poll(self, want_journal: bool = False) -> PollResult:
        """Read the state file (and the service state); never raises."""
        at = self._clock()
        try:
            document = self.source.read_state()
            service = self.source.service_state()
            journal = self.source.journal(JOURNAL_LINES) if want_journal else None
        except SourceError as exc:
            connected = exc.kind in ("missing", "unreadable", "corrupt")
            if connected:
                self._backoff.reset()
            return PollResult(at, connected, error=str(exc), error_kind=exc.kind)
        except Exception as exc:  # a bug, not bad input: keep the traceback in the log
            log.exception("poll of %s failed", self.source.name)
            self.source.close()
            return PollResult(at, False, error=f"internal error: {exc}", error_kind="unreachable")
        self._backoff.reset()
        return PollResult(at, True, document=document, service=service, journal=journal)

    def next_delay(self, result: PollResult) -> float:
        """Seconds until the next poll: the interval, or a backoff while unreachable."""
        if result.connected:
            return self.interval
        return max(1.0, self._backoff.next_delay())

    def close(self) -> None:
        self.source.close()
