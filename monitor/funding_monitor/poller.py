"""One poll of one host: the blocking part, run in a worker thread, never in the UI thread.

A :class:`Poller` owns its source (and so its SSH client) and its history reader, and is only
ever called by one thread at a time: the UI starts the next poll only after the previous one
reported back.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from binance_funding_ws.backoff import Backoff
from funding_monitor.history_tail import HistoryTail
from funding_monitor.history_view import WINDOW_S, HistoryOutcome, outcome_of
from funding_monitor.model import HostView, PollResult
from funding_monitor.sources import Source, SourceError

log = logging.getLogger(__name__)
JOURNAL_LINES = 40
# The audit appends a sample a minute: looking more often than this only costs round trips.
# A key press (r, h) reads it at once.
HISTORY_EVERY_S = 30.0


class Poller:
    """Reads a source; after a failure the next poll waits with capped, jittered backoff."""

    def __init__(
        self,
        source: Source,
        interval: float,
        clock: Callable[[], float] = time.time,
        history: str | None = None,
    ) -> None:
        self.source = source
        self.interval = interval
        self._clock = clock
        self._backoff = Backoff(base=1.0, cap=max(30.0, interval))
        # The audit history at this path on the source, or None: not read.
        self.history = None if history is None else HistoryTail(history, source)
        self._history_at: float | None = None  # when it was last read

    def new_view(self) -> HostView:
        """An empty view of this poller's host."""
        return HostView(self.source.name, history_enabled=self.history is not None)

    def poll(self, want_journal: bool = False, want_history: bool = False) -> PollResult:
        """Read the state file (and the service state, and the history when due); never raises."""
        at = self._clock()
        result = self._poll_state(at, want_journal)
        if result.connected and self._history_due(at, want_history):
            result = dataclasses.replace(result, history=self._read_history(at))
        return result

    def _poll_state(self, at: float, want_journal: bool) -> PollResult:
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

    def _history_due(self, at: float, asked: bool) -> bool:
        if self.history is None:
            return False
        return asked or self._history_at is None or at - self._history_at >= HISTORY_EVERY_S

    def _read_history(self, at: float) -> HistoryOutcome | None:
        """The report of the last 24 h; ``None`` (keep the last one) if the host went away."""
        assert self.history is not None  # only called when due, which needs a history
        where = self.source.where(self.history.path)
        now_ms = int(at * 1000)
        try:
            tail = self.history.read(now_ms - int(WINDOW_S * 1000))
            if tail is None:
                outcome = HistoryOutcome(where, missing=True)
            else:
                outcome = outcome_of(
                    tail.samples, skipped=tail.skipped, seen=tail.seen, where=where, now_ms=now_ms
                )
        except SourceError as exc:
            if exc.kind == "unreachable":
                return None  # the connection dropped: the next poll says so, and retries
            outcome = HistoryOutcome(where, error=str(exc))
        except Exception as exc:  # a bug: the state file's poll still stands
            log.exception("reading the history of %s failed", self.source.name)
            outcome = HistoryOutcome(where, error=f"internal error: {exc}")
        self._history_at = at
        return outcome

    def next_delay(self, result: PollResult) -> float:
        """Seconds until the next poll: the interval, or a backoff while unreachable."""
        if result.connected:
            return self.interval
        return max(1.0, self._backoff.next_delay())

    def close(self) -> None:
        self.source.close()
